// creation-defer-length: an upload created with Upload-Defer-Length: 1 takes
// bytes before its length is known; a later PATCH sets the length once, and
// maxSize bounds the upload while the length is unknown.
import path from 'node:path'
import { readFile } from 'node:fs/promises'
import t, { type Test } from 'tap'
import { TUS, create, patch, send, startServer, idOf } from './helpers'
import { assertError, names, patchChunked, readRecordFile } from './protocol-helpers'

type Server = Awaited<ReturnType<typeof startServer>>

const deferred = (server: Server): Promise<string> => create(server.endpoint, { 'upload-defer-length': '1' })

/** HEAD of an upload whose length is still unknown, checked for it. */
async function assertDeferred (t: Test, url: string, offset: number): Promise<void> {
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-defer-length'], '1', 'Upload-Defer-Length: 1')
  t.equal(head.headers['upload-length'], undefined, 'no Upload-Length')
  t.equal(head.headers['upload-offset'], String(offset), 'offset')
  t.equal(head.headers['cache-control'], 'no-store')
}

t.test('a deferred upload shows Upload-Defer-Length on HEAD and stays deferred while bytes arrive', async (t) => {
  const server = await startServer(t)
  const url = await deferred(server)
  t.equal((await readRecordFile(server.directory, idOf(url))).length, null, 'length null in the record')
  await assertDeferred(t, url, 0)

  const response = await patch(url, 0, 'hello')
  t.equal(response.statusCode, 204)
  t.equal(response.headers['upload-offset'], '5')
  await assertDeferred(t, url, 5)
  const again = await patch(url, 5, ' world')
  t.equal(again.headers['upload-offset'], '11')
  await assertDeferred(t, url, 11)
  t.same(await names(server.completedDir), [], 'not finished without a length')
})

t.test('a PATCH carrying Upload-Length sets it, with or without bytes', async (t) => {
  const server = await startServer(t)

  const withoutBytes = await deferred(server)
  await patch(withoutBytes, 0, 'abc')
  const setting = await patch(withoutBytes, 3, '', { 'upload-length': '10' })
  t.equal(setting.statusCode, 204)
  t.equal(setting.headers['upload-offset'], '3')
  const head = await send(withoutBytes, 'HEAD', TUS)
  t.equal(head.headers['upload-length'], '10')
  t.equal(head.headers['upload-defer-length'], undefined, 'no longer deferred')
  t.equal((await readRecordFile(server.directory, idOf(withoutBytes))).length, 10)
  // The same length again is not a change.
  t.equal((await patch(withoutBytes, 3, 'defg', { 'upload-length': '10' })).statusCode, 204)

  const withBytes = await deferred(server)
  const both = await patch(withBytes, 0, 'abc', { 'upload-length': '6' })
  t.equal(both.statusCode, 204)
  t.equal(both.headers['upload-offset'], '3')
  t.equal((await send(withBytes, 'HEAD', TUS)).headers['upload-length'], '6')
  const last = await patch(withBytes, 3, 'def')
  t.equal(last.headers['upload-offset'], '6')
  t.same(await readFile(path.join(server.completedDir, idOf(withBytes)), 'utf8'), 'abcdef', 'finished')
})

t.test('Upload-Length on PATCH is validated', async (t) => {
  const server = await startServer(t, { maxSize: 100 })
  const url = await deferred(server)
  await patch(url, 0, 'hello')

  assertError(t, await patch(url, 5, '', { 'upload-length': '4' }), 400, 'FST_TUS_UPLOAD_LENGTH_TOO_SMALL', 'smaller than the offset')
  for (const length of ['abc', '-1', '01', '1.5']) {
    assertError(t, await patch(url, 5, '', { 'upload-length': length }), 400, 'FST_TUS_INVALID_UPLOAD_LENGTH', `Upload-Length ${length}`)
  }
  assertError(t, await patch(url, 5, '', { 'upload-length': '101' }), 413, 'FST_TUS_MAX_SIZE_EXCEEDED', 'over maxSize')
  await assertDeferred(t, url, 5)

  t.equal((await patch(url, 5, '', { 'upload-length': '20' })).statusCode, 204)
  assertError(t, await patch(url, 5, '', { 'upload-length': '21' }), 400, 'FST_TUS_UPLOAD_LENGTH_ALREADY_SET', 'changing a set length')
  assertError(t, await patch(url, 5, 'abc', { 'upload-length': '19' }), 400, 'FST_TUS_UPLOAD_LENGTH_ALREADY_SET', 'changing it with bytes')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-length'], '20', 'length unchanged')
  t.equal(head.headers['upload-offset'], '5', 'refused bytes not written')

  // A length fixed at creation cannot be changed either.
  const fixed = await create(server.endpoint, { 'upload-length': '10' })
  assertError(t, await patch(fixed, 0, '', { 'upload-length': '11' }), 400, 'FST_TUS_UPLOAD_LENGTH_ALREADY_SET', 'length set at creation')
})

t.test('setting the length equal to the offset finishes the upload', async (t) => {
  const server = await startServer(t)
  const url = await deferred(server)
  await patch(url, 0, 'complete')
  const response = await patch(url, 8, '', { 'upload-length': '8' })
  t.equal(response.statusCode, 204)
  t.equal(response.headers['upload-offset'], '8')
  const id = idOf(url)
  t.same(await names(server.directory), [], 'nothing left in progress')
  t.same(await names(server.completedDir), [id, `${id}.meta`].sort())
  t.equal(await readFile(path.join(server.completedDir, id), 'utf8'), 'complete')
  t.match(await readRecordFile(server.completedDir, id), { length: 8, offset: 8, finishedAt: String })
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-length'], '8')
  t.equal(head.headers['upload-offset'], '8')
})

t.test('a deferred upload cannot grow past maxSize', async (t) => {
  const server = await startServer(t, { maxSize: 64 })
  const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i))

  // Streamed without Content-Length: the limit is found while writing, and what came before it is kept.
  const streamed = await deferred(server)
  await patch(streamed, 0, data.subarray(0, 10))
  const response = await patchChunked(streamed, 10, [data.subarray(10, 40), data.subarray(40, 70), data.subarray(70)])
  assertError(t, response, 413, 'FST_TUS_MAX_SIZE_EXCEEDED', 'chunked')
  await assertDeferred(t, streamed, 64)
  t.same((await readFile(path.join(server.directory, idOf(streamed)))).subarray(0, 64), data.subarray(0, 64), 'bytes before the limit kept')
  t.equal((await readRecordFile(server.directory, idOf(streamed))).offset, 64)
  // With nothing more to take, setting the length to what was received finishes it.
  t.equal((await patch(streamed, 64, '', { 'upload-length': '64' })).statusCode, 204)
  t.same(await readFile(path.join(server.completedDir, idOf(streamed))), data.subarray(0, 64))

  // With a Content-Length the excess is known before reading, so nothing is written.
  const announced = await deferred(server)
  await patch(announced, 0, data.subarray(0, 10))
  assertError(t, await patch(announced, 10, data.subarray(10, 65)), 413, 'FST_TUS_MAX_SIZE_EXCEEDED', 'with Content-Length')
  await assertDeferred(t, announced, 10)
  t.equal((await patch(announced, 10, data.subarray(10, 64))).statusCode, 204, 'up to maxSize is fine')
  await assertDeferred(t, announced, 64)
})

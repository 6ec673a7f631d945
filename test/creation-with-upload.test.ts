// creation-with-upload: a POST may carry the first bytes of the upload as
// application/offset+octet-stream; its limits are those of a PATCH.
import path from 'node:path'
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { TUS, send, startServer, idOf, patch } from './helpers'
import type { Response } from './helpers'
import { OCTET, assertError, listTree, names, pathOf, readRecordFile } from './protocol-helpers'
import { rawRequest } from './raw-client'

type Server = Awaited<ReturnType<typeof startServer>>

/** A POST with data: a Buffer goes with its Content-Length, an array of chunks without one. */
function postWithData (server: Server, headers: Record<string, string>, body: Buffer | Buffer[]): Promise<Response> {
  return rawRequest(server.origin, { method: 'POST', path: pathOf(server.endpoint), headers: { ...TUS, 'content-type': OCTET, ...headers }, body })
}

const bytes = (size: number, seed = 0): Buffer => Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + seed) % 256))

t.test('a POST with data answers 201 with Upload-Offset and the bytes are on disk', async (t) => {
  const server = await startServer(t)
  const data = bytes(5)
  const response = await postWithData(server, { 'upload-length': '10', 'upload-metadata': 'filename YS5iaW4=' }, data)
  t.equal(response.statusCode, 201)
  t.equal(response.headers['tus-resumable'], '1.0.0')
  t.equal(response.headers['upload-offset'], '5')
  const url = String(response.headers.location)
  const id = idOf(url)
  t.equal((await readFile(path.join(server.directory, id))).subarray(0, 5).compare(data), 0, 'bytes on disk')
  t.equal((await readRecordFile(server.directory, id)).offset, 5)

  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-offset'], '5')
  t.equal(head.headers['upload-length'], '10')
  t.equal(head.headers['upload-metadata'], 'filename YS5iaW4=')
  t.equal(head.headers['cache-control'], 'no-store')

  // The upload goes on with PATCH from there.
  const rest = bytes(5, 99)
  const next = await patch(url, 5, rest)
  t.equal(next.statusCode, 204)
  t.equal(next.headers['upload-offset'], '10')
  t.same(await readFile(path.join(server.completedDir, id)), Buffer.concat([data, rest]))
})

t.test('with fsync off, whole uploads small and large and a part of one land the same', async (t) => {
  const server = await startServer(t, { fsync: false })
  // 64 KiB and 3 MiB: either side of the size below which the data file is closed in place.
  for (const size of [64 * 1024, 3 * 1024 * 1024]) {
    const data = bytes(size, size % 251)
    const response = await postWithData(server, { 'upload-length': String(size) }, data)
    t.equal(response.statusCode, 201, `${size} bytes: status`)
    t.equal(response.headers['upload-offset'], String(size), `${size} bytes: offset`)
    const id = idOf(String(response.headers.location))
    t.equal((await readFile(path.join(server.completedDir, id))).compare(data), 0, `${size} bytes: data in completedDir`)
    t.match(await readRecordFile(server.completedDir, id), { offset: size, length: size, finishedAt: String }, `${size} bytes: finished record`)
  }
  const data = bytes(2 * 1024 * 1024, 3)
  const response = await postWithData(server, { 'upload-length': String(2 * data.length) }, data)
  t.equal(response.headers['upload-offset'], String(data.length), 'half an upload: its offset')
  const url = String(response.headers.location)
  t.equal((await patch(url, data.length, data)).statusCode, 204, 'the rest by PATCH')
  t.equal((await readFile(path.join(server.completedDir, idOf(url)))).compare(Buffer.concat([data, data])), 0, 'both halves in completedDir')
  t.same(await names(server.directory), [], 'nothing left in progress')
  t.same((await names(server.completedDir)).filter((name) => name.startsWith('.')), [], 'no hidden data file left behind')
})

t.test('a POST carrying the whole upload finishes it', async (t) => {
  const server = await startServer(t)
  const data = bytes(64)
  for (const body of [data, [data.subarray(0, 20), data.subarray(20)]]) {
    const label = Array.isArray(body) ? 'chunked' : 'with Content-Length'
    const response = await postWithData(server, { 'upload-length': '64' }, body)
    t.equal(response.statusCode, 201, `${label}: status`)
    t.equal(response.headers['upload-offset'], '64', `${label}: offset`)
    const id = idOf(String(response.headers.location))
    t.same(await readFile(path.join(server.completedDir, id)), data, `${label}: data in completedDir`)
    t.match(await readRecordFile(server.completedDir, id), { offset: 64, length: 64, finishedAt: String }, `${label}: finished record`)
  }
  t.same(await names(server.directory), [], 'nothing left in progress')
})

t.test('a POST body longer than Upload-Length with Content-Length is refused before any byte is written', async (t) => {
  const server = await startServer(t)
  const response = await postWithData(server, { 'upload-length': '10' }, bytes(15))
  assertError(t, response, 413, 'FST_TUS_UPLOAD_LENGTH_EXCEEDED')
  // Content-Length announces the excess, so not one byte of it may be taken.
  t.same(await names(server.completedDir), [], 'nothing finished')
  for (const name of await names(server.directory)) {
    if (name.endsWith('.meta')) t.equal((await readRecordFile(server.directory, name.slice(0, -5))).offset, 0, 'no byte recorded')
  }
})

t.test('a chunked POST body longer than Upload-Length keeps the bytes up to the length', async (t) => {
  const server = await startServer(t)
  const data = bytes(15)
  const response = await postWithData(server, { 'upload-length': '10' }, [data.subarray(0, 6), data.subarray(6)])
  assertError(t, response, 413, 'FST_TUS_UPLOAD_LENGTH_EXCEEDED')
  const url = String(response.headers.location)
  t.match(url, /\/files\/[0-9a-f-]{36}$/, 'the created upload is named')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-offset'], '10')
  t.same(await readFile(path.join(server.completedDir, idOf(url))), data.subarray(0, 10))
})

t.test('Content-Length over maxChunkSize is refused with 413 before the upload is created', async (t) => {
  const server = await startServer(t, { maxChunkSize: 8 })
  const root = path.dirname(server.directory)
  const before = await listTree(root)
  const response = await postWithData(server, { 'upload-length': '100' }, bytes(9))
  assertError(t, response, 413, 'FST_TUS_CHUNK_TOO_LARGE')
  t.equal(response.headers.location, undefined)
  t.same(await listTree(root), before, 'no upload created')

  const atLimit = await postWithData(server, { 'upload-length': '100' }, bytes(8))
  t.equal(atLimit.statusCode, 201, 'exactly maxChunkSize is allowed')
  t.equal(atLimit.headers['upload-offset'], '8')
})

t.test('a chunked POST body over maxChunkSize stops at maxChunkSize', async (t) => {
  const server = await startServer(t, { maxChunkSize: 8 })
  const data = bytes(20)
  const response = await postWithData(server, { 'upload-length': '100' }, [data.subarray(0, 5), data.subarray(5)])
  assertError(t, response, 413, 'FST_TUS_CHUNK_TOO_LARGE')
  const url = String(response.headers.location)
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '8', 'bytes up to the limit kept')
  t.same((await readFile(path.join(server.directory, idOf(url)))).subarray(0, 8), data.subarray(0, 8))
})

t.test('Upload-Length over maxSize with data is refused and nothing is created', async (t) => {
  const server = await startServer(t, { maxSize: 10 })
  const root = path.dirname(server.directory)
  const before = await listTree(root)
  const response = await postWithData(server, { 'upload-length': '11' }, bytes(5))
  assertError(t, response, 413, 'FST_TUS_MAX_SIZE_EXCEEDED')
  t.same(await listTree(root), before)
})

t.test('creation-with-upload works with a deferred length', async (t) => {
  const server = await startServer(t)
  const first = bytes(5)
  const response = await postWithData(server, { 'upload-defer-length': '1' }, first)
  t.equal(response.statusCode, 201)
  t.equal(response.headers['upload-offset'], '5')
  const url = String(response.headers.location)
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-defer-length'], '1')
  t.equal(head.headers['upload-length'], undefined)
  t.equal(head.headers['upload-offset'], '5')
  t.equal((await readRecordFile(server.directory, idOf(url))).length, null)

  const last = bytes(3, 50)
  const end = await patch(url, 5, last, { 'upload-length': '8' })
  t.equal(end.statusCode, 204)
  t.equal(end.headers['upload-offset'], '8')
  t.same(await readFile(path.join(server.completedDir, idOf(url))), Buffer.concat([first, last]), 'finished with both parts')
})

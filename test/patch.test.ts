// tus core PATCH and HEAD: content type, offsets, limits (with and without
// Content-Length), finished uploads, and ids from the URL that must never reach
// the filesystem.
import path from 'node:path'
import { randomBytes, randomUUID } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import t from 'tap'
import { TUS, create, patch, send, startServer, idOf } from './helpers'
import { assertError, base64, listTree, names, patchChunked, patchHeaders, pathOf, readRecordFile } from './protocol-helpers'
import { rawRequest } from './raw-client'

t.test('PATCH without application/offset+octet-stream is refused with 415', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '5' })
  const types = [undefined, 'application/octet-stream', 'text/plain', 'application/json', 'application/offset+octet-streamx', 'multipart/form-data; boundary=x']
  for (const type of types) {
    const headers: Record<string, string> = { ...TUS, 'upload-offset': '0' }
    if (type !== undefined) headers['content-type'] = type
    assertError(t, await send(url, 'PATCH', headers, 'hello'), 415, 'FST_TUS_INVALID_CONTENT_TYPE', `Content-Type ${type}`)
  }
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '0', 'nothing written')
  // Media types are case-insensitive.
  const upper = await send(url, 'PATCH', { ...TUS, 'upload-offset': '0', 'content-type': 'Application/Offset+Octet-Stream' }, 'hello')
  t.equal(upper.statusCode, 204)
  t.equal(upper.headers['upload-offset'], '5')
})

t.test('a missing or invalid Upload-Offset is refused with 400', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '5' })
  const offsets: Array<string | string[] | undefined> = [undefined, '', '-1', 'abc', '1.5', '+0', '01', '0x0', '99999999999999999999', ['0', '0']]
  for (const offset of offsets) {
    const headers = patchHeaders(0)
    if (offset === undefined) delete headers['upload-offset']
    else headers['upload-offset'] = offset
    const response = await rawRequest(server.origin, { method: 'PATCH', path: pathOf(url), headers, body: 'hello' })
    assertError(t, response, 400, 'FST_TUS_INVALID_UPLOAD_OFFSET', `Upload-Offset ${JSON.stringify(offset)}`)
  }
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '0', 'nothing written')
})

t.test('a PATCH at the wrong offset is refused with 409 and the data is unchanged', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10' })
  t.equal((await patch(url, 0, 'hello')).statusCode, 204)
  const dataPath = path.join(server.directory, idOf(url))
  const before = await readFile(dataPath)
  for (const offset of [0, 3, 4, 6, 10]) {
    assertError(t, await patch(url, offset, 'XY'), 409, 'FST_TUS_OFFSET_MISMATCH', `offset ${offset}`)
  }
  t.same(await readFile(dataPath), before, 'data file unchanged')
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '5')
  t.equal((await readRecordFile(server.directory, idOf(url))).offset, 5)
})

t.test('a body past Upload-Length with Content-Length is refused before any byte is written', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10' })
  await patch(url, 0, 'abc')
  const dataPath = path.join(server.directory, idOf(url))
  const before = await readFile(dataPath)
  assertError(t, await patch(url, 3, 'x'.repeat(8)), 413, 'FST_TUS_UPLOAD_LENGTH_EXCEEDED')
  t.same(await readFile(dataPath), before, 'data file unchanged')
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '3')
  t.equal((await patch(url, 3, 'x'.repeat(7))).headers['upload-offset'], '10', 'exactly the rest is fine')
})

t.test('a chunked body past Upload-Length keeps the bytes up to the length', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10', 'upload-metadata': 'filename YQ==' })
  await patch(url, 0, 'abc')
  const response = await patchChunked(url, 3, [Buffer.from('defg'), Buffer.from('hijk'), Buffer.from('lmno')])
  assertError(t, response, 413, 'FST_TUS_UPLOAD_LENGTH_EXCEEDED')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-offset'], '10')
  // The length was reached, so the upload is complete with exactly its first 10 bytes.
  t.equal(await readFile(path.join(server.completedDir, idOf(url)), 'utf8'), 'abcdefghij')
})

t.test('maxChunkSize bounds one request, with or without Content-Length', async (t) => {
  const server = await startServer(t, { maxChunkSize: 8 })
  const url = await create(server.endpoint, { 'upload-length': '40' })
  const data = randomBytes(40)
  const dataPath = path.join(server.directory, idOf(url))

  assertError(t, await patch(url, 0, data.subarray(0, 9)), 413, 'FST_TUS_CHUNK_TOO_LARGE', 'with Content-Length')
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '0', 'refused before writing')
  t.equal((await patch(url, 0, data.subarray(0, 8))).headers['upload-offset'], '8', 'exactly maxChunkSize is fine')

  const chunked = await patchChunked(url, 8, [data.subarray(8, 13), data.subarray(13, 20)])
  assertError(t, chunked, 413, 'FST_TUS_CHUNK_TOO_LARGE', 'chunked')
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '16', 'the bytes up to the limit kept')
  t.same((await readFile(dataPath)).subarray(0, 16), data.subarray(0, 16))
  const small = await patchChunked(url, 16, [data.subarray(16, 20), data.subarray(20, 24)])
  t.equal(small.statusCode, 204, 'a chunked body within the limit is fine')
  t.equal(small.headers['upload-offset'], '24')
})

t.test('sequential PATCHes build the file byte for byte; HEAD follows along', async (t) => {
  const server = await startServer(t)
  const data = randomBytes(3000)
  const url = await create(server.endpoint, { 'upload-length': String(data.length), 'upload-metadata': `filename ${base64('data.bin')}` })
  const id = idOf(url)
  let offset = 0
  for (const size of [1, 999, 0, 1000, 500, 500]) {
    const chunk = data.subarray(offset, offset + size)
    // Alternate Content-Length and chunked bodies: both paths must land the same bytes.
    const response = size % 2 === 0 ? await patch(url, offset, chunk) : await patchChunked(url, offset, [chunk])
    offset += size
    t.equal(response.statusCode, 204, `chunk of ${size}: status`)
    t.equal(response.headers['tus-resumable'], '1.0.0')
    t.equal(response.headers['upload-offset'], String(offset), `chunk of ${size}: offset`)
    if (offset < data.length) {
      const head = await send(url, 'HEAD', TUS)
      t.equal(head.statusCode, 200)
      t.equal(head.headers['upload-offset'], String(offset))
      t.equal(head.headers['upload-length'], String(data.length))
      t.equal(head.headers['upload-metadata'], `filename ${base64('data.bin')}`)
      t.equal(head.headers['cache-control'], 'no-store')
      t.equal(head.text, '')
      t.same((await readFile(path.join(server.directory, id))).subarray(0, offset), data.subarray(0, offset))
    }
  }
  t.same(await readFile(path.join(server.completedDir, id)), data, 'the finished file is the data')
  t.same(await names(server.directory), [], 'nothing left in progress')
  t.match(await readRecordFile(server.completedDir, id), { offset: data.length, length: data.length, finishedAt: String, duration: Number })
})

t.test('a finished upload answers HEAD and only an empty PATCH at its end', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '5', 'upload-metadata': 'filename YS50eHQ=,flag' })
  await patch(url, 0, 'hello')
  const id = idOf(url)
  t.same(await names(server.completedDir), [id, `${id}.meta`].sort(), 'in completedDir')
  const root = path.dirname(server.directory)
  const before = await listTree(root)

  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '5')
  t.equal(head.headers['upload-length'], '5')
  t.equal(head.headers['upload-metadata'], 'filename YS50eHQ=,flag')
  t.equal(head.headers['cache-control'], 'no-store')
  t.equal(head.headers['tus-resumable'], '1.0.0')

  const empty = await patch(url, 5, '')
  t.equal(empty.statusCode, 204, 'an empty PATCH at the end is a no-op')
  t.equal(empty.headers['upload-offset'], '5')
  assertError(t, await patch(url, 5, 'x'), 413, 'FST_TUS_UPLOAD_LENGTH_EXCEEDED', 'bytes with Content-Length')
  assertError(t, await patchChunked(url, 5, [Buffer.from('xyz')]), 413, 'FST_TUS_UPLOAD_LENGTH_EXCEEDED', 'chunked bytes')
  assertError(t, await patch(url, 0, 'hello'), 409, 'FST_TUS_OFFSET_MISMATCH', 'the wrong offset')
  t.same(await listTree(root), before, 'nothing changed on disk')
  t.equal(await readFile(path.join(server.completedDir, id), 'utf8'), 'hello')
})

t.test('unknown, malformed and path-traversing ids are 404 and touch nothing', async (t) => {
  const server = await startServer(t)
  const root = path.dirname(server.directory)
  const url = await create(server.endpoint, { 'upload-length': '5' })
  const id = idOf(url)
  // A decoy upload beside the store's directories: a server that let '..' through would find it.
  const decoy = randomUUID()
  await writeFile(path.join(root, decoy), 'decoy')
  await writeFile(path.join(root, `${decoy}.meta`), JSON.stringify({ ...(await readRecordFile(server.directory, id)), id: decoy }))
  const before = await listTree(root)

  const prefix = pathOf(server.endpoint)
  const ids: Array<[string, string]> = [
    ['an unknown UUID', randomUUID()],
    ['../<decoy>', `..%2F${decoy}`],
    ['../../<root>/<decoy>', `..%2F..%2F${path.basename(root)}%2F${decoy}`],
    ['../../etc/passwd', '..%2F..%2Fetc%2Fpasswd'],
    ['%2e%2e', '%2e%2e'],
    ['%2e%2e%2f%2e%2e%2fetc%2fpasswd', '%2e%2e%2f%2e%2e%2fetc%2fpasswd'],
    ['..', '..'],
    ['the real id in uppercase', id.toUpperCase()],
    ['200 characters (over Fastify\'s default maxParamLength)', 'x'.repeat(200)],
    ['the real id with .meta', `${id}.meta`],
    ['the real id with a NUL', `${id}%00`],
    ['a dot before the real id', `.${id}`],
    ['the real id with an encoded slash', `${id}%2F`],
    ['<id>/../<id>, encoded', encodeURIComponent(`${id}/../${id}`)]
  ]
  for (const [label, bad] of ids) {
    const target = `${prefix}/${bad}`
    const head = await rawRequest(server.origin, { method: 'HEAD', path: target, headers: TUS })
    assertError(t, head, 404, 'FST_TUS_UPLOAD_NOT_FOUND', `HEAD ${label}`, { head: true })
    t.equal(head.headers['upload-offset'], undefined, `HEAD ${label}: no offset`)
    const patched = await rawRequest(server.origin, { method: 'PATCH', path: target, headers: patchHeaders(0), body: 'hacked' })
    assertError(t, patched, 404, 'FST_TUS_UPLOAD_NOT_FOUND', `PATCH ${label}`)
  }
  t.same(await listTree(root), before, 'no file created, changed or removed')
  t.equal(await readFile(path.join(root, decoy), 'utf8'), 'decoy')
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '0', 'the real upload is untouched')
  // The same request on the real id succeeds, so the 404s came from the ids alone.
  t.equal((await rawRequest(server.origin, { method: 'PATCH', path: pathOf(url), headers: patchHeaders(0), body: 'hello' })).statusCode, 204)
})

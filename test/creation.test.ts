// The creation extension: POST answers 201 with an absolute Location built from
// Fastify's request.protocol/host, refuses bad lengths before touching the disk,
// and writes the documented record.
import path from 'node:path'
import { stat } from 'node:fs/promises'
import t from 'tap'
import { TUS, create, send, startServer, idOf } from './helpers'
import { OCTET, UUID_V4, assertError, listTree, names, pathOf, readRecordFile } from './protocol-helpers'
import { rawRequest } from './raw-client'

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

t.test('POST answers 201 with an absolute Location naming a new v4 UUID', async (t) => {
  const server = await startServer(t)
  const first = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10' })
  t.equal(first.statusCode, 201)
  t.equal(first.headers['tus-resumable'], '1.0.0')
  t.match(first.headers.location, new RegExp(`^${escape(server.origin)}/files/[0-9a-f-]{36}$`))
  const id = idOf(String(first.headers.location))
  t.match(id, UUID_V4)
  t.same(await names(server.directory), [id, `${id}.meta`].sort(), 'data and record created')

  const second = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10' })
  t.not(idOf(String(second.headers.location)), id, 'every upload gets its own id')
  const head = await send(String(first.headers.location), 'HEAD', TUS)
  t.equal(head.statusCode, 200, 'the Location is usable as is')
})

t.test('Location follows a custom prefix', async (t) => {
  const server = await startServer(t, { prefix: '/api/v1/uploads/' })
  t.equal(server.endpoint, `${server.origin}/api/v1/uploads`)
  const options = await send(server.endpoint, 'OPTIONS')
  t.equal(options.statusCode, 204)
  const url = await create(server.endpoint, { 'upload-length': '3' })
  t.match(url, new RegExp(`^${escape(server.origin)}/api/v1/uploads/[0-9a-f-]{36}$`))
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-length'], '3')
  // The default prefix is not served any more.
  const elsewhere = await send(`${server.origin}/files`, 'POST', { ...TUS, 'upload-length': '3' })
  t.equal(elsewhere.statusCode, 404)
})

t.test('Location believes X-Forwarded-Proto and X-Forwarded-Host only with trustProxy', async (t) => {
  const forwarded = { ...TUS, 'upload-length': '3', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'uploads.example.com' }

  const trusting = await startServer(t, {}, { trustProxy: true })
  const behindProxy = await send(trusting.endpoint, 'POST', forwarded)
  t.equal(behindProxy.statusCode, 201)
  t.match(behindProxy.headers.location, /^https:\/\/uploads\.example\.com\/files\/[0-9a-f-]{36}$/)
  t.equal((await send(`${trusting.endpoint}/${idOf(String(behindProxy.headers.location))}`, 'HEAD', TUS)).statusCode, 200)

  const direct = await startServer(t)
  const spoofed = await send(direct.endpoint, 'POST', forwarded)
  t.equal(spoofed.statusCode, 201)
  t.match(spoofed.headers.location, new RegExp(`^${escape(direct.origin)}/files/[0-9a-f-]{36}$`), 'X-Forwarded-* ignored')
})

t.test('POST without Upload-Length or Upload-Defer-Length is refused', async (t) => {
  const server = await startServer(t)
  const response = await send(server.endpoint, 'POST', TUS)
  assertError(t, response, 400, 'FST_TUS_MISSING_UPLOAD_LENGTH')
  t.equal(response.headers.location, undefined)
  t.same(await names(server.directory), [], 'nothing created')
})

t.test('an invalid Upload-Length is refused with 400', async (t) => {
  const server = await startServer(t)
  const lengths: Array<string | string[]> = [
    '-1', 'abc', '1.5', '+5', '01', '1e3', '0x10', '5 5', '', '9007199254740992', '99999999999999999999', ['5', '5']
  ]
  for (const length of lengths) {
    const response = await rawRequest(server.origin, { method: 'POST', path: '/files', headers: { ...TUS, 'upload-length': length } })
    assertError(t, response, 400, 'FST_TUS_INVALID_UPLOAD_LENGTH', `Upload-Length ${JSON.stringify(length)}`)
  }
  t.same(await names(server.directory), [], 'nothing created')
})

t.test('whitespace around Upload-Length is not part of the value', async (t) => {
  // HTTP strips optional whitespace around a field value (RFC 9110 5.5) before
  // the application sees it, so " 5" is "5"; only inner whitespace can be refused.
  const server = await startServer(t)
  const response = await rawRequest(server.origin, { method: 'POST', path: '/files', headers: { ...TUS, 'upload-length': ' 5 ' } })
  t.equal(response.statusCode, 201)
  t.equal((await send(String(response.headers.location), 'HEAD', TUS)).headers['upload-length'], '5')
})

t.test('Upload-Defer-Length must be 1 and must come alone', async (t) => {
  const server = await startServer(t)
  const cases: Array<Record<string, string | string[]>> = [
    { 'upload-defer-length': '0' },
    { 'upload-defer-length': '2' },
    { 'upload-defer-length': 'true' },
    { 'upload-defer-length': '' },
    { 'upload-defer-length': ['1', '1'] },
    { 'upload-defer-length': '1', 'upload-length': '5' },
    { 'upload-defer-length': '1', 'upload-length': '0' }
  ]
  for (const headers of cases) {
    const response = await rawRequest(server.origin, { method: 'POST', path: '/files', headers: { ...TUS, ...headers } })
    assertError(t, response, 400, 'FST_TUS_INVALID_DEFER_LENGTH', JSON.stringify(headers))
  }
  t.same(await names(server.directory), [], 'nothing created')
})

t.test('Upload-Length over maxSize is refused with 413 and nothing is created', async (t) => {
  const server = await startServer(t, { maxSize: 1000 })
  const root = path.dirname(server.directory)
  const before = await listTree(root)
  for (const length of ['1001', '9007199254740991']) {
    const response = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': length })
    assertError(t, response, 413, 'FST_TUS_MAX_SIZE_EXCEEDED', `Upload-Length ${length}`)
    t.equal(response.headers.location, undefined)
  }
  t.same(await listTree(root), before, 'disk unchanged')
  const atLimit = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1000' })
  t.equal(atLimit.statusCode, 201, 'exactly maxSize is allowed')
})

t.test('Upload-Length 0 finishes the upload at creation', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '0' })
  const id = idOf(url)
  t.same(await names(server.directory), [], 'nothing left in progress')
  t.same(await names(server.completedDir), [id, `${id}.meta`].sort(), 'handed over to completedDir')
  t.equal((await stat(path.join(server.completedDir, id))).size, 0)
  const record = await readRecordFile(server.completedDir, id)
  t.equal(record.offset, 0)
  t.equal(record.length, 0)
  t.match(record.finishedAt, ISO_DATE)
  t.type(record.duration, 'number')
  t.ok(record.duration! >= 0)

  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '0')
  t.equal(head.headers['upload-length'], '0')
  t.equal(head.headers['cache-control'], 'no-store')
})

t.test('the record on disk has the documented fields', async (t) => {
  const server = await startServer(t)
  const before = Date.now()
  const url = await create(server.endpoint, { 'upload-length': '10', 'upload-metadata': 'filename YS50eHQ=,private' })
  const id = idOf(url)
  const record = await readRecordFile(server.directory, id)
  const documented = ['id', 'metadata', 'serverMetadata', 'length', 'offset', 'createdAt', 'lastWrite', 'finishedAt', 'duration', 'expiresAt', 'concat']
  for (const field of documented) t.ok(Object.hasOwn(record, field), `field ${field}`)
  t.equal(record.id, id)
  t.same(record.metadata, { filename: 'a.txt', private: null })
  t.same(record.serverMetadata, {})
  t.equal(record.length, 10)
  t.equal(record.offset, 0)
  t.match(record.createdAt, ISO_DATE)
  t.ok(Date.parse(record.createdAt) >= before - 1000 && Date.parse(record.createdAt) <= Date.now() + 1000, 'createdAt is now')
  t.equal(record.lastWrite, record.createdAt)
  t.equal(record.finishedAt, null)
  t.equal(record.duration, null)
  t.equal(Date.parse(record.expiresAt!) - Date.parse(record.lastWrite), 24 * 3600_000, 'expires a day after its last write by default')
  t.equal(record.concat, null)
  t.ok((await stat(path.join(server.directory, id))).isFile(), 'data file beside the record')
})

t.test('POST with a body of another Content-Type is refused with 415 and nothing is created', async (t) => {
  const server = await startServer(t)
  const root = path.dirname(server.directory)
  const before = await listTree(root)
  const bodies: Array<[string, string]> = [
    ['text/plain', 'hello'],
    ['application/json', '{"a":1}'],
    ['application/octet-stream', 'hello'],
    ['application/x-www-form-urlencoded', 'a=hello'],
    ['multipart/form-data; boundary=x', '--x--']
  ]
  for (const [type, body] of bodies) {
    const response = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '5', 'content-type': type }, body)
    assertError(t, response, 415, 'FST_TUS_INVALID_CONTENT_TYPE', type)
    t.equal(response.headers.location, undefined, `${type}: no Location`)
  }
  t.same(await listTree(root), before, 'disk unchanged')
  // The tus type itself, with an empty body, is plain creation.
  const empty = await rawRequest(server.origin, { method: 'POST', path: pathOf(server.endpoint), headers: { ...TUS, 'upload-length': '5', 'content-type': OCTET }, body: '' })
  t.equal(empty.statusCode, 201)
  t.equal(empty.headers['upload-offset'], '0')
})

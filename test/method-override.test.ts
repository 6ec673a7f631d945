// X-HTTP-Method-Override: a POST to an upload URL stands for PATCH, HEAD or
// DELETE, for networks that let only GET and POST through; nothing else.
import t from 'tap'
import { TUS, create, idOf, send, startServer } from './helpers'
import { OCTET, assertError, names, readRecordFile } from './protocol-helpers'

const override = (method: string): Record<string, string> => ({ ...TUS, 'x-http-method-override': method })

t.test('POST with X-HTTP-Method-Override: PATCH writes like a PATCH', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const response = await send(url, 'POST', { ...override('PATCH'), 'content-type': OCTET, 'upload-offset': '0' }, 'hello')
  t.equal(response.statusCode, 204)
  t.equal(response.headers['tus-resumable'], '1.0.0')
  t.equal(response.headers['upload-offset'], '5')
  t.equal((await readRecordFile(server.directory, idOf(url))).offset, 5, 'the bytes are recorded')
  assertError(t, await send(url, 'POST', { ...override('PATCH'), 'content-type': OCTET, 'upload-offset': '0' }, 'again'), 409, 'FST_TUS_OFFSET_MISMATCH', 'the offset is checked as for a PATCH')

  const finishing = await send(url, 'POST', { ...override('PATCH'), 'content-type': OCTET, 'upload-offset': '5' }, 'world')
  t.equal(finishing.statusCode, 204)
  t.equal(finishing.headers['upload-offset'], '10')
  t.strictSame(await names(server.completedDir), [idOf(url), `${idOf(url)}.meta`], 'and the finished upload is handed over')
})

t.test('POST with X-HTTP-Method-Override: HEAD answers like a HEAD', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10', 'upload-metadata': 'filename YS50eHQ=' })
  const response = await send(url, 'POST', override('HEAD'))
  t.equal(response.statusCode, 200)
  t.equal(response.headers['tus-resumable'], '1.0.0')
  t.equal(response.headers['upload-offset'], '0')
  t.equal(response.headers['upload-length'], '10')
  t.equal(response.headers['upload-metadata'], 'filename YS50eHQ=')
  t.equal(response.headers['cache-control'], 'no-store')
  t.equal(response.text, '', 'no body')
})

t.test('POST with X-HTTP-Method-Override: DELETE terminates', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const response = await send(url, 'POST', override('DELETE'))
  t.equal(response.statusCode, 204)
  t.equal(response.headers['tus-resumable'], '1.0.0')
  t.strictSame(await names(server.directory), [], 'data and record deleted')
  assertError(t, await send(url, 'HEAD', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'gone', { head: true })
})

t.test('a POST to an upload URL without an override, or with another method: 405', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const cases: Array<[string, Record<string, string>]> = [
    ['no override', TUS],
    ['PUT', override('PUT')],
    ['POST', override('POST')],
    ['GET', override('GET')],
    ['OPTIONS', override('OPTIONS')],
    ['lower-case patch', { ...override('patch'), 'content-type': OCTET, 'upload-offset': '0' }]
  ]
  for (const [label, headers] of cases) {
    assertError(t, await send(url, 'POST', headers), 405, 'FST_TUS_METHOD_NOT_ALLOWED', label)
  }
  t.equal((await readRecordFile(server.directory, idOf(url))).offset, 0, 'nothing written')
})

t.test('override PATCH without the tus content type: 415, like a PATCH', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10' })
  assertError(t, await send(url, 'POST', { ...override('PATCH'), 'content-type': 'application/octet-stream', 'upload-offset': '0' }, 'hello'), 415, 'FST_TUS_INVALID_CONTENT_TYPE', 'another content type')
  assertError(t, await send(url, 'POST', { ...override('PATCH'), 'upload-offset': '0' }), 415, 'FST_TUS_INVALID_CONTENT_TYPE', 'no content type')
  t.equal((await readRecordFile(server.directory, idOf(url))).offset, 0, 'nothing written')
})

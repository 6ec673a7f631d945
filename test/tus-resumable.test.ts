// tus core: OPTIONS discovery, the Tus-Resumable version check (412) and the
// Tus-Resumable header on every answer but OPTIONS, errors included.
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { TUS, create, patch, send, startServer } from './helpers'
import { OCTET, assertError, listTree, pathOf } from './protocol-helpers'
import { rawRequest } from './raw-client'

const EXTENSIONS = 'creation,creation-with-upload,creation-defer-length,termination,checksum,checksum-trailer,expiration,concatenation,concatenation-unfinished'

t.test('OPTIONS answers 204 with Tus-Version and Tus-Extension, without Tus-Resumable', async (t) => {
  const server = await startServer(t)
  // The server must ignore Tus-Resumable on OPTIONS, whatever it says.
  const variants: Array<Record<string, string>> = [{}, TUS, { 'tus-resumable': '0.2.2' }]
  for (const headers of variants) {
    const response = await send(server.endpoint, 'OPTIONS', headers)
    const label = JSON.stringify(headers)
    t.equal(response.statusCode, 204, `${label}: status`)
    t.equal(response.headers['tus-version'], '1.0.0', `${label}: Tus-Version`)
    t.equal(response.headers['tus-extension'], EXTENSIONS, `${label}: Tus-Extension`)
    t.equal(response.headers['tus-max-size'], undefined, `${label}: no Tus-Max-Size without maxSize`)
    t.equal(response.headers['tus-resumable'], undefined, `${label}: no Tus-Resumable`)
    t.equal(response.text, '', `${label}: no body`)
  }
})

t.test('OPTIONS names Tus-Max-Size when maxSize is set', async (t) => {
  const server = await startServer(t, { maxSize: 1048576 })
  const response = await send(server.endpoint, 'OPTIONS')
  t.equal(response.statusCode, 204)
  t.equal(response.headers['tus-max-size'], '1048576')
  t.equal(response.headers['tus-version'], '1.0.0')
  t.equal(response.headers['tus-resumable'], undefined)
})

t.test('a missing or unsupported Tus-Resumable is refused with 412 and Tus-Version', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '5' })
  const root = path.dirname(server.directory)
  const before = await listTree(root)

  const versions: Array<string | string[] | undefined> = [undefined, '0.2.2', '1.0', '1.0.1', '', ['1.0.0', '1.0.0']]
  for (const version of versions) {
    const tus = version === undefined ? {} : { 'tus-resumable': version }
    const requests = [
      { method: 'POST', path: pathOf(server.endpoint), headers: { ...tus, 'upload-length': '5' } },
      { method: 'HEAD', path: pathOf(url), headers: tus },
      { method: 'PATCH', path: pathOf(url), headers: { ...tus, 'content-type': OCTET, 'upload-offset': '0' }, body: 'hello' }
    ]
    for (const request of requests) {
      const label = `${request.method} with Tus-Resumable ${JSON.stringify(version)}`
      const response = await rawRequest(server.origin, request)
      assertError(t, response, 412, 'FST_TUS_UNSUPPORTED_VERSION', label, { head: request.method === 'HEAD' })
      t.equal(response.headers['tus-version'], '1.0.0', `${label}: Tus-Version`)
    }
  }
  // Nothing was created and no byte was written by the refused requests.
  t.same(await listTree(root), before, 'disk unchanged')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-offset'], '0')
})

t.test('Tus-Resumable: 1.0.0 is on every answer but OPTIONS, successes and errors alike', async (t) => {
  const server = await startServer(t, { maxSize: 100 })
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const unknown = `${server.endpoint}/${randomUUID()}`
  const octet = { ...TUS, 'content-type': OCTET }

  const cases: Array<{ label: string, status: number, code?: string, run: () => Promise<Awaited<ReturnType<typeof send>>> }> = [
    { label: 'POST created', status: 201, run: () => send(server.endpoint, 'POST', { ...TUS, 'upload-length': '3' }) },
    { label: 'HEAD found', status: 200, run: () => send(url, 'HEAD', TUS) },
    { label: 'PATCH written', status: 204, run: () => patch(url, 0, 'abc') },
    { label: 'HEAD unknown upload', status: 404, run: () => send(unknown, 'HEAD', TUS) },
    { label: 'PATCH unknown upload', status: 404, code: 'FST_TUS_UPLOAD_NOT_FOUND', run: () => patch(unknown, 0, 'abc') },
    { label: 'GET on an upload (no such route)', status: 405, code: 'FST_TUS_UNSUPPORTED_METHOD', run: () => send(url, 'GET', TUS) },
    { label: 'POST without length', status: 400, code: 'FST_TUS_MISSING_UPLOAD_LENGTH', run: () => send(server.endpoint, 'POST', TUS) },
    { label: 'PATCH with invalid offset', status: 400, code: 'FST_TUS_INVALID_UPLOAD_OFFSET', run: () => send(url, 'PATCH', { ...octet, 'upload-offset': 'x' }, 'a') },
    { label: 'PATCH at the wrong offset', status: 409, code: 'FST_TUS_OFFSET_MISMATCH', run: () => patch(url, 0, 'abc') },
    { label: 'POST over maxSize', status: 413, code: 'FST_TUS_MAX_SIZE_EXCEEDED', run: () => send(server.endpoint, 'POST', { ...TUS, 'upload-length': '101' }) },
    { label: 'PATCH past Upload-Length', status: 413, code: 'FST_TUS_UPLOAD_LENGTH_EXCEEDED', run: () => patch(url, 3, 'x'.repeat(8)) },
    { label: 'PATCH as text/plain', status: 415, code: 'FST_TUS_INVALID_CONTENT_TYPE', run: () => send(url, 'PATCH', { ...TUS, 'content-type': 'text/plain', 'upload-offset': '3' }, 'a') }
  ]
  for (const { label, status, code, run } of cases) {
    const response = await run()
    t.equal(response.statusCode, status, `${label}: status`)
    t.equal(response.headers['tus-resumable'], '1.0.0', `${label}: Tus-Resumable`)
    if (code !== undefined) t.equal(response.json().code, code, `${label}: code`)
  }
})

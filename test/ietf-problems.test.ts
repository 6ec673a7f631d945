// Every refusal of the IETF protocol, for every interop version: its status,
// its problem document (RFC 9457) with the problem type the version defines
// (about:blank where it defines none) and its FST_TUS_* code. And which requests
// are not the draft's at all.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { idOf, startServer, type TestServer } from './helpers'
import { appendFields, assertProblem, completeField, isComplete, VERSIONS } from './ietf-helpers'
import { readRecordFile } from './protocol-helpers'
import { exchange, type RawResponse } from './raw-socket'

const pathOf = (url: string): string => new URL(url).pathname

async function create (server: TestServer, version: number, headers: Record<string, string | number>, body?: Buffer): Promise<RawResponse[]> {
  return await exchange(server.origin, 'POST /files HTTP/1.1', { 'upload-draft-interop-version': version, 'content-length': body?.length ?? 0, ...headers }, body)
}

async function createEmpty (server: TestServer, version: number, length: number): Promise<string> {
  const [created] = await create(server, version, { ...completeField(version, false), 'upload-length': length })
  return created.headers.location
}

async function patch (server: TestServer, url: string, headers: Record<string, string | number>, body = Buffer.alloc(0)): Promise<RawResponse> {
  const [response] = await exchange(server.origin, `PATCH ${pathOf(url)} HTTP/1.1`, { 'content-length': body.length, ...headers }, body)
  return response
}

for (const version of VERSIONS) {
  const typed = (kind: string, since: number, until = 9): string | undefined => version >= since && version <= until ? kind : undefined

  t.test(`version ${version}: refusals`, async (t) => {
    const server = await startServer(t, { maxSize: 1000, maxChunkSize: 600 })
    const url = await createEmpty(server, version, 500)
    await patch(server, url, appendFields(version, 0, false), randomBytes(100))

    const mismatch = await patch(server, url, appendFields(version, 50, false), randomBytes(10))
    const body = assertProblem(t, mismatch, 409, 'FST_TUS_OFFSET_MISMATCH', typed('mismatching-upload-offset', 6), 'a wrong offset')
    t.equal(mismatch.headers['upload-offset'], '100', 'the right offset in Upload-Offset')
    t.equal(isComplete(version, mismatch.headers), false, 'and not complete')
    if (version >= 6) t.same([body['expected-offset'], body['provided-offset']], [100, 50], 'expected-offset and provided-offset')

    const untyped = await patch(server, url, { ...appendFields(version, 100, false), 'content-type': 'application/octet-stream' }, randomBytes(10))
    if (version >= 6) assertProblem(t, untyped, 415, 'FST_TUS_INVALID_PARTIAL_UPLOAD_TYPE', undefined, 'an append not labelled application/partial-upload')
    else t.equal(untyped.status, 204, `version ${version} needs no media type on an append`)
    const offset = version >= 6 ? 100 : 110

    const noComplete = appendFields(version, offset, false)
    delete noComplete['upload-complete']
    delete noComplete['upload-incomplete']
    assertProblem(t, await patch(server, url, noComplete), 400, 'FST_TUS_INVALID_UPLOAD_COMPLETE', undefined, 'no completeness field')
    const field = version === 3 ? 'upload-incomplete' : 'upload-complete'
    assertProblem(t, await patch(server, url, { ...noComplete, [field]: 'true' }), 400, 'FST_TUS_INVALID_UPLOAD_COMPLETE', undefined, 'not a structured Boolean')
    const noOffset = appendFields(version, offset, false)
    delete noOffset['upload-offset']
    assertProblem(t, await patch(server, url, noOffset), 400, 'FST_TUS_INVALID_UPLOAD_OFFSET', undefined, 'no offset')
    assertProblem(t, await patch(server, url, { ...noOffset, 'upload-offset': '-1' }), 400, 'FST_TUS_INVALID_UPLOAD_OFFSET', undefined, 'a negative offset')

    const inconsistent = typed('inconsistent-upload-length', 7)
    assertProblem(t, await patch(server, url, appendFields(version, offset, true), randomBytes(10)), 400, 'FST_TUS_INCONSISTENT_LENGTH', inconsistent, 'completing short of the length')
    assertProblem(t, await patch(server, url, appendFields(version, offset, false), randomBytes(500 - offset + 1)), 400, 'FST_TUS_INCONSISTENT_LENGTH', inconsistent, 'an append past the length')
    assertProblem(t, await patch(server, url, appendFields(version, offset, false, { 'upload-length': 400 })), 400, 'FST_TUS_INCONSISTENT_LENGTH', inconsistent, 'a different Upload-Length')
    t.equal((await readRecordFile(server.directory, idOf(url))).offset, offset, 'none of them moved the offset')

    const tooBig = await patch(server, url, appendFields(version, offset, false), randomBytes(601))
    assertProblem(t, tooBig, 413, 'FST_TUS_CHUNK_TOO_LARGE', undefined, 'an append over maxChunkSize')
    t.equal(tooBig.headers['upload-limit'], version >= 6 ? `max-size=1000, max-append-size=600, ${version === 6 ? 'expires' : 'max-age'}=86400` : undefined, '413: the limits')

    const finished = await patch(server, url, appendFields(version, offset, true), randomBytes(500 - offset))
    t.equal(isComplete(version, finished.headers), true, 'completed')
    assertProblem(t, await patch(server, url, appendFields(version, 500, true), randomBytes(1)), 400, 'FST_TUS_UPLOAD_COMPLETED',
      typed('inconsistent-upload-length', 7) ?? typed('completed-upload', 6), 'data for a completed upload')

    const [whole] = await create(server, version, { ...completeField(version, true), 'upload-length': 11 }, randomBytes(10))
    assertProblem(t, whole, 400, 'FST_TUS_INCONSISTENT_LENGTH', inconsistent, 'a creation whose Upload-Length and Content-Length differ')
    const [large] = await create(server, version, { ...completeField(version, false), 'upload-length': 1001 })
    assertProblem(t, large, 413, 'FST_TUS_MAX_SIZE_EXCEEDED', undefined, 'a creation over maxSize')
    const [bare] = await create(server, version, {})
    assertProblem(t, bare, 400, 'FST_TUS_INVALID_UPLOAD_COMPLETE', undefined, 'a creation without a completeness field')
    const [unknown] = await exchange(server.origin, 'DELETE /files/00000000-0000-4000-8000-000000000000 HTTP/1.1', { 'upload-draft-interop-version': version })
    assertProblem(t, unknown, 404, 'FST_TUS_UPLOAD_NOT_FOUND', undefined, 'an unknown upload')
    t.equal(unknown.headers['upload-draft-interop-version'], String(version), 'every answer echoes the version')
  })
}

t.test('a creation refused by tus:preCreate gets no 104 and no upload', async (t) => {
  const server = await startServer(t, {
    hooks: { 'tus:preCreate': () => { throw Object.assign(new Error('no uploads today'), { statusCode: 403, code: 'APP_CLOSED' }) } }
  })
  const body = randomBytes(100)
  const responses = await create(server, 8, { 'upload-complete': '?1' }, body)
  t.same(responses.map((response) => response.status), [403], 'only the refusal')
  assertProblem(t, responses[0], 403, 'APP_CLOSED', undefined, 'the hook\'s refusal')
  t.equal(responses[0].json().detail, 'no uploads today', 'told as it is')
})

t.test('requests that are not the draft\'s are tus 1.0 requests', async (t) => {
  const server = await startServer(t)
  for (const value of ['2', '10', 'six', '6, 7', '06']) {
    const [response] = await create(server, 0, { 'upload-draft-interop-version': value, 'upload-complete': '?0' })
    t.equal(response.status, 412, `interop version ${JSON.stringify(value)}: tus 1.0, which wants Tus-Resumable`)
    t.equal(response.json().code, 'FST_TUS_UNSUPPORTED_VERSION', 'its code')
    t.equal(response.headers['tus-resumable'], '1.0.0', 'a tus answer')
  }
  const [tusCreation] = await exchange(server.origin, 'POST /files HTTP/1.1', { 'tus-resumable': '1.0.0', 'upload-length': 5, 'content-length': 0 })
  t.equal(tusCreation.status, 201, 'tus 1.0 creation unchanged')
  t.equal(tusCreation.headers['upload-complete'], undefined, 'with no IETF field')
})

t.test('ietf: false serves tus 1.0 only', async (t) => {
  const server = await startServer(t, { ietf: false })
  const responses = await create(server, 6, { 'upload-complete': '?1' }, randomBytes(10))
  t.same(responses.map((response) => response.status), [412], 'a draft request is a tus request without Tus-Resumable: no 104')
  t.equal(server.app.tus.options.ietf, false, 'the resolved option')
})

t.test('a method the draft does not serve at a URL is 405 with the draft\'s Allow; tus keeps its own', async (t) => {
  const server = await startServer(t)
  const url = await createEmpty(server, 8, 10)
  const [posted] = await exchange(server.origin, `POST ${pathOf(url)} HTTP/1.1`, { 'upload-draft-interop-version': 8, 'content-length': 0 })
  assertProblem(t, posted, 405, 'FST_TUS_UNSUPPORTED_METHOD', undefined, 'POST on an upload (no method override in the draft)')
  t.equal(posted.headers.allow, 'DELETE, GET, HEAD, PATCH', 'Allow: what the draft serves there')
  const [got] = await exchange(server.origin, `GET ${pathOf(url)} HTTP/1.1`, { 'tus-resumable': '1.0.0' })
  t.equal(got.status, 405, 'GET is not tus\'s')
  t.equal(got.headers.allow, 'DELETE, HEAD, PATCH, POST', 'Allow: what tus serves there')
  const [put] = await exchange(server.origin, 'PUT /files HTTP/1.1', { 'tus-resumable': '1.0.0', 'content-length': 0 })
  t.equal(put.headers.allow, 'OPTIONS, POST', 'nor is PUT')
})

// Offset retrieval, appends, completion and cancellation in the IETF draft, for
// every interop version, as raw bytes; and the optimistic upload URLSession
// makes, cut off in the middle and resumed with HEAD and PATCH as it does.
import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import t from 'tap'
import type { UploadRecord } from '../types/index'
import { idOf, startServer, type TestServer } from './helpers'
import { appendFields, completeField, isComplete, VERSIONS } from './ietf-helpers'
import { assertCompleted, sha256, waitFor } from './interop-helpers'
import { exchange, RawConnection, type RawResponse } from './raw-socket'

const pathOf = (url: string): string => new URL(url).pathname

async function createEmpty (server: TestServer, version: number, length?: number): Promise<string> {
  const [created] = await exchange(server.origin, 'POST /files HTTP/1.1', {
    'upload-draft-interop-version': version, ...completeField(version, false), 'content-length': 0, ...(length === undefined ? {} : { 'upload-length': length })
  })
  if (created.status !== 201) throw new Error(`creation failed: ${created.status} ${created.text}`)
  return created.headers.location
}

async function head (server: TestServer, url: string, version: number, method = 'HEAD'): Promise<RawResponse> {
  const [response] = await exchange(server.origin, `${method} ${pathOf(url)} HTTP/1.1`, { 'upload-draft-interop-version': version })
  return response
}

async function append (server: TestServer, url: string, version: number, offset: number, body: Buffer, complete: boolean): Promise<RawResponse[]> {
  return await exchange(server.origin, `PATCH ${pathOf(url)} HTTP/1.1`, { ...appendFields(version, offset, complete), 'content-length': body.length }, body)
}

for (const version of VERSIONS) {
  t.test(`version ${version}: offset retrieval, appends, completion`, async (t) => {
    const completed: UploadRecord[] = []
    const server = await startServer(t, { hooks: { 'tus:completed': (record) => { completed.push(record) } } })
    const source = randomBytes(30_000)
    const url = await createEmpty(server, version, source.length)

    const fresh = await head(server, url, version)
    t.equal(fresh.status, 204, 'HEAD: 204')
    t.equal(fresh.headers['upload-offset'], '0', 'HEAD: offset 0')
    t.equal(isComplete(version, fresh.headers), false, 'HEAD: not complete')
    t.equal(fresh.headers['upload-length'], String(source.length), 'HEAD: the length the client gave')
    t.equal(fresh.headers['cache-control'], 'no-store', 'HEAD: not cached')
    if (version >= 6) t.match(fresh.headers['upload-limit'], version === 6 ? /^expires=86[34]\d\d$/ : /^max-age=86[34]\d\d$/, 'HEAD: the lifetime left in Upload-Limit')
    else t.equal(fresh.headers['upload-limit'], undefined, 'HEAD: no Upload-Limit before version 6')

    const first = await append(server, url, version, 0, source.subarray(0, 10_000), false)
    t.same(first.map((response) => response.status), [204], 'a short append: 204, no 104')
    t.equal(first[0].headers['upload-offset'], '10000', 'new offset')
    t.equal(isComplete(version, first[0].headers), false, 'not complete')

    const got = await head(server, url, version, 'GET')
    t.equal(got.status, 204, 'GET retrieves the offset like HEAD')
    t.equal(got.headers['upload-offset'], '10000', 'GET: the offset')

    const last = await append(server, url, version, 10_000, source.subarray(10_000), true)
    t.equal(last[0].status, 204, 'the completing append')
    t.equal(isComplete(version, last[0].headers), true, 'says complete')
    t.equal(last[0].headers['upload-offset'], String(source.length), 'final offset')
    await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
    t.same(completed.map((record) => record.id), [idOf(url)], 'tus:completed once')

    const done = await head(server, url, version)
    t.equal(isComplete(version, done.headers), true, 'HEAD of the finished upload: complete')
    t.equal(done.headers['upload-offset'], String(source.length), 'at its length')
    const again = await append(server, url, version, source.length, Buffer.alloc(0), true)
    t.equal(again[0].status, 204, 'an empty completing append after completion (a lost answer) is answered again')
    t.equal(isComplete(version, again[0].headers), true, 'complete')
  })

  t.test(`version ${version}: an upload of unknown length is completed by an empty append`, async (t) => {
    const server = await startServer(t)
    const source = randomBytes(5000)
    const url = await createEmpty(server, version)
    t.equal((await head(server, url, version)).headers['upload-length'], undefined, 'no length yet')
    await append(server, url, version, 0, source, false)
    const [closing] = await append(server, url, version, source.length, Buffer.alloc(0), true)
    t.equal(closing.status, 204, 'the empty completing append')
    t.equal(isComplete(version, closing.headers), true, 'complete')
    t.equal(closing.headers['upload-length'], String(source.length), 'the length is where the data ended')
    await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
  })

  t.test(`version ${version}: cancellation`, async (t) => {
    const server = await startServer(t)
    const url = await createEmpty(server, version, 100)
    const [cancelled] = await exchange(server.origin, `DELETE ${pathOf(url)} HTTP/1.1`, { 'upload-draft-interop-version': version })
    t.equal(cancelled.status, 204, 'DELETE: 204')
    t.same(await readdir(server.directory), [], 'nothing left')
    t.equal((await head(server, url, version)).status, 404, 'gone')
  })
}

for (const version of VERSIONS) {
  t.test(`version ${version}: an optimistic upload cut off in the middle is resumed with HEAD and PATCH, as URLSession does`, async (t) => {
    const server = await startServer(t)
    const source = randomBytes(256 * 1024)
    const half = 100 * 1024
    const connection = await RawConnection.open(server.origin)
    connection.writeHead('POST /files HTTP/1.1', {
      host: 'localhost', 'upload-draft-interop-version': version, ...completeField(version, true), 'upload-length': source.length, 'content-length': source.length, 'content-type': 'video/mp4'
    })
    const announced = await connection.next()
    t.equal(announced.status, 104, 'announced')
    const url = announced.headers.location
    await connection.write(source.subarray(0, half))
    connection.destroy()

    // The server has not always noticed the cut when the HEAD comes: the HEAD stops the request first.
    const state = await head(server, url, version)
    t.equal(state.status, 204, 'HEAD after the cut')
    t.equal(isComplete(version, state.headers), false, 'an interrupted upload is not complete')
    const offset = Number(state.headers['upload-offset'])
    t.ok(offset <= half, `the offset (${offset}) is no more than what was sent`)
    t.equal(state.headers['upload-length'], String(source.length), 'the length is known')
    const [resumed] = await append(server, url, version, offset, source.subarray(offset), true)
    t.equal(resumed.status, 204, 'the rest, appended')
    t.equal(isComplete(version, resumed.headers), true, 'complete')
    await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length, metadata: { filetype: 'video/mp4' } })
  })
}

t.test('a HEAD stops an append still streaming into the upload, and gives the offset it reached', async (t) => {
  const server = await startServer(t)
  const source = randomBytes(64 * 1024)
  const url = await createEmpty(server, 6, source.length)
  const connection = await RawConnection.open(server.origin)
  t.teardown(() => connection.destroy())
  connection.writeHead(`PATCH ${pathOf(url)} HTTP/1.1`, { host: 'localhost', ...appendFields(6, 0, true), 'content-length': source.length })
  await connection.write(source.subarray(0, 1000))
  // The client gave up on that request without the server seeing it end, and asks where it stands.
  const state = await waitFor('the bytes sent recorded', async () => {
    const response = await head(server, url, 6)
    return Number(response.headers['upload-offset']) === 1000 ? response : undefined
  })
  t.equal(state.status, 204, 'HEAD answered at once')
  // As the draft recommends, the old request's connection is ended abruptly.
  await connection.closed()
  t.pass('the old request\'s connection was closed')
  const [rest] = await append(server, url, 6, 1000, source.subarray(1000), true)
  t.equal(rest.headers['upload-complete'], '?1', 'resumed to the end')
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
})

t.test('with downloads on, GET of an upload is the draft\'s offset retrieval for its requests and a download for any other', async (t) => {
  const server = await startServer(t, { download: true })
  const source = Buffer.from('downloadable bytes')
  const [created] = await exchange(server.origin, 'POST /files HTTP/1.1', { 'upload-draft-interop-version': 9, 'upload-complete': '?1', 'content-length': source.length }, source)
  const url = created.headers.location
  const offset = await head(server, url, 9, 'GET')
  t.equal(offset.status, 204, 'the draft\'s GET: 204')
  t.equal(offset.headers['upload-offset'], String(source.length), 'its offset')
  const [downloaded] = await exchange(server.origin, `GET ${pathOf(url)} HTTP/1.1`, {})
  t.equal(downloaded.status, 200, 'a plain GET downloads it')
  t.equal(downloaded.text, source.toString(), 'its bytes')
})

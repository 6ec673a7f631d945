// Upload creation in the IETF draft, for every interop version, as raw bytes:
// the optimistic way URLSession takes (the whole body, Upload-Complete: ?1, and a
// 104 announcing the upload before the body is read) and the careful way
// tus-js-client takes (an empty body and Upload-Complete: ?0, the URL in the 201).
import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import type { UploadRecord } from '../types/index'
import { parseDictionary } from '../lib/structured-fields'
import { idOf, startServer } from './helpers'
import { announcement, completeField, expectedLimit, isComplete, VERSIONS } from './ietf-helpers'
import { assertCompleted, sha256 } from './interop-helpers'
import { readRecordFile } from './protocol-helpers'
import { exchange, RawConnection } from './raw-socket'

const LIMITS = 'max-size=1048576, max-append-size=524288'

for (const version of VERSIONS) {
  t.test(`version ${version}: a whole upload in one POST is announced by a 104, then created`, async (t) => {
    const completed: UploadRecord[] = []
    const server = await startServer(t, { maxSize: 1024 * 1024, maxChunkSize: 512 * 1024, expiration: false, hooks: { 'tus:completed': (upload) => { completed.push(upload) } } })
    const body = randomBytes(64 * 1024 + 3)
    const responses = await exchange(server.origin, 'POST /files HTTP/1.1', {
      'upload-draft-interop-version': version,
      ...completeField(version, true),
      'content-type': 'image/jpeg; quality=high',
      'content-disposition': 'inline; filename="fallback.jpg"; filename*=UTF-8\'\'f%C3%AAte%20%E2%82%AC.jpg',
      'content-length': body.length
    }, body)
    t.same(responses.map((response) => response.status), [104, 201], 'one 104, then the final answer')
    const [interim, final] = responses
    const location = interim.headers.location
    t.match(location, new RegExp(`^${server.endpoint}/[0-9a-f-]{36}$`), 'the 104 names the upload')
    t.equal(interim.head, announcement(version, location, expectedLimit(version, LIMITS)), 'the 104, byte for byte')
    t.equal(final.headers.location, location, 'the final answer names the same upload')
    t.equal(isComplete(version, final.headers), true, 'the final answer says complete')
    t.equal(final.headers['upload-offset'], String(body.length), 'final offset')
    t.equal(final.headers['upload-draft-interop-version'], String(version), 'the version is echoed')
    await assertCompleted(t, server, { id: idOf(location), sha256: sha256(body), length: body.length, metadata: { filetype: 'image/jpeg', filename: 'fête €.jpg' } })
    t.same(completed.map((upload) => upload.id), [idOf(location)], 'tus:completed, once')
  })

  t.test(`version ${version}: an empty POST with the upload incomplete creates it and answers 201 with no 104`, async (t) => {
    const server = await startServer(t, { maxSize: 1024 * 1024, expiration: 3600_000 })
    const responses = await exchange(server.origin, 'POST /files HTTP/1.1', {
      'upload-draft-interop-version': version, ...completeField(version, false), 'upload-length': 10, 'content-length': 0
    })
    t.same(responses.map((response) => response.status), [201], 'no informational answer')
    const [created] = responses
    t.match(created.headers.location, new RegExp(`^${server.endpoint}/[0-9a-f-]{36}$`), 'Location')
    t.equal(isComplete(version, created.headers), false, 'not complete')
    t.equal(created.headers['upload-offset'], '0', 'offset 0')
    if (version < 6) {
      t.equal(created.headers['upload-limit'], undefined, 'no Upload-Limit before version 6')
    } else {
      // The lifetime left, in seconds: version 6 called it expires, later versions max-age.
      const limits = parseDictionary(created.headers['upload-limit'])!
      t.same([...limits.keys()], ['max-size', version === 6 ? 'expires' : 'max-age'], 'Upload-Limit members')
      t.equal(limits.get('max-size')!.value, 1024 * 1024, 'max-size')
      t.ok(Number(limits.get(version === 6 ? 'expires' : 'max-age')!.value) > 3500, 'the lifetime left, in seconds')
    }
    const record = await readRecordFile(server.directory, idOf(created.headers.location))
    t.equal(record.length, 10, 'the length is recorded')
  })
}

t.test('Expect: 100-continue gets its 100, then the 104 before any byte of the body is sent', async (t) => {
  const server = await startServer(t)
  const body = randomBytes(4096)
  const connection = await RawConnection.open(server.origin)
  t.teardown(() => connection.destroy())
  connection.writeHead('PUT /files HTTP/1.1', {
    host: 'localhost', 'upload-draft-interop-version': 8, 'upload-complete': '?1', 'content-length': body.length, expect: '100-continue'
  })
  const continued = await connection.next()
  t.equal(continued.head, 'HTTP/1.1 100 Continue\r\n\r\n', 'first the 100')
  const announced = await connection.next()
  t.equal(announced.status, 104, 'then the 104, while the client still holds the body back')
  const id = idOf(announced.headers.location)
  t.same(await readdir(server.directory), [id, `${id}.meta`], 'the upload exists before its body: it can be resumed from now on')
  await connection.write(body)
  const [final] = await connection.until()
  t.equal(final.status, 201, 'created')
  t.equal(final.headers['upload-complete'], '?1', 'complete')
  await assertCompleted(t, server, { id, sha256: sha256(body), length: body.length })
})

t.test('a 104 waits its turn behind the answer to a pipelined request on the same connection', async (t) => {
  // The HEAD's answer is held until the POST behind it has announced its upload:
  // the 104 is written while the connection still belongs to the HEAD's answer.
  let release!: () => void
  const announced = new Promise<void>((resolve) => { release = resolve })
  let creations = 0
  const server = await startServer(t, {
    hooks: {
      'tus:preAccess': async (request) => { if (request.method === 'HEAD') await announced },
      'tus:created': () => { if (++creations === 2) setImmediate(release) }
    }
  })
  const [careful] = await exchange(server.origin, 'POST /files HTTP/1.1', { 'upload-draft-interop-version': 6, 'upload-complete': '?0', 'content-length': 0 })
  const connection = await RawConnection.open(server.origin)
  t.teardown(() => connection.destroy())
  const body = Buffer.from('pipelined body')
  await connection.write(
    `HEAD ${new URL(careful.headers.location).pathname} HTTP/1.1\r\nhost: localhost\r\nupload-draft-interop-version: 6\r\n\r\n` +
    `POST /files HTTP/1.1\r\nhost: localhost\r\nupload-draft-interop-version: 6\r\nupload-complete: ?1\r\ncontent-length: ${body.length}\r\n\r\n${body.toString('latin1')}`
  )
  const first = await connection.next({ head: true })
  t.equal(first.status, 204, 'the HEAD answer first, whole')
  t.equal(first.headers['upload-offset'], '0', 'with its offset')
  const rest = await connection.until()
  t.same(rest.map((response) => response.status), [104, 201], 'then the POST\'s 104 and 201')
  t.equal(rest[0].headers.location, rest[1].headers.location, 'same upload')
  t.equal(path.basename(rest[1].headers.location).length, 36, 'an upload id')
})

t.test('HTTP/1.0 clients never get a 1xx', async (t) => {
  const server = await startServer(t)
  const body = Buffer.from('old client')
  const responses = await exchange(server.origin, 'POST /files HTTP/1.0', { 'upload-draft-interop-version': 9, 'upload-complete': '?1', 'content-length': body.length }, body)
  t.same(responses.map((response) => response.status), [201], 'only the final answer')
})

t.test('an IETF upload is handed over like a tus one: waitForFile claims it under the client\'s filename', async (t) => {
  const server = await startServer(t)
  const body = randomBytes(2048)
  const [interim, final] = await exchange(server.origin, 'POST /files HTTP/1.1', {
    'upload-draft-interop-version': 8, 'upload-complete': '?1', 'content-disposition': 'inline; filename="IMG_0001.HEIC"', 'content-length': body.length
  }, body)
  t.same([interim.status, final.status], [104, 201])
  const file = await server.app.tus.waitForFile({ timeout: 10_000 })
  t.teardown(() => file.release())
  t.equal(file.id, idOf(final.headers.location), 'the upload')
  t.equal(file.name, 'IMG_0001.HEIC', 'named as the client named it')
  t.equal(file.record.metadata.filename, 'IMG_0001.HEIC', 'in the record\'s metadata')
})

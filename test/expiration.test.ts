// The expiration extension: every answer about an unfinished upload carries
// Upload-Expires (an IMF-fixdate, `expiration` ms after the last write); past
// it the upload answers 410 at once, and the janitor deletes it.
import { existsSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { TUS, create, idOf, patch, send, startServer, type Response, type TestServer } from './helpers'
import { OCTET, assertError, names, readRecordFile } from './protocol-helpers'
import { editRecord, isoAgo } from './lifecycle-helpers'

const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/
const EXPIRATION = 60_000

/**
 * Upload-Expires of an answer is the record's expiresAt, to the second, and
 * that is EXPIRATION after the record's last write, which the request made.
 */
async function assertExpires (t: tap.Test, server: TestServer, response: Response, url: string, startedAt: number, what: string): Promise<void> {
  const header = response.headers['upload-expires']
  t.match(header, IMF_FIXDATE, `${what}: Upload-Expires is an IMF-fixdate (${String(header)})`)
  const record = await readRecordFile(server.directory, idOf(url))
  const expiresAt = Date.parse(record.expiresAt!)
  t.equal(Date.parse(String(header)), Math.floor(expiresAt / 1000) * 1000, `${what}: the header is the record's expiresAt`)
  t.equal(expiresAt - Date.parse(record.lastWrite), EXPIRATION, `${what}: expiration ms after the last write`)
  t.ok(Date.parse(record.lastWrite) >= startedAt && Date.parse(record.lastWrite) <= Date.now(), `${what}: the last write is this request's`)
  t.ok(Math.abs(Date.parse(String(header)) - (Date.now() + EXPIRATION)) < 1000 + (Date.now() - startedAt), `${what}: about ${EXPIRATION} ms from now`)
}

t.test('POST, PATCH and HEAD of an unfinished upload carry Upload-Expires; a finished one does not', async (t) => {
  const server = await startServer(t, { expiration: EXPIRATION })
  let startedAt = Date.now()
  const created = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10' })
  t.equal(created.statusCode, 201)
  const url = String(created.headers.location)
  await assertExpires(t, server, created, url, startedAt, 'POST')

  // The last write moves the expiry: the record is made to look 10 s older first.
  await editRecord(server.directory, idOf(url), { lastWrite: isoAgo(10_000), expiresAt: isoAgo(10_000 - EXPIRATION) })
  startedAt = Date.now()
  const written = await patch(url, 0, 'hello')
  t.equal(written.statusCode, 204)
  await assertExpires(t, server, written, url, startedAt, 'PATCH')

  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-expires'], written.headers['upload-expires'], 'HEAD: the same Upload-Expires as the last PATCH')

  const finishing = await patch(url, 5, 'world')
  t.equal(finishing.statusCode, 204)
  t.equal(finishing.headers['upload-offset'], '10')
  t.equal(finishing.headers['upload-expires'], undefined, 'the finishing PATCH: no Upload-Expires')
  const finishedHead = await send(url, 'HEAD', TUS)
  t.equal(finishedHead.statusCode, 200)
  t.equal(finishedHead.headers['upload-expires'], undefined, 'HEAD of a finished upload: none')
  t.equal((await readRecordFile(server.completedDir, idOf(url))).expiresAt, null, 'the finished record does not expire')
})

t.test('creation-with-upload and deferred length: Upload-Expires while unfinished only', async (t) => {
  const server = await startServer(t, { expiration: EXPIRATION })
  let startedAt = Date.now()
  const partly = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10', 'content-type': OCTET }, 'abc')
  t.equal(partly.statusCode, 201)
  t.equal(partly.headers['upload-offset'], '3')
  await assertExpires(t, server, partly, String(partly.headers.location), startedAt, 'POST with part of the data')

  const whole = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '3', 'content-type': OCTET }, 'abc')
  t.equal(whole.statusCode, 201)
  t.equal(whole.headers['upload-expires'], undefined, 'POST with all of the data: none')
  const empty = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '0' })
  t.equal(empty.statusCode, 201)
  t.equal(empty.headers['upload-expires'], undefined, 'an empty upload, finished at once: none')

  startedAt = Date.now()
  const deferred = await send(server.endpoint, 'POST', { ...TUS, 'upload-defer-length': '1' })
  t.equal(deferred.statusCode, 201)
  await assertExpires(t, server, deferred, String(deferred.headers.location), startedAt, 'POST with deferred length')
})

t.test('past its expiry an upload answers 410 before any cleanup; the janitor then deletes it', async (t) => {
  const server = await startServer(t, { expiration: EXPIRATION, janitor: false })
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const id = idOf(url)
  t.equal((await patch(url, 0, 'hello')).statusCode, 204)
  // Expiry is a point in time: the record is made to say it passed a moment ago.
  await editRecord(server.directory, id, { expiresAt: isoAgo(1000) })

  assertError(t, await send(url, 'HEAD', TUS), 410, 'FST_TUS_UPLOAD_EXPIRED', 'HEAD of an expired upload', { head: true })
  assertError(t, await patch(url, 5, 'world'), 410, 'FST_TUS_UPLOAD_EXPIRED', 'PATCH of an expired upload')
  t.strictSame(await names(server.directory), [id, `${id}.meta`], 'the files are still on disk: 410 comes before cleanup')
  t.equal((await readRecordFile(server.directory, id)).offset, 5, 'and the refused PATCH wrote nothing')

  const live = await create(server.endpoint, { 'upload-length': '10' })
  // Kept from expiring while the janitor runs, however slow this machine is.
  await editRecord(server.directory, idOf(live), { expiresAt: isoAgo(-60_000) })
  const report = await server.app.tus.janitor.run()
  t.strictSame(report.expired, [id], 'the janitor reports the expired upload')
  t.notOk(existsSync(path.join(server.directory, id)), 'its data is deleted')
  t.notOk(existsSync(path.join(server.directory, `${id}.meta`)), 'its record is deleted')
  t.ok(existsSync(path.join(server.directory, `${idOf(live)}.meta`)), 'an upload not yet expired is kept')
  assertError(t, await send(url, 'HEAD', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'HEAD once deleted', { head: true })
})

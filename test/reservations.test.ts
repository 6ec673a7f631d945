// The reservation budget: byte-less creations cannot reserve more than
// maxReserved of disk, idle uploads give their unwritten blocks back to the
// filesystem and take them again (or 507) when they resume, and every process
// sharing the directory counts the same reservations. Block counts are the
// kernel's (stat.blocks), on real files.
import { open, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { flockSync } from 'fs-ext'
import t, { type Test } from 'tap'
import type { FileStore } from '../lib/store/index'
import { TUS, create, idOf, patch, send, startServer, type TestServer } from './helpers'
import { assertError, listTree, readRecordFile } from './protocol-helpers'
import { waitFor } from './interop-helpers'
import { CLI, ensureFreshBuild, startNode } from './process-helpers'

const MiB = 1024 * 1024
const allocated = async (file: string): Promise<number> => (await stat(file)).blocks * 512
const storeOf = (server: TestServer): FileStore => server.app.tus.store as FileStore

// An upload left alone long enough, as its record would say after reservationTimeout.
async function makeIdle (server: TestServer, id: string): Promise<void> {
  const record = await readRecordFile(server.directory, id)
  record.lastWrite = new Date(Date.now() - 3600_000).toISOString()
  await writeFile(path.join(server.directory, `${id}.meta`), JSON.stringify(record))
}

async function startBudgeted (t: Test, maxReserved: number, reservationTimeout = 3600_000): Promise<TestServer> {
  return await startServer(t, { maxReserved, reservationTimeout, expiration: false })
}

t.test('byte-less creations stop at maxReserved: 507 FST_TUS_RESERVATION_EXCEEDED, nothing left behind', async (t) => {
  const server = await startBudgeted(t, 3 * MiB)
  const urls = [await create(server.endpoint, { 'upload-length': String(MiB) }), await create(server.endpoint, { 'upload-length': String(MiB) }), await create(server.endpoint, { 'upload-length': String(MiB) })]
  for (const url of urls) t.ok(await allocated(path.join(server.directory, idOf(url))) >= MiB, 'a creation within the budget reserves its length')
  const before = await listTree(server.directory)
  const refused = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1' })
  assertError(t, refused, 507, 'FST_TUS_RESERVATION_EXCEEDED', 'one byte over the budget')
  t.same(await listTree(server.directory), before, 'the refused creation left no file behind')

  // Written bytes are no longer reserved-but-unwritten: they make room.
  t.equal((await patch(urls[0], 0, Buffer.alloc(MiB / 2, 1))).statusCode, 204)
  t.equal((await send(server.endpoint, 'POST', { ...TUS, 'upload-length': String(MiB / 2) })).statusCode, 201, 'the written half is room for another half')
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1' }), 507, 'FST_TUS_RESERVATION_EXCEEDED', 'and no more')

  // A terminated upload gives its reservation back.
  t.equal((await send(urls[1], 'DELETE', TUS)).statusCode, 204)
  t.equal((await send(server.endpoint, 'POST', { ...TUS, 'upload-length': String(MiB) })).statusCode, 201, 'a deleted upload\'s reservation is room again')

  // Uploads that carry their data in the creation request reserve nothing that is unwritten.
  const whole = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': String(2 * MiB), 'content-type': 'application/offset+octet-stream' }, Buffer.alloc(2 * MiB, 2))
  t.equal(whole.statusCode, 201, 'a whole upload in its creation request needs no budget')
})

t.test('an idle upload gives its unwritten blocks back, and takes them again (or 507) when it resumes', async (t) => {
  const server = await startBudgeted(t, 8 * MiB)
  const url = await create(server.endpoint, { 'upload-length': String(4 * MiB) })
  const id = idOf(url)
  const data = path.join(server.directory, id)
  const body = Buffer.alloc(4 * MiB)
  for (let i = 0; i < body.length; i++) body[i] = i % 251
  t.equal((await patch(url, 0, body.subarray(0, MiB))).statusCode, 204)
  t.ok(await allocated(data) >= 4 * MiB, `preallocated: ${await allocated(data)} bytes allocated`)

  await makeIdle(server, id)
  await storeOf(server).reservations.refresh()
  const afterGiveBack = await allocated(data)
  t.ok(afterGiveBack >= MiB && afterGiveBack < 2 * MiB, `the unwritten 3 MiB went back to the filesystem (${afterGiveBack} bytes allocated)`)
  t.equal((await stat(data)).size, MiB, 'the data file ends at the offset')
  t.equal((await readRecordFile(server.directory, id)).reserved, false, 'the record says its reservation was given back')
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], String(MiB), 'the upload itself is as it was')

  // The budget counts it no more: 7.5 MiB fit beside it, and then its 3 MiB do not.
  const other = await create(server.endpoint, { 'upload-length': String(7.5 * MiB) })
  assertError(t, await patch(url, MiB, body.subarray(MiB, 2 * MiB)), 507, 'FST_TUS_RESERVATION_EXCEEDED', 'resuming over the budget')
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], String(MiB), 'the refused resumption wrote nothing')
  t.ok(await allocated(data) < 2 * MiB, 'and reserved nothing')

  t.equal((await send(other, 'DELETE', TUS)).statusCode, 204)
  t.equal((await patch(url, MiB, body.subarray(MiB, 2 * MiB))).statusCode, 204, 'within the budget it resumes')
  t.ok(await allocated(data) >= 4 * MiB, 'with its whole length reserved again')
  t.equal((await readRecordFile(server.directory, id)).reserved, true)
  t.equal((await patch(url, 2 * MiB, body.subarray(2 * MiB))).statusCode, 204)
  t.ok(body.equals(await readFile(path.join(server.completedDir, id))), 'the finished upload has every byte')
  t.equal((await readRecordFile(server.completedDir, id)).reserved, undefined, 'a finished record carries no reservation')
})

t.test('reservationTimeout gives idle reservations back on its own', async (t) => {
  const server = await startBudgeted(t, 8 * MiB, 200)
  const url = await create(server.endpoint, { 'upload-length': String(4 * MiB) })
  const data = path.join(server.directory, idOf(url))
  t.ok(await allocated(data) >= 4 * MiB, 'reserved at creation')
  const freed = await waitFor('the reservation to be given back', async () => await allocated(data) === 0 ? true : undefined, 20_000)
  t.ok(freed, 'no block is left allocated to an upload that received nothing')
  t.equal((await patch(url, 0, Buffer.alloc(MiB, 3))).statusCode, 204, 'it resumes')
})

// The give-back holds the upload's lock without being a writer a PATCH could stop: a PATCH that
// comes then waits for it (asking, as it asks a holder elsewhere) instead of answering 423.
t.test('a PATCH that meets a give-back holding the lock waits for it: no 423', async (t) => {
  const server = await startBudgeted(t, 8 * MiB)
  const url = await create(server.endpoint, { 'upload-length': String(MiB) })
  const id = idOf(url)
  // The lock as the give-back takes it: another open file description in this process, no writer registered.
  const holder = await open(path.join(server.directory, id), 'r+')
  flockSync(holder.fd, 'exnb')
  const patched = patch(url, 0, Buffer.alloc(MiB, 5))
  // The PATCH is waiting once it asks for the lock: its release request appears beside the upload.
  await waitFor('the PATCH to ask for the lock', async () => (await readdir(server.directory)).includes(`.${id}.release`) ? true : undefined)
  await holder.close()
  t.equal((await patched).statusCode, 204, 'the PATCH went ahead once the holder let go')
  t.ok((await readdir(server.completedDir)).includes(id), 'and finished the upload')
})

t.test('a creation with part of its data, over the budget: refused before any byte, or kept unreserved once bytes arrived', async (t) => {
  const server = await startBudgeted(t, 2 * MiB)
  const filler = await create(server.endpoint, { 'upload-length': String(1.5 * MiB) })
  const octet = { 'content-type': 'application/offset+octet-stream' }
  const before = await listTree(server.directory)
  // Content-Length says the body is short of the upload: the reservation is asked for first.
  const announced = await send(server.endpoint, 'POST', { ...TUS, ...octet, 'upload-length': String(2 * MiB) }, Buffer.alloc(MiB / 2, 4))
  assertError(t, announced, 507, 'FST_TUS_RESERVATION_EXCEEDED', 'a short body announced by Content-Length')
  t.same(await listTree(server.directory), before, 'nothing left behind')
  // A chunked body that turns out short: its bytes arrived and are kept.
  const created = await send(server.endpoint, 'POST', { ...TUS, ...octet, 'upload-length': String(2 * MiB) }, Readable.from([Buffer.alloc(MiB / 2, 4)]))
  t.equal(created.statusCode, 201)
  t.equal(created.headers['upload-offset'], String(MiB / 2))
  const url = String(created.headers.location)
  t.equal((await readRecordFile(server.directory, idOf(url))).reserved, false, 'its unwritten part is not reserved')
  assertError(t, await patch(url, MiB / 2, Buffer.alloc(MiB / 2, 4)), 507, 'FST_TUS_RESERVATION_EXCEEDED', 'nor can it be while the budget is full')
  t.equal((await send(filler, 'DELETE', TUS)).statusCode, 204)
  t.equal((await patch(url, MiB / 2, Buffer.alloc(1.5 * MiB, 4))).statusCode, 204, 'once there is room it finishes')
})

t.test('another process sharing the directory counts the same reservations', async (t) => {
  ensureFreshBuild()
  const server = await startBudgeted(t, 4 * MiB)
  await create(server.endpoint, { 'upload-length': String(3 * MiB) })
  const other = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', server.directory, '--completed-dir', server.completedDir,
    '--max-reserved', String(4 * MiB), '--reservation-timeout', '3600000', '--log-level', 'warn'], /listening on (http:\/\/\S+)\n/)
  const endpoint = other.match[1]
  assertError(t, await send(endpoint, 'POST', { ...TUS, 'upload-length': String(2 * MiB) }), 507, 'FST_TUS_RESERVATION_EXCEEDED', 'the other process sees the 3 MiB reserved here')
  t.equal((await send(endpoint, 'POST', { ...TUS, 'upload-length': String(MiB) })).statusCode, 201, 'and the room that is left')
  // This process learns of the other's reservation at its next count.
  await storeOf(server).reservations.refresh()
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1' }), 507, 'FST_TUS_RESERVATION_EXCEEDED', 'after a recount, the other process\'s reservation is counted here')
})

// A client that goes silent mid-body must not hold its upload forever.
import { once } from 'node:events'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { TUS, create, idOf, startServer } from './helpers'
import { waitFor, waitForBytesOnDisk, waitForOffset } from './interop-helpers'
import { lockIsFree } from './process-helpers'

function openPatch (url: string, offset: number, contentLength: number): http.ClientRequest {
  const request = http.request(url, {
    method: 'PATCH',
    headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), 'content-length': String(contentLength) }
  })
  request.on('error', () => {}) // the server hangs up on purpose
  return request
}

// Long enough that this test's own steps (a HEAD, a flock(1) process) fit inside it on a busy
// machine, short enough to wait for; a steady client's pauses are a small fraction of it.
const IDLE_TIMEOUT = 2000
const PAUSE = 100

t.test('a body silent for idleTimeout is ended, its bytes kept, its lock freed', async (t) => {
  const server = await startServer(t, { idleTimeout: IDLE_TIMEOUT })
  const url = await create(server.endpoint, { 'upload-length': '1000' })
  const dataFile = path.join(server.directory, idOf(url))
  const request = openPatch(url, 0, 1000)
  const closed = new Promise((resolve) => request.once('close', resolve))
  const lastWrite = Date.now()
  request.write(Buffer.alloc(100, 7))
  // The bytes on disk: the server is writing, under the upload's lock.
  await waitForBytesOnDisk(dataFile, 0, Buffer.alloc(100, 7))
  const held = !lockIsFree(dataFile)
  // Checked inside the idle timeout, the request cannot have been ended yet (a machine slower than that proves nothing here).
  const inTime = Date.now() - lastWrite < IDLE_TIMEOUT
  t.ok(held || !inTime, `the writer holds the lock while bytes flow (checked ${inTime ? 'in time' : 'too late to tell'})`)
  await closed
  const silence = Date.now() - lastWrite
  // Not before the idle timeout; the upper bound only tells a hang-up from none at all.
  t.ok(silence >= IDLE_TIMEOUT - 50, `the server hung up after ${silence} ms of silence, not before ${IDLE_TIMEOUT} ms`)
  // The server records after it hung up.
  t.equal(await waitForOffset(url, (offset) => offset === 100), 100, 'the bytes that arrived are recorded')
  // The lock goes right after the record is written.
  t.ok(await waitFor('the lock to be free', async () => lockIsFree(dataFile) ? true : undefined), 'another process can take the upload')
})

t.test('a slow but steady body is not cut off', async (t) => {
  const server = await startServer(t, { idleTimeout: IDLE_TIMEOUT })
  const url = await create(server.endpoint, { 'upload-length': '1000' })
  const request = openPatch(url, 0, 1000)
  const response = once(request, 'response')
  for (let i = 0; i < 10; i++) {
    request.write(Buffer.alloc(100, i))
    await sleep(PAUSE)
  }
  request.end()
  const [answer] = await response as [http.IncomingMessage]
  t.equal(answer.statusCode, 204)
  t.equal(answer.headers['upload-offset'], '1000')
})

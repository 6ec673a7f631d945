// Shedding load, provoked for real: an event loop kept busy by a loop in this
// (the server's) process, a heap over a low threshold, and a filesystem whose
// free space is below minFreeSpace, both a real temp dir and a tmpfs filled up.
import { writeFile, unlink } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { TUS, create, patch, send, startServer } from './helpers'
import { assertTusError, waitFor } from './interop-helpers'
import { mountTmpfs } from './lifecycle-helpers'
import { freeSpaceOf } from '../lib/free-space'

const MiB = 1024 * 1024
const CREATE = { ...TUS, 'upload-length': '10' }

/** Keeps the event loop blocked most of the time until stopped. */
function busyLoop (): () => void {
  const timer = setInterval(() => {
    const end = Date.now() + 200
    while (Date.now() < end) {} // a real busy loop: nothing else runs meanwhile
  }, 1)
  return () => clearInterval(timer)
}

t.test('a lagging event loop answers 503 with Retry-After, and recovers', async (t) => {
  const server = await startServer(t, { underPressure: { maxEventLoopDelay: 100, sampleInterval: 10, retryAfter: 7 } })
  // Starting up may lag on a busy machine too: accepted once the loop is idle.
  t.equal(await waitFor('a 201 while idle', async () => {
    const { statusCode } = await send(server.endpoint, 'POST', CREATE)
    return statusCode === 201 ? statusCode : undefined
  }, 20_000), 201, 'accepted while idle')
  const stop = busyLoop()
  t.teardown(stop)
  const refused = await waitFor('a 503', async () => {
    const response = await send(server.endpoint, 'POST', CREATE)
    return response.statusCode === 503 ? response : undefined
  }, 20_000)
  stop()
  assertTusError(t, refused, 503, 'FST_UNDER_PRESSURE')
  t.equal(refused.headers['retry-after'], '7', 'Retry-After from the under-pressure options')
  const again = await waitFor('a 201 once the loop is free', async () => {
    const response = await send(server.endpoint, 'POST', CREATE)
    return response.statusCode === 201 ? response : undefined
  }, 20_000)
  t.equal(again.statusCode, 201)
})

t.test('a heap over maxHeapUsedBytes answers 503 on every tus route', async (t) => {
  const server = await startServer(t, { underPressure: { maxHeapUsedBytes: 1024, sampleInterval: 10 } })
  const refused = await waitFor('a 503', async () => {
    const response = await send(server.endpoint, 'POST', CREATE)
    return response.statusCode === 503 ? response : undefined
  }, 20_000)
  assertTusError(t, refused, 503, 'FST_UNDER_PRESSURE')
  t.equal(refused.headers['retry-after'], '10', 'under-pressure\'s default Retry-After')
  const head = await send(`${server.endpoint}/00000000-0000-4000-8000-000000000000`, 'HEAD', TUS)
  t.equal(head.statusCode, 503, 'HEAD too')
})

t.test('below minFreeSpace creations are refused with 503 and Retry-After; uploads made go on', async (t) => {
  const plain = await startServer(t)
  const url = await create(plain.endpoint, { 'upload-length': '10' })
  const free = await freeSpaceOf(plain.directory)
  // The same directories, with a floor far above what this filesystem has free.
  const floored = await startServer(t, { directory: plain.directory, completedDir: plain.completedDir, minFreeSpace: free + 1024 ** 4 })
  const refused = await send(floored.endpoint, 'POST', CREATE)
  assertTusError(t, refused, 503, 'FST_TUS_LOW_DISK_SPACE')
  t.equal(refused.headers['retry-after'], '30')
  const withData = await send(floored.endpoint, 'POST', { ...CREATE, 'content-type': 'application/offset+octet-stream' }, '0123456789')
  assertTusError(t, withData, 503, 'FST_TUS_LOW_DISK_SPACE', 'creation with data:')
  const resumed = url.replace(plain.origin, floored.origin)
  t.equal((await send(resumed, 'HEAD', TUS)).statusCode, 200, 'HEAD still answers')
  t.equal((await patch(resumed, 0, '0123456789')).statusCode, 204, 'a PATCH of an existing upload is still accepted')
  t.equal((await floored.app.tus.health()).ok, false, 'health says so')
})

t.test('a real filesystem filling up crosses the floor and back', async (t) => {
  const root = await mountTmpfs(t, 8 * MiB)
  const server = await startServer(t, { directory: path.join(root, 'uploads'), completedDir: path.join(root, 'completed'), minFreeSpace: 4 * MiB })
  t.equal((await send(server.endpoint, 'POST', CREATE)).statusCode, 201, 'room enough')
  const filler = path.join(root, 'filler')
  await writeFile(filler, Buffer.alloc(5 * MiB))
  const refused = await waitFor('the floor noticed', async () => {
    const response = await send(server.endpoint, 'POST', CREATE)
    return response.statusCode === 503 ? response : undefined
  }, 10_000)
  assertTusError(t, refused, 503, 'FST_TUS_LOW_DISK_SPACE')
  const health = await server.app.tus.health()
  t.ok(health.freeBytes < 4 * MiB && !health.ok, `health: ${health.freeBytes} bytes free`)
  await unlink(filler)
  await waitFor('creations accepted again', async () => {
    const response = await send(server.endpoint, 'POST', CREATE)
    return response.statusCode === 201 ? true : undefined
  }, 10_000)
  t.equal((await server.app.tus.health()).ok, true)
})

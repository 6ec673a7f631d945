// GET /health of `fastify-tus serve`: 200 with a small JSON body while uploads
// can be accepted, 503 (under-pressure's FST_UNDER_PRESSURE, Retry-After)
// while the event loop lags or the upload filesystem is below minFreeSpace.
import path from 'node:path'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { TUS, send, tempDir } from './helpers'
import { assertTusError, waitFor } from './interop-helpers'
import { createServer, parseServeArgs } from '../lib/cli/serve'
import { freeSpaceOf } from '../lib/free-space'

interface Teardown { teardown (fn: () => unknown): void }

async function serve (t: Teardown, flags: string[]): Promise<{ app: FastifyInstance, origin: string }> {
  const root = await tempDir(t)
  const options = parseServeArgs(['--directory', path.join(root, 'uploads'), '--completed-dir', path.join(root, 'completed'), '--log-level', 'silent', ...flags])!
  const app = await createServer(options)
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, origin: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` }
}

t.test('healthy: 200 with the status and the free space', async (t) => {
  const { app, origin } = await serve(t, ['--min-free-space', '1024'])
  const response = await send(`${origin}/health`, 'GET')
  t.equal(response.statusCode, 200)
  const body = response.json()
  t.equal(body.status, 'ok')
  t.equal(body.minFreeSpace, 1024)
  const free = await freeSpaceOf(app.tus.options.directory)
  // Other writers share the disk: the same order of magnitude, not the same byte.
  t.ok(Math.abs(body.freeBytes - free) < free / 10, `freeBytes ${body.freeBytes}`)
  t.same(Object.keys(body).sort(), ['freeBytes', 'minFreeSpace', 'status'], 'nothing else in the body')
})

t.test('below --min-free-space: /health 503 and creations 503, HEAD still served', async (t) => {
  const root = await tempDir(t)
  const free = await freeSpaceOf(root)
  const { origin } = await serve(t, ['--min-free-space', String(free + 1024 ** 4)])
  const health = await send(`${origin}/health`, 'GET')
  t.equal(health.statusCode, 503)
  t.equal(health.json().code, 'FST_UNDER_PRESSURE')
  t.equal(health.headers['retry-after'], '10')
  const creation = await send(`${origin}/files`, 'POST', { ...TUS, 'upload-length': '5' })
  assertTusError(t, creation, 503, 'FST_TUS_LOW_DISK_SPACE')
  // The floor does not put the whole server under pressure: only creations wait for room.
  const head = await send(`${origin}/files/00000000-0000-4000-8000-000000000000`, 'HEAD', TUS)
  t.equal(head.statusCode, 404, 'HEAD is answered as usual')
})

t.test('a lagging event loop: /health 503 until it recovers', async (t) => {
  const { origin } = await serve(t, ['--max-event-loop-delay', '100'])
  await waitFor('/health 200 while idle', async () => (await send(`${origin}/health`, 'GET')).statusCode === 200 ? true : undefined, 20_000)
  const timer = setInterval(() => {
    const end = Date.now() + 200
    while (Date.now() < end) {} // the server's own process, blocked for real
  }, 1)
  t.teardown(() => clearInterval(timer))
  const refused = await waitFor('/health 503', async () => {
    const response = await send(`${origin}/health`, 'GET')
    return response.statusCode === 503 ? response : undefined
  }, 20_000)
  clearInterval(timer)
  t.equal(refused.json().code, 'FST_UNDER_PRESSURE')
  t.ok(refused.headers['retry-after'] !== undefined, 'Retry-After')
  await waitFor('/health 200 again', async () => (await send(`${origin}/health`, 'GET')).statusCode === 200 ? true : undefined, 20_000)
  t.pass('recovered')
})

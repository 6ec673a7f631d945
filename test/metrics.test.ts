// Prometheus metrics, scraped over HTTP after real uploads, with exact counts;
// the plugin registered twice in one process, with one registry or two.
import { randomBytes } from 'node:crypto'
import { unlink } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry, register as defaultRegistry } from 'prom-client'
import * as tus from 'tus-js-client'
import { TUS, create, idOf, patch, send, startServer, tempDir } from './helpers'
import { PATCH_HEADERS, waitForBytesOnDisk } from './interop-helpers'
import { streamRequest } from './raw-client'
import { HOUR, backDate, finishUpload } from './lifecycle-helpers'
import { createServer, parseServeArgs } from '../lib/cli/serve'
import { fastifyTus } from '../lib/plugin'

const KiB = 1024

/** GET the metrics page and read its samples, keyed by `name{labels}` as printed. */
async function scrape (url: string): Promise<Map<string, number>> {
  const response = await send(url, 'GET')
  if (response.statusCode !== 200) throw new Error(`scrape: ${response.statusCode}`)
  const samples = new Map<string, number>()
  for (const line of response.text.split('\n')) {
    const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (match !== null) samples.set(match[1], Number(match[2]))
  }
  return samples
}

function uploadWithClient (endpoint: string, file: Buffer, chunkSize: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, { endpoint, chunkSize, onSuccess: () => resolve(upload.url!), onError: reject })
    upload.start()
  })
}

/** A metrics route beside the plugin, as an application would add one. */
const exposing = (registry: Registry) => (app: FastifyInstance): void => {
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))
}

t.test('every metric after real uploads, counted exactly', async (t) => {
  const registry = new Registry()
  const refused = Object.assign(new Error('not this one'), { statusCode: 403, code: 'E_NOT_ALLOWED' })
  const server = await startServer(t, {
    metrics: { registry },
    hooks: { 'tus:preFinish': async (upload) => { if (upload.metadata.refuse !== undefined) throw refused } }
  }, {}, exposing(registry))
  const metricsUrl = `${server.origin}/metrics`

  // A: tus-js-client, 100 KiB in 32 KiB chunks: one POST, four PATCHes.
  await uploadWithClient(server.endpoint, randomBytes(100 * KiB), 32 * KiB)
  // B: a whole upload in its creation request.
  await finishUpload(server.endpoint, Buffer.from('0123456789'))
  // C: 5 bytes of 20, then terminated.
  const terminated = await create(server.endpoint, { 'upload-length': '20' })
  t.equal((await patch(terminated, 0, '12345')).statusCode, 204)
  t.equal((await send(terminated, 'DELETE', TUS)).statusCode, 204)
  // D: refused by tus:preFinish at its last byte.
  const failing = await create(server.endpoint, { 'upload-length': '3', 'upload-metadata': 'refuse' })
  t.equal((await patch(failing, 0, 'abc')).statusCode, 403)
  // E: its data file lost: the janitor removes the record.
  const orphan = await create(server.endpoint, { 'upload-length': '10' })
  await unlink(path.join(server.directory, idOf(orphan)))
  await backDate(path.join(server.directory, `${idOf(orphan)}.meta`), 2 * HOUR)
  const report = await server.app.tus.janitor.run()
  t.same(report.orphanedMeta, [idOf(orphan)])
  // One claim by a worker.
  const file = await server.app.tus.waitForFile({ timeout: 5000 })
  await file.release()

  const samples = await scrape(metricsUrl)
  const expected: Record<string, number> = {
    tus_uploads_created_total: 5,
    tus_uploads_finished_total: 2,
    tus_uploads_terminated_total: 1,
    'tus_uploads_failed_total{reason="E_NOT_ALLOWED"}': 1,
    tus_bytes_received_total: 100 * KiB + 10 + 5,
    tus_uploads_in_progress: 0,
    'tus_janitor_actions_total{action="orphanedMeta"}': 1,
    tus_claims_total: 1,
    'tus_request_duration_seconds_count{method="POST",status="201"}': 5,
    'tus_request_duration_seconds_count{method="PATCH",status="204"}': 5,
    'tus_request_duration_seconds_count{method="PATCH",status="403"}': 1,
    'tus_request_duration_seconds_count{method="DELETE",status="204"}': 1
  }
  for (const [name, value] of Object.entries(expected)) t.equal(samples.get(name), value, name)
  const counted = [...samples.keys()].filter((name) => name.startsWith('tus_request_duration_seconds_count'))
  t.equal(counted.length, 4, 'no other method or status was seen')
  t.notOk(samples.has('tus_request_duration_seconds_count{method="GET",status="200"}'), 'the metrics route itself is not a tus request')
})

t.test('tus_uploads_in_progress counts the bodies streaming now', async (t) => {
  const registry = new Registry()
  const server = await startServer(t, { metrics: { registry } }, {}, exposing(registry))
  const url = await create(server.endpoint, { 'upload-length': '8' })
  const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': '8' })
  await raw.write(Buffer.from('1234'))
  await waitForBytesOnDisk(path.join(server.directory, idOf(url)), 0, Buffer.from('1234'))
  t.equal((await scrape(`${server.origin}/metrics`)).get('tus_uploads_in_progress'), 1, 'one body streaming')
  raw.end(Buffer.from('5678'))
  const { response } = await raw.settled
  t.equal(response?.statusCode, 204)
  const after = await scrape(`${server.origin}/metrics`)
  t.equal(after.get('tus_uploads_in_progress'), 0, 'none once answered')
  t.equal(after.get('tus_bytes_received_total'), 8)
})

t.test('the default registry, twice in one process: shared, never "already registered"', async (t) => {
  t.teardown(() => { defaultRegistry.clear() })
  const first = await startServer(t, { metrics: true })
  const second = await startServer(t, { metrics: true })
  await finishUpload(first.endpoint, Buffer.from('one'))
  await finishUpload(second.endpoint, Buffer.from('two!'))
  const text = await defaultRegistry.getSingleMetricAsString('tus_uploads_finished_total')
  t.match(text, /^tus_uploads_finished_total 2$/m, 'both plugins count into the one metric')
  t.match(await defaultRegistry.getSingleMetricAsString('tus_bytes_received_total'), /^tus_bytes_received_total 7$/m)
})

t.test('two registries in one process count apart', async (t) => {
  const registries = [new Registry(), new Registry()]
  const servers = await Promise.all(registries.map((registry) => startServer(t, { metrics: { registry } }, {}, exposing(registry))))
  await finishUpload(servers[0].endpoint, Buffer.from('a'))
  await finishUpload(servers[0].endpoint, Buffer.from('b'))
  await finishUpload(servers[1].endpoint, Buffer.from('c'))
  t.equal((await scrape(`${servers[0].origin}/metrics`)).get('tus_uploads_finished_total'), 2)
  t.equal((await scrape(`${servers[1].origin}/metrics`)).get('tus_uploads_finished_total'), 1)
})

t.test('a bad metrics option fails the register', async (t) => {
  const root = await tempDir(t)
  for (const metrics of ['yes', { registry: {} }, { registry: new Registry(), other: 1 }, null]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => {
      await app.register(fastifyTus, { directory: path.join(root, 'u'), completedDir: path.join(root, 'c'), metrics: metrics as never })
    }, { code: 'FST_TUS_INVALID_OPTION', message: /"metrics"/ })
  }
})

t.test('fastify-tus serve --metrics answers GET /metrics, with process metrics too', async (t) => {
  const root = await tempDir(t)
  const app = await createServer(parseServeArgs(['--metrics', '--log-level', 'silent', '--directory', path.join(root, 'u'), '--completed-dir', path.join(root, 'c')])!)
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await uploadWithClient(`${origin}/files`, randomBytes(3 * KiB), 1024)
  const response = await send(`${origin}/metrics`, 'GET')
  t.match(response.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const samples = await scrape(`${origin}/metrics`)
  t.equal(samples.get('tus_uploads_finished_total'), 1)
  t.equal(samples.get('tus_bytes_received_total'), 3 * KiB)
  t.equal(samples.get('tus_request_duration_seconds_count{method="PATCH",status="204"}'), 3)
  t.ok(samples.has('process_cpu_user_seconds_total'), 'prom-client\'s process metrics')
})

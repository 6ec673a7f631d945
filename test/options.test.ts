// Options: validation at register, defaults, directory creation, the prefix,
// under-pressure, and that nothing the plugin sets up leaks into the application.
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { FastifyTusOptions } from '../types/index'
import { fastifyTus } from '../lib/plugin'
import { isUploadId } from '../lib/store/ids'
import { TUS, create, patch, send, startServer, tempDir } from './helpers'

interface Teardown { teardown (fn: () => unknown): void }

async function dirs (t: Teardown): Promise<{ directory: string, completedDir: string }> {
  const root = await tempDir(t)
  return { directory: path.join(root, 'uploads'), completedDir: path.join(root, 'completed') }
}

async function exists (file: string): Promise<boolean> {
  return await stat(file).then(() => true, () => false)
}

/** Registers the plugin on a fresh app (not listening) and returns the app once ready. */
async function ready (t: Teardown, options: Record<string, unknown>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  app.register(fastifyTus, options as unknown as FastifyTusOptions)
  await app.ready()
  return app
}

/** Registration with these options must fail at ready with FST_TUS_INVALID_OPTION naming `name`. */
async function assertInvalid (t: tap.Test, options: Record<string, unknown>, name: string): Promise<void> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close().catch(() => {}))
  app.register(fastifyTus, options as unknown as FastifyTusOptions)
  const error = await app.ready().then(() => undefined, (error: NodeJS.ErrnoException) => error)
  t.ok(error, `${name}: ${JSON.stringify(options[name]) ?? 'missing'} is refused`)
  t.equal(error?.code, 'FST_TUS_INVALID_OPTION', 'with the invalid-option code')
  t.match(error?.message, `"${name}"`, `the message names ${name}`)
}

t.test('directory and completedDir are required, non-empty and distinct', async (t) => {
  const { directory, completedDir } = await dirs(t)
  await assertInvalid(t, { completedDir }, 'directory')
  await assertInvalid(t, { directory }, 'completedDir')
  await assertInvalid(t, { directory: '', completedDir }, 'directory')
  await assertInvalid(t, { directory, completedDir: '' }, 'completedDir')
  await assertInvalid(t, { directory: 5, completedDir }, 'directory')
  await assertInvalid(t, { directory, completedDir: directory }, 'completedDir')
  // The same directory spelled differently is still the same directory.
  await assertInvalid(t, { directory, completedDir: `${directory}/` }, 'completedDir')
  await assertInvalid(t, { directory, completedDir: `${directory}/x/..` }, 'completedDir')
  t.notOk(await exists(directory), 'a refused registration creates no directory')
  t.notOk(await exists(completedDir))
})

t.test('registering without options fails naming the first missing option', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close().catch(() => {}))
  app.register(fastifyTus as any)
  await t.rejects(async () => { await app.ready() }, { code: 'FST_TUS_INVALID_OPTION', message: /"directory"/ })
})

t.test('unknown options are refused, so typos do not pass silently', async (t) => {
  const base = await dirs(t)
  await assertInvalid(t, { ...base, maxsize: 10 }, 'maxsize')
  await assertInvalid(t, { ...base, completedDirectory: 'x' }, 'completedDirectory')
  t.notOk(await exists(base.directory))
})

t.test('prefix must be a clean URL path', async (t) => {
  const base = await dirs(t)
  for (const prefix of ['files', '/a b', '//x', '/a//b', '', 5, '/files?x', '/fïles']) {
    await assertInvalid(t, { ...base, prefix }, 'prefix')
  }
})

t.test('directoryMode must be a file mode', async (t) => {
  const base = await dirs(t)
  for (const directoryMode of [-1, 0o10000, 1.5, '755', null]) {
    await assertInvalid(t, { ...base, directoryMode }, 'directoryMode')
  }
})

t.test('maxSize and maxChunkSize must be positive integers', async (t) => {
  const base = await dirs(t)
  for (const name of ['maxSize', 'maxChunkSize']) {
    for (const value of [0, -1, 1.5, '10', NaN, null, 2 ** 53]) {
      await assertInvalid(t, { ...base, [name]: value }, name)
    }
  }
})

t.test('maxMetadataSize must be a positive integer', async (t) => {
  const base = await dirs(t)
  for (const maxMetadataSize of [0, -1, 1.5, '4096']) {
    await assertInvalid(t, { ...base, maxMetadataSize }, 'maxMetadataSize')
  }
})

t.test('takeoverTimeout must be a whole number of ms, 0 or more', async (t) => {
  const base = await dirs(t)
  for (const takeoverTimeout of [-1, 1.5, '5000', null, 2 ** 31]) {
    await assertInvalid(t, { ...base, takeoverTimeout }, 'takeoverTimeout')
  }
  t.equal((await ready(t, { ...await dirs(t), takeoverTimeout: 0 })).tus.options.takeoverTimeout, 0, '0 is accepted: refuse at once')
})

t.test('fsync, preallocate and ietf must be booleans', async (t) => {
  const base = await dirs(t)
  for (const name of ['fsync', 'preallocate', 'ietf']) {
    for (const value of ['yes', 1, 0, null, 'false']) {
      await assertInvalid(t, { ...base, [name]: value }, name)
    }
  }
})

t.test('maxReserved is bytes, Infinity or a percentage; reservationTimeout ms', async (t) => {
  const base = await dirs(t)
  for (const maxReserved of [-1, 1.5, '1000', '0%', '101%', '25 %', null, '%']) {
    await assertInvalid(t, { ...base, maxReserved }, 'maxReserved')
  }
  for (const reservationTimeout of [-1, 1.5, '1000', null, 2 ** 31]) {
    await assertInvalid(t, { ...base, reservationTimeout }, 'reservationTimeout')
  }
  for (const maxReserved of [0, 1024, Infinity, '12.5%', '100%']) {
    t.equal((await ready(t, { ...base, maxReserved })).tus.options.maxReserved, maxReserved, `maxReserved ${String(maxReserved)} is kept`)
  }
})

t.test('underPressure must be an options object or false', async (t) => {
  const base = await dirs(t)
  for (const underPressure of [true, 5, [], null, 'on']) {
    await assertInvalid(t, { ...base, underPressure }, 'underPressure')
  }
})

t.test('defaults, resolved and frozen', async (t) => {
  const root = await tempDir(t)
  // Unnormalized paths come back absolute and normalized.
  const app = await ready(t, { directory: `${root}/x/../uploads`, completedDir: `${root}/completed/` })
  const { options } = app.tus
  t.ok(Object.isFrozen(app.tus), 'app.tus is frozen')
  t.ok(Object.isFrozen(options), 'app.tus.options is frozen')
  t.equal(options.prefix, '/files')
  t.equal(options.directory, path.join(root, 'uploads'))
  t.equal(options.completedDir, path.join(root, 'completed'))
  t.equal(options.directoryMode, 0o755)
  t.equal(options.maxSize, Infinity)
  t.equal(options.maxChunkSize, Infinity)
  t.equal(options.maxMetadataSize, 4096)
  t.equal(options.fsync, true)
  t.equal(options.preallocate, true)
  t.equal(options.takeoverTimeout, 5000)
  t.equal(options.ietf, true, 'the IETF draft is served by default')
  t.equal(options.maxReserved, '25%')
  t.equal(options.reservationTimeout, 600_000)
  t.same(options.underPressure, { maxEventLoopDelay: 1000 })
  t.ok(options.underPressure !== false && Object.isFrozen(options.underPressure), 'nested under-pressure options are frozen too')
  t.throws(() => { (options as { maxSize: number }).maxSize = 1 }, TypeError, 'assigning an option throws')
  t.equal(options.maxSize, Infinity)
  t.equal(app.tus.store.directory, options.directory, 'the store uses the resolved directories')
  t.equal(app.tus.store.completedDir, options.completedDir)
})

t.test('given options are kept, and the caller\'s object is neither changed nor shared', async (t) => {
  const base = await dirs(t)
  const underPressure = { maxEventLoopDelay: 5000 }
  const input = {
    ...base,
    prefix: '/up',
    directoryMode: 0o700,
    maxSize: 1000,
    maxChunkSize: 100,
    maxMetadataSize: 10,
    fsync: false,
    preallocate: false,
    underPressure
  }
  const copy = structuredClone(input)
  const app = await ready(t, input)
  t.match(app.tus.options, { ...copy, underPressure: { maxEventLoopDelay: 5000 } })
  t.same(input, copy, 'the input object is untouched')
  underPressure.maxEventLoopDelay = 1
  t.same(app.tus.options.underPressure, { maxEventLoopDelay: 5000 }, 'later changes to the input do not reach the plugin')
})

t.test('missing directories are created, nested, with directoryMode', async (t) => {
  const root = await tempDir(t)
  const directory = path.join(root, 'a', 'b', 'uploads')
  const completedDir = path.join(root, 'c', 'completed')
  await ready(t, { directory, completedDir, directoryMode: 0o750, underPressure: false })
  // mkdir applies the process umask, as for any file the process creates (read from /proc: process.umask() is deprecated).
  const umask = parseInt(/^Umask:\s*([0-7]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))![1], 8)
  const expected = 0o750 & ~umask
  for (const dir of [path.join(root, 'a'), path.join(root, 'a', 'b'), directory, path.join(root, 'c'), completedDir]) {
    const info = await stat(dir)
    t.ok(info.isDirectory(), `${path.relative(root, dir)} exists`)
    t.equal(info.mode & 0o777, expected, `${path.relative(root, dir)} has mode ${expected.toString(8)}`)
  }
})

t.test('existing directories are used as they are', async (t) => {
  const { directory, completedDir } = await dirs(t)
  const first = await ready(t, { directory, completedDir, underPressure: false })
  await first.close()
  const mode = (await stat(directory)).mode
  await ready(t, { directory, completedDir, directoryMode: 0o700, underPressure: false })
  t.equal((await stat(directory)).mode, mode, 'an existing directory keeps its mode')
})

/** One full upload through `endpoint`: POST, HEAD, PATCH, and the finished file. */
async function uploadThrough (t: tap.Test, endpoint: string, completedDir: string): Promise<void> {
  const url = await create(endpoint, { 'upload-length': '11' })
  // A wrong Location makes everything after it fail; one failure says it.
  if (!t.ok(url.startsWith(`${endpoint}/`) && isUploadId(url.slice(endpoint.length + 1)), `Location ${url} is ${endpoint}/<id>`)) return
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 200, 'HEAD on the Location answers')
  t.equal(head.headers['upload-offset'], '0')
  const response = await patch(url, 0, 'hello world')
  t.equal(response.statusCode, 204, 'PATCH on the Location answers')
  t.equal(response.headers['upload-offset'], '11')
  t.equal(response.headers['tus-resumable'], '1.0.0')
  t.equal(await readFile(path.join(completedDir, url.slice(url.lastIndexOf('/') + 1)), 'utf8'), 'hello world')
}

t.test('routes live under a custom prefix; a trailing slash is removed', async (t) => {
  const server = await startServer(t, { prefix: '/api/v1/uploads/' })
  t.equal(server.app.tus.options.prefix, '/api/v1/uploads')
  t.equal(server.endpoint, `${server.origin}/api/v1/uploads`)
  const options = await send(server.endpoint, 'OPTIONS')
  t.equal(options.statusCode, 204)
  t.equal(options.headers['tus-version'], '1.0.0')
  await uploadThrough(t, server.endpoint, server.completedDir)
  // The default prefix is not served, and its 404 is the application's, not the plugin's.
  const old = await send(`${server.origin}/files`, 'POST', { ...TUS, 'upload-length': '1' })
  t.equal(old.statusCode, 404)
  t.equal(old.headers['tus-resumable'], undefined)
})

t.test('prefix "/" serves tus at the root', async (t) => {
  const server = await startServer(t, { prefix: '/' })
  t.equal(server.app.tus.options.prefix, '/')
  // Location must be <origin>/<id>, not <origin>//<id>.
  await uploadThrough(t, server.origin, server.completedDir)
})

t.test('the prefix of an enclosing context is part of the routes and of Location', async (t) => {
  const { directory, completedDir } = await dirs(t)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(async (api) => {
    await api.register(fastifyTus, { directory, completedDir, underPressure: false })
  }, { prefix: '/api' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await uploadThrough(t, `${origin}/api/files`, completedDir)
})

/** A listening app with tus under-pressure options, an app route GET /ping, and the instance each request ran in. */
async function pressureServer (t: Teardown, underPressure: FastifyTusOptions['underPressure'] | undefined): Promise<{ app: FastifyInstance, origin: string, seen: FastifyInstance[] }> {
  const { directory, completedDir } = await dirs(t)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const seen: FastifyInstance[] = []
  // request.server is the encapsulated instance the route belongs to.
  app.addHook('onRequest', async (request) => { seen.push(request.server) })
  app.get('/ping', async () => 'pong')
  const options: FastifyTusOptions = { directory, completedDir }
  if (underPressure !== undefined) options.underPressure = underPressure
  await app.register(fastifyTus, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, origin: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, seen }
}

t.test('underPressure options reach @fastify/under-pressure: tus routes answer 503 while a health check fails', async (t) => {
  // under-pressure awaits the first health check at register, so the state is known before the first request.
  const { origin } = await pressureServer(t, { healthCheck: async () => false, healthCheckInterval: 60_000, retryAfter: 7 })
  const requests: Array<[string, string, Record<string, string>]> = [
    ['POST', '/files', { ...TUS, 'upload-length': '5' }],
    ['HEAD', '/files/00000000-0000-4000-8000-000000000000', TUS],
    ['PATCH', '/files/00000000-0000-4000-8000-000000000000', { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }]
  ]
  for (const [method, url, headers] of requests) {
    const response = await send(`${origin}${url}`, method, headers, method === 'PATCH' ? 'abc' : undefined)
    t.equal(response.statusCode, 503, `${method} is refused under pressure`)
    t.equal(response.headers['retry-after'], '7', 'with the Retry-After from the options')
    t.equal(response.headers['tus-resumable'], '1.0.0', 'and Tus-Resumable')
    if (method !== 'HEAD') t.equal(response.json().code, 'FST_UNDER_PRESSURE')
  }
  const options = await send(`${origin}/files`, 'OPTIONS')
  t.equal(options.statusCode, 503, 'OPTIONS is refused too')
  t.equal(options.headers['retry-after'], '7')
  const ping = await send(`${origin}/ping`, 'GET')
  t.equal(ping.statusCode, 200, 'the application\'s own route is not shed')
  t.equal(ping.text, 'pong')
  t.equal(ping.headers['retry-after'], undefined)
})

t.test('a passing health check lets uploads through', async (t) => {
  const { origin } = await pressureServer(t, { healthCheck: async () => true, healthCheckInterval: 60_000 })
  const response = await send(`${origin}/files`, 'POST', { ...TUS, 'upload-length': '5' })
  t.equal(response.statusCode, 201)
})

t.test('under-pressure is on by default, on the tus routes only', async (t) => {
  const { app, origin, seen } = await pressureServer(t, undefined)
  t.equal((await send(`${origin}/files`, 'POST', { ...TUS, 'upload-length': '5' })).statusCode, 201)
  t.equal((await send(`${origin}/ping`, 'GET')).statusCode, 200)
  const [tusInstance, appInstance] = seen
  t.ok(tusInstance.hasDecorator('isUnderPressure'), 'the tus routes have under-pressure')
  t.ok(tusInstance.hasDecorator('memoryUsage'))
  t.notOk(appInstance.hasDecorator('isUnderPressure'), 'the application does not')
  t.notOk(app.hasDecorator('isUnderPressure'))
})

t.test('underPressure: false registers no under-pressure at all', async (t) => {
  const { app, origin, seen } = await pressureServer(t, false)
  t.equal(app.tus.options.underPressure, false)
  const response = await send(`${origin}/files`, 'POST', { ...TUS, 'upload-length': '5' })
  t.equal(response.statusCode, 201)
  t.equal(seen.length, 1)
  t.notOk(seen[0].hasDecorator('isUnderPressure'), 'no isUnderPressure on the tus routes')
  t.notOk(seen[0].hasDecorator('memoryUsage'), 'no memoryUsage on the tus routes')
  t.notOk(app.hasDecorator('isUnderPressure'))
})

t.test('the plugin\'s parsers, hooks, error and not-found handlers stay inside its prefix', async (t) => {
  const { directory, completedDir } = await dirs(t)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  app.post('/json', async (request) => ({ got: request.body }))
  app.post('/text', async (request) => ({ got: request.body }))
  app.post('/octets', async () => ({ reached: true }))
  app.get('/boom', async () => { throw new Error('boom') })
  // Health check failing: the application's routes must still answer.
  await app.register(fastifyTus, { directory, completedDir, underPressure: { healthCheck: async () => false, healthCheckInterval: 60_000 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const json = await send(`${origin}/json`, 'POST', { 'content-type': 'application/json' }, '{"a":[1,2]}')
  t.equal(json.statusCode, 200, 'JSON is parsed by Fastify\'s parser')
  t.same(json.json(), { got: { a: [1, 2] } })
  t.equal(json.headers['tus-resumable'], undefined, 'no Tus-Resumable on application routes')

  const text = await send(`${origin}/text`, 'POST', { 'content-type': 'text/plain' }, 'plain')
  t.equal(text.statusCode, 200)
  t.same(text.json(), { got: 'plain' })

  // The tus parser for application/offset+octet-stream is not the application's.
  const octets = await send(`${origin}/octets`, 'POST', { 'content-type': 'application/offset+octet-stream' }, 'x')
  t.equal(octets.statusCode, 415)
  t.equal(octets.json().code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'Fastify\'s own 415')
  t.equal(octets.headers['tus-resumable'], undefined)

  const boom = await send(`${origin}/boom`, 'GET')
  t.equal(boom.statusCode, 500)
  t.same(boom.json(), { statusCode: 500, error: 'Internal Server Error', message: 'boom' }, 'Fastify\'s default error format')
  t.equal(boom.headers['tus-resumable'], undefined)

  const missing = await send(`${origin}/nowhere`, 'GET')
  t.equal(missing.statusCode, 404)
  t.same(missing.json(), { message: 'Route GET:/nowhere not found', error: 'Not Found', statusCode: 404 }, 'Fastify\'s default 404')
  t.equal(missing.headers['tus-resumable'], undefined)
})

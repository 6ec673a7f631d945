// CORS for browser tus clients: preflights allow the tus methods and request
// headers, answers (errors included) expose the tus response headers, origins
// are filtered as configured, and nothing leaks into the application's routes.
import path from 'node:path'
import cors from '@fastify/cors'
import Fastify from 'fastify'
import t from 'tap'
import type { FastifyTusOptions } from '../types/index'
import { fastifyTus } from '../lib/plugin'
import { TUS, create, send, startServer, tempDir, type Response, type TestServer } from './helpers'
import { assertError } from './protocol-helpers'

const REQUEST_HEADERS = [
  'Tus-Resumable', 'Upload-Length', 'Upload-Offset', 'Upload-Metadata', 'Upload-Defer-Length', 'Upload-Concat',
  'Upload-Checksum', 'Content-Type', 'X-HTTP-Method-Override', 'X-Requested-With'
]
const EXPOSED_HEADERS = [
  'Location', 'Upload-Offset', 'Upload-Length', 'Upload-Metadata', 'Upload-Expires', 'Upload-Defer-Length', 'Upload-Concat', 'Tus-Resumable'
]
const CORS_HEADERS = [
  'access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers',
  'access-control-expose-headers', 'access-control-max-age', 'access-control-allow-credentials'
]

/** A comma-separated header as a set of lower-case names. */
const listOf = (header: unknown): Set<string> =>
  new Set(String(header ?? '').split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== ''))

function assertIncludes (t: tap.Test, header: unknown, expected: string[], what: string): void {
  const found = listOf(header)
  const missing = expected.filter((name) => !found.has(name.toLowerCase()))
  t.strictSame(missing, [], `${what} includes ${expected.join(', ')} (got ${String(header)})`)
}

function assertNoCors (t: tap.Test, response: Response, what: string): void {
  const present = CORS_HEADERS.filter((name) => name in response.headers)
  t.strictSame(present, [], `${what}: no CORS headers`)
}

/** A browser's preflight for a PATCH with the tus headers. */
const preflight = (url: string, origin: string): Promise<Response> => send(url, 'OPTIONS', {
  origin,
  'access-control-request-method': 'PATCH',
  'access-control-request-headers': 'tus-resumable,upload-offset,content-type,upload-checksum'
})

function assertPreflight (t: tap.Test, response: Response, allowOrigin: string, what: string): void {
  t.equal(response.statusCode, 204, `${what}: 204`)
  t.equal(response.headers['access-control-allow-origin'], allowOrigin, `${what}: Access-Control-Allow-Origin`)
  assertIncludes(t, response.headers['access-control-allow-methods'], ['POST', 'HEAD', 'PATCH', 'DELETE'], `${what}: Access-Control-Allow-Methods`)
  assertIncludes(t, response.headers['access-control-allow-headers'], REQUEST_HEADERS, `${what}: Access-Control-Allow-Headers`)
  t.match(response.headers['access-control-max-age'], /^[1-9][0-9]*$/, `${what}: Access-Control-Max-Age`)
}

function assertExposed (t: tap.Test, response: Response, allowOrigin: string, what: string): void {
  t.equal(response.headers['access-control-allow-origin'], allowOrigin, `${what}: Access-Control-Allow-Origin`)
  assertIncludes(t, response.headers['access-control-expose-headers'], EXPOSED_HEADERS, `${what}: Access-Control-Expose-Headers`)
}

/** A tus server with CORS, plus application routes of its own outside the prefix. */
function serverWithAppRoutes (t: tap.Test, cors: FastifyTusOptions['cors']): Promise<TestServer> {
  return startServer(t, { cors }, {}, (app) => {
    app.get('/health', async () => ({ ok: true }))
    app.post('/api/echo', async (request) => request.body)
  })
}

t.test('cors: true, preflights of the creation URL and of an upload URL', async (t) => {
  const server = await startServer(t, { cors: true })
  const url = await create(server.endpoint, { 'upload-length': '10' })
  assertPreflight(t, await preflight(server.endpoint, 'https://app.example'), '*', 'creation URL')
  assertPreflight(t, await preflight(url, 'https://app.example'), '*', 'upload URL')

  // Without an Origin, OPTIONS is still tus's discovery request.
  const discovery = await send(server.endpoint, 'OPTIONS')
  t.equal(discovery.statusCode, 204)
  t.equal(discovery.headers['tus-version'], '1.0.0', 'discovery still answers Tus-Version')
  t.match(discovery.headers['tus-extension'], /creation/)
})

t.test('cors: true, answers expose the tus headers: POST, PATCH, HEAD, and errors', async (t) => {
  const server = await startServer(t, { cors: true })
  const origin = { origin: 'https://app.example' }
  const created = await send(server.endpoint, 'POST', { ...TUS, ...origin, 'upload-length': '10' })
  t.equal(created.statusCode, 201)
  assertExposed(t, created, '*', 'POST')
  const url = String(created.headers.location)
  const written = await send(url, 'PATCH', { ...TUS, ...origin, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, 'hello')
  t.equal(written.statusCode, 204)
  assertExposed(t, written, '*', 'PATCH')
  const head = await send(url, 'HEAD', { ...TUS, ...origin })
  t.equal(head.statusCode, 200)
  assertExposed(t, head, '*', 'HEAD')

  const missing = await send(`${server.endpoint}/1b4e28ba-2fa1-4d2e-883f-0016d3cca427`, 'PATCH', { ...TUS, ...origin, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, 'x')
  assertError(t, missing, 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'an unknown upload')
  assertExposed(t, missing, '*', '404')
  const wrongVersion = await send(url, 'HEAD', { ...origin, 'tus-resumable': '0.2.2' })
  t.equal(wrongVersion.statusCode, 412)
  assertExposed(t, wrongVersion, '*', '412')
  const deleted = await send(url, 'DELETE', { ...TUS, ...origin })
  t.equal(deleted.statusCode, 204)
  assertExposed(t, deleted, '*', 'DELETE')
})

t.test("cors: ['https://a.example'] allows that origin only", async (t) => {
  const server = await startServer(t, { cors: ['https://a.example'] })
  assertPreflight(t, await preflight(server.endpoint, 'https://a.example'), 'https://a.example', 'allowed origin, preflight')
  const allowed = await send(server.endpoint, 'POST', { ...TUS, origin: 'https://a.example', 'upload-length': '1' })
  assertExposed(t, allowed, 'https://a.example', 'allowed origin, POST')
  t.ok(listOf(allowed.headers.vary).has('origin'), 'Vary: Origin, since the answer depends on it')

  const refused = await preflight(server.endpoint, 'https://b.example')
  // Without Access-Control-Allow-Origin the browser refuses, whatever else the answer says.
  t.equal(refused.headers['access-control-allow-origin'], undefined, 'another origin: no Access-Control-Allow-Origin on the preflight')
  const other = await send(server.endpoint, 'POST', { ...TUS, origin: 'https://b.example', 'upload-length': '1' })
  t.equal(other.headers['access-control-allow-origin'], undefined, 'another origin: no Access-Control-Allow-Origin on the POST')
})

for (const [label, cors] of [
  ['a function', (origin: string) => origin.endsWith('.example')],
  ['an async function', async (origin: string) => await Promise.resolve(origin.endsWith('.example'))]
] as const) {
  t.test(`cors: ${label} decides per origin`, async (t) => {
    const server = await startServer(t, { cors })
    const url = await create(server.endpoint, { 'upload-length': '10' })
    assertPreflight(t, await preflight(url, 'https://x.example'), 'https://x.example', 'an allowed origin, preflight')
    const allowed = await send(url, 'HEAD', { ...TUS, origin: 'https://x.example' })
    t.equal(allowed.statusCode, 200)
    assertExposed(t, allowed, 'https://x.example', 'an allowed origin, HEAD')

    const refused = await send(url, 'HEAD', { ...TUS, origin: 'https://x.test' })
    t.equal(refused.statusCode, 200, 'a refused origin still gets its answer (the browser withholds it)')
    t.equal(refused.headers['access-control-allow-origin'], undefined, 'a refused origin: no Access-Control-Allow-Origin')
    t.equal((await preflight(url, 'https://x.test')).headers['access-control-allow-origin'], undefined, 'nor on its preflight')
    const noOrigin = await send(url, 'HEAD', TUS)
    t.equal(noOrigin.statusCode, 200, 'no Origin: an ordinary request')
    t.equal(noOrigin.headers['access-control-allow-origin'], undefined)
  })
}

t.test('cors: false (the default): no CORS headers at all', async (t) => {
  const server = await startServer(t)
  const discovery = await preflight(server.endpoint, 'https://app.example')
  t.equal(discovery.statusCode, 204, 'OPTIONS is the tus discovery request')
  assertNoCors(t, discovery, 'preflight')
  const created = await send(server.endpoint, 'POST', { ...TUS, origin: 'https://app.example', 'upload-length': '1' })
  t.equal(created.statusCode, 201)
  assertNoCors(t, created, 'POST')
  assertNoCors(t, await send(`${server.endpoint}/nope`, 'HEAD', { ...TUS, origin: 'https://app.example' }), '404')
})

t.test("the application's own routes outside the prefix never get the plugin's CORS headers", async (t) => {
  for (const cors of [true, false] as const) {
    const server = await serverWithAppRoutes(t, cors)
    const origin = { origin: 'https://app.example' }
    const health = await send(`${server.origin}/health`, 'GET', origin)
    t.equal(health.statusCode, 200)
    assertNoCors(t, health, `cors ${String(cors)}: GET /health`)
    const echo = await send(`${server.origin}/api/echo`, 'POST', { ...origin, 'content-type': 'application/json' }, '{"a":1}')
    t.equal(echo.statusCode, 200)
    t.strictSame(echo.json(), { a: 1 }, "the application's JSON parser is untouched")
    assertNoCors(t, echo, `cors ${String(cors)}: POST /api/echo`)
    const appPreflight = await preflight(`${server.origin}/api/echo`, 'https://app.example')
    t.equal(appPreflight.statusCode, 404, `cors ${String(cors)}: no OPTIONS route added to the application`)
    assertNoCors(t, appPreflight, `cors ${String(cors)}: preflight of an application route`)
    // And the tus routes of the same app do have them when asked for.
    const tus = await send(server.endpoint, 'POST', { ...TUS, ...origin, 'upload-length': '1' })
    t.equal(tus.headers['access-control-allow-origin'], cors ? '*' : undefined, `cors ${String(cors)}: the tus routes`)
  }
})

t.test("an application that registered @fastify/cors itself: its settings cover the tus routes, no clash", async (t) => {
  const root = await tempDir(t)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(cors, { origin: 'https://app.example', exposedHeaders: ['Location', 'Upload-Offset'] })
  await app.register(fastifyTus, { directory: path.join(root, 'u'), completedDir: path.join(root, 'c'), cors: true, underPressure: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const endpoint = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/files`
  const created = await send(endpoint, 'POST', { ...TUS, 'upload-length': '3', origin: 'https://app.example' })
  t.equal(created.statusCode, 201)
  t.equal(created.headers['access-control-allow-origin'], 'https://app.example', "the application's origin rule, not the plugin's any-origin")
  t.equal(created.headers['access-control-expose-headers'], 'Location, Upload-Offset')
})

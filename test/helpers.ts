// Shared test plumbing: a real Fastify server with the plugin on loopback,
// writing into fresh temporary directories, and a raw HTTP client.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { request as undiciRequest } from 'undici'
import type { FastifyTusOptions } from '../types/index'
import { fastifyTus } from '../lib/plugin'

export const TUS = { 'tus-resumable': '1.0.0' } as const

interface Teardown { teardown (fn: () => unknown): void }

export async function tempDir (t: Teardown, prefix = 'fastify-tus-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface TestServer {
  app: FastifyInstance
  origin: string
  endpoint: string
  directory: string
  completedDir: string
}

/** `configure` runs after the plugin is registered and before the app is ready: the time to add hooks. */
export async function startServer (
  t: Teardown,
  options: Partial<FastifyTusOptions> = {},
  fastifyOptions: FastifyServerOptions = {},
  configure: (app: FastifyInstance) => void | Promise<void> = () => {}
): Promise<TestServer> {
  const root = await tempDir(t)
  const directory = options.directory ?? path.join(root, 'uploads')
  const completedDir = options.completedDir ?? path.join(root, 'completed')
  const app = Fastify({ logger: false, ...fastifyOptions })
  t.teardown(() => app.close())
  await app.register(fastifyTus, { underPressure: false, ...options, directory, completedDir })
  await configure(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const origin = `http://127.0.0.1:${port}`
  return { app, origin, endpoint: `${origin}${app.tus.options.prefix}`, directory, completedDir }
}

export interface Response {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json (): any
}

export async function send (
  url: string,
  method: string,
  headers: Record<string, string> = {},
  body?: Buffer | string | NodeJS.ReadableStream
): Promise<Response> {
  const response = await undiciRequest(url, { method: method as 'GET', headers, body: body as Buffer })
  const text = await response.body.text()
  return {
    statusCode: response.statusCode,
    headers: response.headers,
    text,
    json: () => JSON.parse(text)
  }
}

/** Creates an upload and returns its URL. */
export async function create (endpoint: string, headers: Record<string, string>): Promise<string> {
  const response = await send(endpoint, 'POST', { ...TUS, ...headers })
  if (response.statusCode !== 201) throw new Error(`creation failed: ${response.statusCode} ${response.text}`)
  return String(response.headers.location)
}

export function patch (url: string, offset: number, body: Buffer | string, headers: Record<string, string> = {}): Promise<Response> {
  return send(url, 'PATCH', { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), ...headers }, body)
}

export const idOf = (url: string): string => url.slice(url.lastIndexOf('/') + 1)

// `fastify-tus serve`: a tus server on its own, for trying the plugin out and
// for driving it from other processes in tests.
import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyTus } from '../plugin'
import { parseFlags } from './flags'
import { SERVE_FLAGS, defaultServeOptions, serveHelp, type ServeOptions } from './serve-flags'
import { uploadPage } from './upload-page'

export type { ServeOptions } from './serve-flags'

/** The options the arguments ask for, or undefined for --help. */
export function parseServeArgs (args: string[]): ServeOptions | undefined {
  return parseFlags(args, SERVE_FLAGS, defaultServeOptions())?.options
}

// Fastify's own two lines per request (`incoming request`, `request completed`)
// tripled the CPU of a HEAD at info; at info the plugin's lines (creation,
// completion, refusals) say what happened, and the per-request lines come with debug.
const REQUEST_LINE_LEVELS = new Set(['debug', 'trace'])

// Node's and Fastify's server timeouts, set for uploads that may take hours from
// clients that may be hostile: no limit on a whole request (a stalled body is
// the plugin's idleTimeout's to end), a short one on headers (a client trickling
// them holds a socket for nothing) checked every second rather than every 30,
// and idle keep-alive sockets closed after a while.
export const SERVER_TIMEOUTS = Object.freeze({
  requestTimeout: 0,
  connectionTimeout: 0,
  keepAliveTimeout: 10_000,
  http: Object.freeze({ headersTimeout: 10_000, connectionsCheckingInterval: 1000 })
})

export async function createServer (options: ServeOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: options.logLevel },
    disableRequestLogging: !REQUEST_LINE_LEVELS.has(options.logLevel),
    trustProxy: options.trustProxy,
    ...SERVER_TIMEOUTS,
    http: { ...SERVER_TIMEOUTS.http }
  })
  await app.register(fastifyTus, options.tus)
  // The page uploads to the tus routes of its own origin.
  await app.register(uploadPage, { endpoint: app.tus.options.prefix, download: app.tus.options.download })
  return app
}

export async function runServe (args: string[]): Promise<number> {
  const options = parseServeArgs(args)
  if (options === undefined) {
    process.stdout.write(serveHelp())
    return 0
  }
  const app = await createServer(options)
  const address = await app.listen({ port: options.port, host: options.host })
  process.stdout.write(`fastify-tus listening on ${address}${app.tus.options.prefix}\n`)
  process.stdout.write(`upload page: ${address}/\n`)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  }
  return 0
}

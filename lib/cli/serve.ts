// `fastify-tus serve`: a tus server on its own, for trying the plugin out and
// for driving it from other processes in tests; with a health route for load
// balancers, Prometheus metrics and a graceful stop for orchestrators.
import Fastify, { type FastifyInstance, type LogLevel } from 'fastify'
import underPressure from '@fastify/under-pressure'
import type { Registry } from 'prom-client'
import { promClient } from '../metrics'
import { fastifyTus } from '../plugin'
import { parseFlags } from './flags'
import { requestLoggerFactory } from './request-logger'
import { SERVE_FLAGS, defaultServeOptions, serveHelp, type ServeOptions } from './serve-flags'
import { announceWorker, isWorker, leaveCluster, superviseWorkers } from './workers'
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
  // Probes come every few seconds: their requests are not logged at info, and never above the server's own level.
  const probeLevel = (['trace', 'debug', 'info'].includes(options.logLevel) ? 'warn' : options.logLevel) as LogLevel
  const app = Fastify({ logger: { level: options.logLevel }, disableRequestLogging: !REQUEST_LINE_LEVELS.has(options.logLevel), childLoggerFactory: requestLoggerFactory, trustProxy: options.trustProxy, ...SERVER_TIMEOUTS, http: { ...SERVER_TIMEOUTS.http } })
  // Registered here, around every route, so that the plugin uses this one instead of its own.
  await app.register(underPressure, {
    ...(options.tus.underPressure === false ? {} : options.tus.underPressure),
    exposeStatusRoute: { url: '/health', routeOpts: { logLevel: probeLevel }, routeResponseSchemaOpts: { freeBytes: { type: 'number' }, minFreeSpace: { type: 'number' } } },
    // Runs once at register (before the plugin exists: healthy) and then on every GET /health.
    healthCheck: async () => {
      if (!app.hasDecorator('tus')) return true
      const health = await app.tus.health()
      return health.ok ? { freeBytes: health.freeBytes, minFreeSpace: health.minFreeSpace } : false
    }
  })
  const registry = options.metrics ? processRegistry() : undefined
  if (registry !== undefined) {
    // Scraped even under pressure: that is when the numbers matter most.
    app.get('/metrics', { config: { pressureHandler: () => undefined }, logLevel: probeLevel }, async (_request, reply) => {
      reply.type(registry.contentType)
      return await registry.metrics()
    })
  }
  await app.register(fastifyTus, { ...options.tus, metrics: registry === undefined ? false : { registry } })
  // The page uploads to the tus routes of its own origin.
  await app.register(uploadPage, { endpoint: app.tus.options.prefix, download: app.tus.options.download })
  return app
}

// The server's own registry, with the process's default metrics; prom-client is loaded only with --metrics.
function processRegistry (): Registry {
  const { Registry, collectDefaultMetrics } = promClient()
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

export async function runServe (args: string[]): Promise<number> {
  const options = parseServeArgs(args)
  if (options === undefined) {
    process.stdout.write(serveHelp())
    return 0
  }
  if (options.workers !== undefined && !isWorker()) return await superviseWorkers(options.workers)
  const app = await createServer(options).catch(leaveCluster)
  const address = await app.listen({ port: options.port, host: options.host }).catch(leaveCluster)
  const url = `${address}${app.tus.options.prefix}`
  if (isWorker()) {
    announceWorker(url)
  } else {
    process.stdout.write(`fastify-tus listening on ${url}\n`)
    process.stdout.write(`upload page: ${address}/\n`)
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { void shutDown(app, signal, options.shutdownTimeout) })
  }
  return 0
}

// Stops accepting, lets the plugin end the bodies still streaming (their bytes
// recorded) and the answers go out; past the timeout, exits anyway.
async function shutDown (app: FastifyInstance, signal: string, timeout: number): Promise<void> {
  app.log.info({ signal, timeout }, 'shutting down')
  const late = setTimeout(() => {
    app.log.warn({ timeout }, 'requests still running at the shutdown timeout; exiting anyway')
    process.exit(1)
  }, timeout)
  late.unref()
  try {
    await app.close()
    process.stdout.write('fastify-tus stopped\n')
    process.exit(0)
  } catch (error) {
    app.log.error({ err: error }, 'shutdown failed')
    process.exit(1)
  }
}

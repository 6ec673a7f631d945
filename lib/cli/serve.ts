// `fastify-tus serve`: a tus server on its own, for trying the plugin out and
// for driving it from other processes in tests.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyTus } from '../plugin'
import { SERVE_FLAGS, defaultServeOptions, serveHelp, type ServeOptions } from './serve-flags'

export type { ServeOptions } from './serve-flags'

/** The options the arguments ask for, or undefined for --help. */
export function parseServeArgs (args: string[]): ServeOptions | undefined {
  const config: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } }
  for (const flag of SERVE_FLAGS) {
    config[flag.name] = { type: flag.value === undefined ? 'boolean' : 'string', multiple: flag.multiple === true }
  }
  const { values } = parseArgs({ args, strict: true, options: config })
  if (values.help === true) return undefined
  const options = defaultServeOptions()
  for (const flag of SERVE_FLAGS) {
    const value = values[flag.name]
    if (value !== undefined && value !== false) flag.apply(options, value)
  }
  return options
}

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
  const app = Fastify({ logger: { level: options.logLevel }, ...SERVER_TIMEOUTS, http: { ...SERVER_TIMEOUTS.http } })
  await app.register(fastifyTus, options.tus)
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
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  }
  return 0
}

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

// Fastify's own two lines per request (`incoming request`, `request completed`)
// tripled the CPU of a HEAD at info; at info the plugin's lines (creation,
// completion, refusals) say what happened, and the per-request lines come with debug.
const REQUEST_LINE_LEVELS = new Set(['debug', 'trace'])

export async function createServer (options: ServeOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: options.logLevel }, disableRequestLogging: !REQUEST_LINE_LEVELS.has(options.logLevel) })
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

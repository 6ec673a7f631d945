// `fastify-tus serve`: a tus server on its own, for trying the plugin out and
// for driving it from other processes in tests.
import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyTus } from '../plugin'
import { parseFlags } from './flags'
import { SERVE_FLAGS, defaultServeOptions, serveHelp, type ServeOptions } from './serve-flags'

export type { ServeOptions } from './serve-flags'

/** The options the arguments ask for, or undefined for --help. */
export function parseServeArgs (args: string[]): ServeOptions | undefined {
  return parseFlags(args, SERVE_FLAGS, defaultServeOptions())?.options
}

export async function createServer (options: ServeOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: options.logLevel }, trustProxy: options.trustProxy })
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

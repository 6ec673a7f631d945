// `fastify-tus serve`: a tus server on its own, for trying the plugin out and
// for driving it from other processes in tests.
import { parseArgs } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import type { FastifyTusOptions, TusExtension } from '../../types/index'
import { fastifyTus } from '../plugin'

const HELP = `Usage: fastify-tus serve [options]

  --port N              port to listen on (default 1080; 0 picks a free one)
  --host HOST           address to listen on (default 127.0.0.1)
  --directory DIR       uploads in progress (default ./uploads)
  --completed-dir DIR   finished uploads (default ./completed)
  --max-size BYTES      largest upload accepted
  --max-chunk-size BYTES largest request body accepted
  --no-fsync            do not fsync (faster, not crash-safe)
  --cors-origin ORIGIN  allow browser uploads from ORIGIN (repeatable; * for any)
  --expiration MS       unfinished uploads expire after MS without a write (0: never; default 86400000)
  --extensions LIST     the tus extensions to offer, comma-separated (default: all)
  --no-ietf             serve tus 1.0 only, not the IETF resumable-upload draft
  --log-level LEVEL     fatal, error, warn, info, debug, trace or silent (default info)
  -h, --help            show this help
`

export interface ServeOptions {
  port: number
  host: string
  logLevel: string
  tus: FastifyTusOptions
}

export function parseServeArgs (args: string[]): ServeOptions | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      port: { type: 'string', default: '1080' },
      host: { type: 'string', default: '127.0.0.1' },
      directory: { type: 'string', default: './uploads' },
      'completed-dir': { type: 'string', default: './completed' },
      'max-size': { type: 'string' },
      'max-chunk-size': { type: 'string' },
      'no-fsync': { type: 'boolean', default: false },
      'cors-origin': { type: 'string', multiple: true },
      expiration: { type: 'string' },
      extensions: { type: 'string' },
      'no-ietf': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) return undefined
  const tus: FastifyTusOptions = {
    directory: values.directory,
    completedDir: values['completed-dir'],
    fsync: !values['no-fsync'],
    ietf: !values['no-ietf']
  }
  if (values['max-size'] !== undefined) tus.maxSize = integerFlag('--max-size', values['max-size'])
  if (values['max-chunk-size'] !== undefined) tus.maxChunkSize = integerFlag('--max-chunk-size', values['max-chunk-size'])
  const origins = values['cors-origin']
  if (origins !== undefined) tus.cors = origins.includes('*') ? true : origins
  if (values.expiration !== undefined) {
    const expiration = integerFlag('--expiration', values.expiration)
    tus.expiration = expiration === 0 ? false : expiration
  }
  if (values.extensions !== undefined) tus.extensions = values.extensions.split(',').map((name) => name.trim()) as TusExtension[]
  return { port: integerFlag('--port', values.port), host: values.host, logLevel: values['log-level'], tus }
}

function integerFlag (name: string, value: string): number {
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new Error(`${name} needs a non-negative integer, got "${value}"`)
  return Number(value)
}

export async function createServer (options: ServeOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: options.logLevel } })
  await app.register(fastifyTus, options.tus)
  return app
}

export async function runServe (args: string[]): Promise<number> {
  const options = parseServeArgs(args)
  if (options === undefined) {
    process.stdout.write(HELP)
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

// The flags of `fastify-tus serve`, one row each: its parser, its help line and
// what it sets. Adding a flag is adding a row.
import type { FastifyTusOptions, TusExtension } from '../../types/index'

export interface ServeOptions {
  port: number
  host: string
  logLevel: string
  tus: FastifyTusOptions
}

interface Flag {
  name: string
  /** What the value is, for the help; a flag without one is a switch. */
  value?: string
  help: string
  multiple?: boolean
  short?: string
  /** Sets what the flag means on the options; `value` is the flag's string (or strings), `true` for a switch. */
  apply: (options: ServeOptions, value: any) => void
}

export const SERVE_FLAGS: readonly Flag[] = [
  { name: 'port', value: 'N', help: 'port to listen on (default 1080; 0 picks a free one)', apply: (o, v: string) => { o.port = integerFlag('--port', v) } },
  { name: 'host', value: 'HOST', help: 'address to listen on (default 127.0.0.1)', apply: (o, v: string) => { o.host = v } },
  { name: 'directory', value: 'DIR', help: 'uploads in progress (default ./uploads)', apply: (o, v: string) => { o.tus.directory = v } },
  { name: 'completed-dir', value: 'DIR', help: 'finished uploads (default ./completed)', apply: (o, v: string) => { o.tus.completedDir = v } },
  { name: 'max-size', value: 'BYTES', help: 'largest upload accepted', apply: (o, v: string) => { o.tus.maxSize = integerFlag('--max-size', v) } },
  { name: 'max-chunk-size', value: 'BYTES', help: 'largest request body accepted', apply: (o, v: string) => { o.tus.maxChunkSize = integerFlag('--max-chunk-size', v) } },
  {
    name: 'idle-timeout',
    value: 'MS',
    help: 'end a request body that sends nothing for MS (0: never; default 60000)',
    apply: (o, v: string) => { o.tus.idleTimeout = integerFlag('--idle-timeout', v) }
  },
  {
    name: 'max-reserved',
    value: 'BYTES',
    help: 'budget of preallocated, unwritten disk space, in bytes or N% of the filesystem (default 25%)',
    apply: (o, v: string) => { o.tus.maxReserved = v.endsWith('%') ? v as `${number}%` : integerFlag('--max-reserved', v) }
  },
  {
    name: 'reservation-timeout',
    value: 'MS',
    help: 'an upload idle for MS gives its unwritten space back (0: never; default 600000)',
    apply: (o, v: string) => { o.tus.reservationTimeout = integerFlag('--reservation-timeout', v) }
  },
  { name: 'no-fsync', help: 'do not fsync (faster, not crash-safe)', apply: (o) => { o.tus.fsync = false } },
  {
    name: 'cors-origin',
    value: 'ORIGIN',
    multiple: true,
    help: 'allow browser uploads from ORIGIN (repeatable; * for any)',
    apply: (o, v: string[]) => { o.tus.cors = v.includes('*') ? true : v }
  },
  {
    name: 'expiration',
    value: 'MS',
    help: 'unfinished uploads expire after MS without a write (0: never; default 86400000)',
    apply: (o, v: string) => {
      const expiration = integerFlag('--expiration', v)
      o.tus.expiration = expiration === 0 ? false : expiration
    }
  },
  {
    name: 'extensions',
    value: 'LIST',
    help: 'the tus extensions to offer, comma-separated (default: all)',
    apply: (o, v: string) => { o.tus.extensions = v.split(',').map((name) => name.trim()) as TusExtension[] }
  },
  { name: 'no-ietf', help: 'serve tus 1.0 only, not the IETF resumable-upload draft', apply: (o) => { o.tus.ietf = false } },
  { name: 'log-level', value: 'LEVEL', help: 'fatal, error, warn, info, debug, trace or silent (default info)', apply: (o, v: string) => { o.logLevel = v } }
]

export function defaultServeOptions (): ServeOptions {
  return { port: 1080, host: '127.0.0.1', logLevel: 'info', tus: { directory: './uploads', completedDir: './completed' } }
}

export function integerFlag (name: string, value: string): number {
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new Error(`${name} needs a non-negative integer, got "${value}"`)
  return Number(value)
}

export function serveHelp (): string {
  const rows = [...SERVE_FLAGS.map((flag) => [`--${flag.name}${flag.value === undefined ? '' : ` ${flag.value}`}`, flag.help]), ['-h, --help', 'show this help']]
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  return `Usage: fastify-tus serve [options]\n\n${rows.map(([left, help]) => `  ${left.padEnd(width)}${help}`).join('\n')}\n`
}

// The flags of `fastify-tus serve`, one row each: its parser, its help line and
// what it sets. Adding a flag is adding a row.
import type { FastifyTusOptions, JanitorOptions, TusExtension } from '../../types/index'
import { flagsHelp, integerFlag, positiveFlag, type Flag } from './flags'
import { trustProxyFlag } from './trust-proxy'

export { integerFlag } from './flags'

export interface ServeOptions {
  port: number
  host: string
  logLevel: string
  /** node:cluster workers (0: one per CPU); undefined: serve in this process. */
  workers?: number
  /** Fastify's trustProxy. */
  trustProxy: boolean | string[]
  /** Answer GET /metrics in the Prometheus text format. */
  metrics: boolean
  /** ms the server gives requests still streaming to end cleanly on SIGTERM/SIGINT before it exits anyway. */
  shutdownTimeout: number
  tus: FastifyTusOptions
}

/** The janitor settings gathered so far; the rows fill it before --janitor-interval may turn it off. */
function janitorOf (o: ServeOptions, flag: string): JanitorOptions {
  if (o.tus.janitor === false) throw new Error(`${flag} has no effect with --janitor-interval 0`)
  o.tus.janitor = o.tus.janitor ?? {}
  return o.tus.janitor
}

export const SERVE_FLAGS: ReadonlyArray<Flag<ServeOptions>> = [
  { name: 'port', value: 'N', help: 'port to listen on (default 1080; 0 picks a free one)', apply: (o, v: string) => { o.port = integerFlag('--port', v) } },
  { name: 'host', value: 'HOST', help: 'address to listen on (default 127.0.0.1)', apply: (o, v: string) => { o.host = v } },
  { name: 'prefix', value: 'PATH', help: 'URL path of the tus routes (default /files)', apply: (o, v: string) => { o.tus.prefix = v } },
  { name: 'directory', value: 'DIR', help: 'uploads in progress (default ./uploads)', apply: (o, v: string) => { o.tus.directory = v } },
  { name: 'completed-dir', value: 'DIR', help: 'finished uploads (default ./completed)', apply: (o, v: string) => { o.tus.completedDir = v } },
  {
    name: 'directory-mode',
    value: 'OCTAL',
    help: 'mode of the directories it creates (default 755)',
    apply: (o, v: string) => {
      if (!/^0?[0-7]{3,4}$/.test(v)) throw new Error(`--directory-mode needs an octal mode like 750, got "${v}"`)
      o.tus.directoryMode = parseInt(v, 8)
    }
  },
  { name: 'max-size', value: 'BYTES', help: 'largest upload accepted', apply: (o, v: string) => { o.tus.maxSize = integerFlag('--max-size', v) } },
  { name: 'max-chunk-size', value: 'BYTES', help: 'largest request body accepted', apply: (o, v: string) => { o.tus.maxChunkSize = integerFlag('--max-chunk-size', v) } },
  { name: 'max-metadata-size', value: 'BYTES', help: 'largest Upload-Metadata header accepted (default 4096)', apply: (o, v: string) => { o.tus.maxMetadataSize = integerFlag('--max-metadata-size', v) } },
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
  { name: 'no-preallocate', help: 'do not reserve Upload-Length on disk at creation', apply: (o) => { o.tus.preallocate = false } },
  { name: 'progress-interval', value: 'MS', help: 'least MS between two tus:progress calls per upload (default 1000)', apply: (o, v: string) => { o.tus.progressInterval = integerFlag('--progress-interval', v) } },
  { name: 'download', help: 'serve finished uploads at GET <prefix>/<id> (the default)', apply: (o) => { o.tus.download = true } },
  { name: 'no-download', help: 'do not serve finished uploads for download', apply: (o) => { o.tus.download = false } },
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
  { name: 'min-free-space', value: 'BYTES', help: 'refuse creations (503) and fail /health below this much free space (default 0: no floor)', apply: (o, v: string) => { o.tus.minFreeSpace = integerFlag('--min-free-space', v) } },
  { name: 'no-ietf', help: 'serve tus 1.0 only, not the IETF resumable-upload draft', apply: (o) => { o.tus.ietf = false } },
  { name: 'stale-upload-age', value: 'MS', help: 'the janitor deletes unfinished uploads idle for MS (default 86400000)', apply: (o, v: string) => { janitorOf(o, '--stale-upload-age').staleUploadAge = positiveFlag('--stale-upload-age', v) } },
  { name: 'completed-file-age', value: 'MS', help: 'the janitor deletes unclaimed finished uploads after MS (default 604800000)', apply: (o, v: string) => { janitorOf(o, '--completed-file-age').completedFileAge = positiveFlag('--completed-file-age', v) } },
  {
    name: 'janitor-interval',
    value: 'MS',
    help: 'run the janitor every MS (0: never; default 900000)',
    apply: (o, v: string) => {
      const interval = integerFlag('--janitor-interval', v)
      if (interval > 0) {
        janitorOf(o, '--janitor-interval').interval = interval
      } else if (o.tus.janitor !== undefined) {
        throw new Error('--stale-upload-age and --completed-file-age have no effect with --janitor-interval 0')
      } else {
        o.tus.janitor = false
      }
    }
  },
  {
    name: 'max-event-loop-delay',
    value: 'MS',
    help: 'answer 503 while the event loop lags more than MS (0: never; default 1000)',
    apply: (o, v: string) => {
      const { maxEventLoopDelay: _previous, ...others } = pressureOf(o)
      const delay = integerFlag('--max-event-loop-delay', v)
      const pressure = delay === 0 ? others : { ...others, maxEventLoopDelay: delay }
      // Nothing left to watch: no shedding at all.
      o.tus.underPressure = Object.keys(pressure).length === 0 ? false : pressure
    }
  },
  {
    name: 'trust-proxy',
    value: 'WHO',
    help: 'believe X-Forwarded-* from these proxies: addresses or CIDRs, comma-separated, or true for any',
    apply: (o, v: string) => { o.trustProxy = trustProxyFlag(v) }
  },
  {
    name: 'takeover-timeout',
    value: 'MS',
    help: 'how long a request waits for another process holding its upload to let go, then 423 (default 5000)',
    apply: (o, v: string) => { o.tus.takeoverTimeout = integerFlag('--takeover-timeout', v) }
  },
  {
    name: 'workers',
    value: 'N',
    help: 'serve from N worker processes on one port (0: one per CPU); a worker that dies is replaced',
    apply: (o, v: string) => { o.workers = integerFlag('--workers', v) }
  },
  {
    name: 'max-heap-used',
    value: 'BYTES',
    help: 'answer 503 while the heap holds more than BYTES (default: no limit)',
    apply: (o, v: string) => { o.tus.underPressure = { ...pressureOf(o), maxHeapUsedBytes: integerFlag('--max-heap-used', v) } }
  },
  { name: 'metrics', help: 'answer GET /metrics for Prometheus', apply: (o) => { o.metrics = true } },
  {
    name: 'shutdown-timeout',
    value: 'MS',
    help: 'on SIGTERM/SIGINT, ms to let requests end before exiting (default 10000)',
    apply: (o, v: string) => { o.shutdownTimeout = integerFlag('--shutdown-timeout', v) }
  },
  { name: 'log-level', value: 'LEVEL', help: 'fatal, error, warn, info, debug, trace or silent (default info)', apply: (o, v: string) => { o.logLevel = v } }
]

export function defaultServeOptions (): ServeOptions {
  return {
    port: 1080,
    host: '127.0.0.1',
    logLevel: 'info',
    trustProxy: false,
    metrics: false,
    shutdownTimeout: 10_000,
    tus: { directory: './uploads', completedDir: './completed', download: true, underPressure: { ...DEFAULT_PRESSURE } }
  }
}

/** The plugin's own default shedding, which serve starts from. */
export const DEFAULT_PRESSURE = Object.freeze({ maxEventLoopDelay: 1000 })

function pressureOf (options: ServeOptions): Record<string, unknown> {
  return options.tus.underPressure === false ? {} : { ...options.tus.underPressure }
}

export function serveHelp (): string {
  return flagsHelp('Usage: fastify-tus serve [options]', SERVE_FLAGS)
}

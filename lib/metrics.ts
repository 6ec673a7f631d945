// Prometheus metrics through prom-client, fed by the plugin's hooks, the
// Fastify hooks of the tus routes and the store's byte counts (one call per
// request, never per chunk). Several plugins in one process may share a
// registry: a metric already there is taken over rather than registered twice.
import type { FastifyInstance } from 'fastify'
import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { JanitorReport, TusMetricsOptions } from '../types/index'
import type { Hooks } from './hooks'

type Metric = Counter<string> | Gauge<string> | Histogram<string>

// Loaded only when metrics are on: prom-client and the OpenTelemetry API it pulls in
// are megabytes of resident memory that a server without metrics never needs.
export function promClient (): typeof import('prom-client') {
  return require('prom-client') as typeof import('prom-client')
}

export class TusMetrics {
  readonly created: Counter<string>
  readonly finished: Counter<string>
  readonly terminated: Counter<string>
  readonly failed: Counter<'reason'>
  readonly bytes: Counter<string>
  readonly inProgress: Gauge<string>
  readonly duration: Histogram<'method' | 'status'>
  readonly janitor: Counter<'action'>
  readonly claims: Counter<string>

  constructor (readonly registry: Registry) {
    const { Counter, Gauge, Histogram } = promClient()
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []): Counter<L> =>
      this.metric(name, () => new Counter({ name, help, labelNames, registers: [registry] }))
    this.created = counter('tus_uploads_created_total', 'Uploads created')
    this.finished = counter('tus_uploads_finished_total', 'Uploads finished and handed over to completedDir')
    this.terminated = counter('tus_uploads_terminated_total', 'Uploads terminated by a client')
    this.failed = counter('tus_uploads_failed_total', 'Uploads that failed, by error code', ['reason'])
    this.bytes = counter('tus_bytes_received_total', 'Upload bytes received and recorded')
    this.janitor = counter('tus_janitor_actions_total', 'What janitor passes did, by action', ['action'])
    this.claims = counter('tus_claims_total', 'Finished uploads claimed with waitForFile')
    this.inProgress = this.metric('tus_uploads_in_progress', () => new Gauge({
      name: 'tus_uploads_in_progress', help: 'Upload bodies streaming into this process now', registers: [registry]
    }))
    this.duration = this.metric('tus_request_duration_seconds', () => new Histogram({
      name: 'tus_request_duration_seconds',
      help: 'Duration of tus requests, by method and status code',
      labelNames: ['method', 'status'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers: [registry]
    }))
  }

  private metric<M extends Metric> (name: string, make: () => M): M {
    return (this.registry.getSingleMetric(name) as M | undefined) ?? make()
  }

  /** Counts what a janitor pass did, one increment per upload per action. */
  janitorReport (report: JanitorReport): void {
    for (const [action, ids] of Object.entries(report)) {
      if (action !== 'errors' && ids.length > 0) this.janitor.inc({ action }, ids.length)
    }
    if (report.errors.length > 0) this.janitor.inc({ action: 'error' }, report.errors.length)
  }

  /** Listens to the plugin's own hooks; added before any of the application's. */
  listen (hooks: Hooks): void {
    hooks.add('tus:created', () => { this.created.inc() })
    hooks.add('tus:completed', () => { this.finished.inc() })
    hooks.add('tus:terminated', () => { this.terminated.inc() })
    hooks.add('tus:failed', (error) => { this.failed.inc({ reason: reasonOf(error) }) })
  }

  /** Times every request of the tus routes and counts the bodies streaming in. */
  instrument (app: FastifyInstance): void {
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers['content-type']?.startsWith('application/offset+octet-stream') !== true) return
      this.inProgress.inc()
      // 'close' comes once, whether the answer went out or the client went away.
      reply.raw.once('close', () => { this.inProgress.dec() })
    })
    app.addHook('onResponse', async (request, reply) => {
      this.duration.observe({ method: request.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
    })
  }
}

/** The registry the `metrics` option asks for, or undefined without metrics. */
export function metricsRegistry (option: boolean | TusMetricsOptions | undefined): Registry | undefined {
  if (option === undefined || option === false) return undefined
  return option === true ? promClient().register : option.registry ?? promClient().register
}

function reasonOf (error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code) ? code : 'error'
}

// The janitor: runs cleanup passes of the store on demand and on a schedule,
// and tells the hooks what they handed over or refused.
import type { FastifyBaseLogger } from 'fastify'
import type { Janitor, JanitorReport, ResolvedTusOptions } from '../types/index'
import type { Hooks } from './hooks'
import type { FileStore } from './store/index'
import { sweep } from './store/sweep'
import { summary } from './upload-log'

const ORPHAN_AGE = 3600_000
const DEFAULTS = { staleUploadAge: 24 * 3600_000, completedFileAge: 7 * 24 * 3600_000 }

export class StoreJanitor implements Janitor {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<JanitorReport> | undefined
  private startup: Promise<void> | undefined

  constructor (
    private readonly store: FileStore,
    private readonly hooks: Hooks,
    private readonly options: ResolvedTusOptions['janitor'],
    private readonly log: FastifyBaseLogger,
    private readonly onReport: (report: JanitorReport) => void = () => {}
  ) {}

  /** One pass at a time per process; a call during a pass gets that pass's report. */
  run (): Promise<JanitorReport> {
    this.running ??= this.pass().finally(() => { this.running = undefined })
    return this.running
  }

  private async pass (): Promise<JanitorReport> {
    const { staleUploadAge, completedFileAge } = this.options === false ? DEFAULTS : this.options
    const { report, finished } = await sweep(this.store, { now: Date.now(), staleUploadAge, completedFileAge, orphanAge: ORPHAN_AGE })
    for (const record of finished) {
      this.log.info(summary(this.log, record), 'upload completed')
      await this.hooks.notify('tus:completed', this.log, record.id, record)
    }
    this.onReport(report)
    return report
  }

  /**
   * One pass at once, to complete what a crash interrupted (a hand-over cut
   * short, a final never assembled), then one every `interval` ms. Readiness does
   * not wait for it; the timer never keeps the process alive. The start-up pass
   * is its own, so that a run() asked for meanwhile sees everything made since.
   */
  start (): void {
    if (this.options === false || this.timer !== undefined) return
    this.startup = this.logged(this.pass())
    this.timer = setInterval(() => { void this.logged(this.run()) }, this.options.interval).unref()
  }

  private async logged (pass: Promise<JanitorReport>): Promise<void> {
    try {
      const { errors, ...done } = await pass
      const changed = Object.entries(done).filter(([, ids]) => ids.length > 0)
      if (changed.length > 0) this.log.info({ janitor: Object.fromEntries(changed) }, 'janitor pass')
      for (const { id, error } of errors) this.log.error({ err: error, uploadId: id }, 'janitor could not clean an upload')
    } catch (error) {
      this.log.error({ err: error }, 'janitor pass failed')
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.running?.catch(() => {})
    await this.startup
  }
}

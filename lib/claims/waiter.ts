// Wakes a claim loop on a directory event (this machine), a poll (other
// machines: inotify does not cross them), and ends it on timeout or abort.
import { watch, type FSWatcher } from 'node:fs'
import { FST_TUS_WAIT_TIMEOUT } from '../errors'

export class Waiter {
  changed = false
  private readonly watcher: FSWatcher | undefined
  private wake: (() => void) | undefined
  private fail: ((error: unknown) => void) | undefined
  private failure: unknown
  private readonly deadline: NodeJS.Timeout | undefined
  private poll: NodeJS.Timeout | undefined
  private readonly onAbort: () => void

  /** `onEvent` learns of each entry named by a watch event (null: the name is unknown) before the loop wakes. */
  /** `timeout` is the wait's, for the error; `endsAt` when it ends (ms since the epoch). */
  constructor (
    directory: string,
    timeout: number | undefined,
    endsAt: number | undefined,
    private readonly signal: AbortSignal | undefined,
    onEvent: (name: string | null) => Promise<void>
  ) {
    this.watcher = watchDirectory(directory, (name) => {
      this.changed = true
      void onEvent(name).finally(() => this.wake?.())
    })
    this.onAbort = () => this.stop(abortError(signal!))
    if (signal?.aborted === true) this.onAbort()
    else signal?.addEventListener('abort', this.onAbort, { once: true })
    if (timeout !== undefined && endsAt !== undefined) {
      this.deadline = setTimeout(() => this.stop(new FST_TUS_WAIT_TIMEOUT(timeout)), Math.max(0, endsAt - Date.now()))
    }
  }

  next (delay: number): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    return new Promise<void>((resolve, reject) => {
      this.wake = resolve
      this.fail = reject
      this.poll = setTimeout(resolve, delay)
    }).finally(() => {
      clearTimeout(this.poll)
      this.wake = undefined
      this.fail = undefined
    })
  }

  private stop (error: unknown): void {
    this.failure = error
    this.fail?.(error)
  }

  close (): void {
    this.watcher?.close()
    clearTimeout(this.deadline)
    clearTimeout(this.poll)
    this.signal?.removeEventListener('abort', this.onAbort)
  }
}

// Rejections of an aborted wait are AbortErrors, whatever the reason given to abort(), as in Node's own APIs.
export function abortError (signal: AbortSignal): Error {
  return Object.assign(new Error('The wait for a finished upload was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' })
}

function watchDirectory (directory: string, onChange: (name: string | null) => void): FSWatcher | undefined {
  try {
    const watcher = watch(directory, { persistent: false }, (_event, name) => onChange(name))
    watcher.on('error', () => watcher.close()) // polling goes on
    return watcher
  } catch {
    return undefined // no inotify here: polling alone
  }
}

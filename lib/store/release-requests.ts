// Release requests: how a request for an upload whose lock another process or
// machine holds asks that holder to let go, through the shared directory
// itself (no coordinator, no network between nodes). The asker renames a fresh
// `.<id>.release` file into place; every process watches its directory (so an
// asker on the same machine is noticed at once) and polls the request files of
// the uploads it holds (inotify does not cross machines).
//
// A holder honours only a request file it has not seen before (a new inode, or
// a new mtime): one left by an asker that crashed, present when the lock was
// taken, is ignored. An asker that waits re-asks with a fresh file, so a request
// made in the instant the holder took its lock is not lost either, and the
// janitor removes leftovers like any old temporary file.
import { randomBytes } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { rename, stat, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isUploadId } from './ids'

const SUFFIX = '.release'
// Unique temporary names across processes and machines, as records have.
const asker = `${randomBytes(6).toString('hex')}-${process.pid}`
let asked = 0

export const releaseName = (id: string): string => `.${id}${SUFFIX}`

function heldIdOf (name: string | null): string | undefined {
  if (name === null || !name.startsWith('.') || !name.endsWith(SUFFIX)) return undefined
  const id = name.slice(1, -SUFFIX.length)
  return isUploadId(id) ? id : undefined
}

interface Hold {
  onRequest: () => void
  /** The request file as it was when the lock was taken (or last honoured): not a request for this hold. */
  seen: string | undefined
}

export class ReleaseRequests {
  private watcher: FSWatcher | undefined
  private poll: NodeJS.Timeout | undefined
  private polling = false
  private readonly holds = new Map<string, Hold>()

  /** `pollInterval`: how often the request files of held uploads are looked at, for askers on other machines. */
  constructor (readonly directory: string, private readonly pollInterval: number) {}

  /** Watches the directory for askers on this machine; without inotify, polling alone. */
  start (): void {
    if (this.watcher !== undefined) return
    try {
      this.watcher = watch(this.directory, { persistent: false }, (_event, name) => {
        const id = heldIdOf(name)
        if (id !== undefined && this.holds.has(id)) void this.check(id)
      })
      this.watcher.on('error', () => this.watcher?.close())
    } catch {}
  }

  stop (): void {
    this.watcher?.close()
    this.watcher = undefined
    clearInterval(this.poll)
    this.poll = undefined
    this.holds.clear()
  }

  /**
   * This process has just taken the upload's lock: `onRequest` runs when another process asks for
   * it. Resolves with the function that ends the hold (call it when the lock is let go).
   */
  async hold (id: string, onRequest: () => void): Promise<() => void> {
    const hold: Hold = { onRequest, seen: await this.version(id) }
    this.holds.set(id, hold)
    this.poll ??= setInterval(() => { void this.pollHolds() }, this.pollInterval).unref()
    return () => {
      if (this.holds.get(id) === hold) this.holds.delete(id)
      if (this.holds.size === 0) {
        clearInterval(this.poll)
        this.poll = undefined
      }
    }
  }

  /** Asks whoever holds the upload's lock to let go (again: each call is a new request); never throws. */
  async ask (id: string): Promise<void> {
    const target = path.join(this.directory, releaseName(id))
    // Dot-prefixed and .tmp, as record temporaries are: the janitor removes one left by a crash.
    const temporary = `${target}.${asker}-${asked++}.tmp`
    try {
      await writeFile(temporary, `${process.pid}\n`)
      await rename(temporary, target)
    } catch {
      // A network filesystem may refuse a rename racing another asker's (ENOENT, ESTALE): the
      // asker asks again in a second, and the takeover timeout bounds the wait either way.
      await unlink(temporary).catch(() => {})
    }
  }

  /** Removes the upload's request file: the asker got the lock, or gave up. */
  async withdraw (id: string): Promise<void> {
    await unlink(path.join(this.directory, releaseName(id))).catch(() => {})
  }

  private async pollHolds (): Promise<void> {
    if (this.polling) return
    this.polling = true
    try {
      await Promise.all([...this.holds.keys()].map((id) => this.check(id)))
    } finally {
      this.polling = false
    }
  }

  private async check (id: string): Promise<void> {
    const hold = this.holds.get(id)
    if (hold === undefined) return
    const version = await this.version(id)
    if (version === undefined || version === hold.seen || this.holds.get(id) !== hold) return
    hold.seen = version
    hold.onRequest()
  }

  // Identifies one request file: a new request is a new file (rename), so a new inode.
  private async version (id: string): Promise<string | undefined> {
    try {
      const { ino, mtimeNs } = await stat(path.join(this.directory, releaseName(id)), { bigint: true })
      return `${ino}:${mtimeNs}`
    } catch {
      return undefined
    }
  }
}

// An asker tries the lock again after 1, 2, 4 ... ms, at most LOCK_RETRY; it asks only once the lock
// stayed busy for ASK_AFTER (short holders, a hand-over or a HEAD, let go by themselves), and again
// every ASK_AGAIN with a fresh request file.
const LOCK_RETRY = 20
const ASK_AFTER = 30
const ASK_AGAIN = 1000

/** One request's wait for a lock held by another process. */
export class Asking {
  private readonly started = Date.now()
  private askedAt = -Infinity
  private retry = 1

  constructor (private readonly requests: ReleaseRequests, private readonly id: string) {}

  /** Asks (again, when due), then waits a moment before the lock is tried again. */
  async wait (): Promise<void> {
    const now = Date.now()
    if (now - this.started >= ASK_AFTER && now - this.askedAt >= ASK_AGAIN) {
      this.askedAt = now
      await this.requests.ask(this.id)
    }
    await sleep(this.retry)
    this.retry = Math.min(LOCK_RETRY, this.retry * 2)
  }

  /** The lock was taken, or the wait given up: the request file goes. */
  async done (): Promise<void> {
    if (this.askedAt > -Infinity) await this.requests.withdraw(this.id)
  }
}

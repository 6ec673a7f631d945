// The finished uploads of one completedDir as this process last saw them,
// oldest first: a hint for where to try a claim, never the truth. The truth is
// the directory and the claim's flock; an entry whose files are gone is simply
// dropped when a claim finds it missing. The list is rebuilt from readdir,
// refreshed by watch events (this machine) and periodic readdirs (other
// machines), and a record is stat'ed once: a finished record never changes.
import { stat, readdir } from 'node:fs/promises'
import path from 'node:path'
import { isUploadId } from '../store/ids'

const RECORD_SUFFIX = '.meta'
// New records are stat'ed this many at a time: a first look at a big backlog must not flood the thread pool.
const STAT_BATCH = 256

interface Entry { id: string, finished: number, seen: number }

/** The upload id a directory entry's name is the record of, or undefined. */
export function recordId (name: string): string | undefined {
  const id = name.endsWith(RECORD_SUFFIX) ? name.slice(0, -RECORD_SUFFIX.length) : ''
  return isUploadId(id) ? id : undefined
}

// Oldest first; the id breaks ties so that every process orders alike.
function before (a: Entry, b: Entry): boolean {
  return a.finished < b.finished || (a.finished === b.finished && a.id < b.id)
}

export class Candidates {
  private readonly entries = new Map<string, Entry>()
  private order: Entry[] = []
  private refreshing: Promise<void> | undefined
  /** When the last completed readdir started (ms since the epoch); -Infinity before the first. */
  refreshedAt = -Infinity
  // Counts notes, so that a readdir never drops an entry noted after it started.
  private seen = 0

  constructor (readonly directory: string) {}

  get size (): number {
    return this.order.length
  }

  /** The candidates, oldest first: a copy, as claims change the list while they try it. */
  snapshot (): ReadonlyArray<{ readonly id: string }> {
    return this.order.slice()
  }

  /** A watch event for `name`: a record that appeared is added, one that vanished dropped. */
  async note (name: string): Promise<void> {
    const id = recordId(name)
    if (id === undefined) return
    const seen = ++this.seen
    try {
      this.add(id, (await stat(path.join(this.directory, name))).mtimeMs, seen)
    } catch {
      this.forget(id)
    }
  }

  /** Drops an upload that a claim found gone, or took. */
  forget (id: string): void {
    const entry = this.entries.get(id)
    if (entry === undefined) return
    this.entries.delete(id)
    const at = this.position(entry)
    if (this.order[at] === entry) this.order.splice(at, 1)
    else this.order = this.order.filter((other) => other !== entry)
  }

  /** Reads the directory again; concurrent callers share one pass. */
  refresh (): Promise<void> {
    this.refreshing ??= this.readAgain().finally(() => { this.refreshing = undefined })
    return this.refreshing
  }

  private async readAgain (): Promise<void> {
    const started = Date.now()
    const seenBefore = this.seen
    const names = await readdir(this.directory)
    const present = new Set<string>()
    const fresh: string[] = []
    for (const name of names) {
      const id = recordId(name)
      if (id === undefined) continue
      present.add(id)
      if (!this.entries.has(id)) fresh.push(id)
    }
    const gone = this.order.filter((entry) => !present.has(entry.id) && entry.seen <= seenBefore)
    if (gone.length > 0) {
      for (const entry of gone) this.entries.delete(entry.id)
      this.order = this.order.filter((entry) => this.entries.get(entry.id) === entry)
    }
    await this.addAll(fresh, seenBefore)
    this.refreshedAt = started
  }

  private async addAll (ids: string[], seen: number): Promise<void> {
    const found: Entry[] = []
    for (let start = 0; start < ids.length; start += STAT_BATCH) {
      await Promise.all(ids.slice(start, start + STAT_BATCH).map(async (id) => {
        try {
          found.push({ id, finished: (await stat(path.join(this.directory, `${id}${RECORD_SUFFIX}`))).mtimeMs, seen })
        } catch {} // claimed and released meanwhile
      }))
    }
    const added = found.filter((entry) => !this.entries.has(entry.id))
    for (const entry of added) this.entries.set(entry.id, entry)
    if (added.length > 16) {
      this.order.push(...added)
      this.order.sort((a, b) => before(a, b) ? -1 : before(b, a) ? 1 : 0)
    } else {
      for (const entry of added) this.order.splice(this.position(entry), 0, entry)
    }
  }

  private add (id: string, finished: number, seen: number): void {
    const known = this.entries.get(id)
    if (known !== undefined) {
      known.seen = seen
      return
    }
    const entry = { id, finished, seen }
    this.entries.set(id, entry)
    this.order.splice(this.position(entry), 0, entry)
  }

  // Where `entry` is or would go in the order (binary search).
  private position (entry: Entry): number {
    let low = 0
    let high = this.order.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (before(this.order[middle], entry)) low = middle + 1
      else high = middle
    }
    return low
  }
}

// One list per directory and process, kept between waits: a worker loop's
// next claim starts from what its last one knew instead of a readdir.
const lists = new Map<string, Candidates>()

/** This process's candidate list for `directory` (an absolute path). */
export function candidatesOf (directory: string): Candidates {
  let list = lists.get(directory)
  if (list === undefined) {
    list = new Candidates(directory)
    lists.set(directory, list)
  }
  return list
}

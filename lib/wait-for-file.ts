// Claiming finished uploads exactly once, across threads, processes and
// machines: the claim is an exclusive non-blocking flock on the finished data
// file, so the kernel (or the shared filesystem's lock server) arbitrates, and
// a claimer that dies lets go without anyone's help.
import { watch, type FSWatcher } from 'node:fs'
import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { ClaimedFile, UploadRecord, WaitForFileOptions } from '../types/index'
import { FST_TUS_ALREADY_RELEASED, FST_TUS_ALREADY_SAVED, FST_TUS_INVALID_OPTION, FST_TUS_WAIT_TIMEOUT } from './errors'
import { isUploadId } from './store/ids'
import { tryLock } from './store/lock'
import { moveFile, syncDirectory } from './store/move'
import { readRecord, recordName } from './store/record'

const RECORD_SUFFIX = '.meta'
// How soon to look again when a finished upload was still locked by its writer or another claimer.
const BUSY_RETRY = 100

export async function waitForFile (completedDir: string, options: WaitForFileOptions = {}): Promise<ClaimedFile> {
  const { timeout, signal, pollInterval = 1000 } = options
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0)) {
    throw new FST_TUS_INVALID_OPTION('timeout', 'must be a number of ms, 0 or more')
  }
  if (!(Number.isFinite(pollInterval) && pollInterval > 0)) {
    throw new FST_TUS_INVALID_OPTION('pollInterval', 'must be a positive number of ms')
  }
  if (signal?.aborted === true) throw abortError(signal)
  const directory = path.resolve(completedDir)
  // A worker may start before the server that creates the directory.
  await mkdir(directory, { recursive: true })
  const waiter = new Waiter(directory, timeout, signal)
  try {
    for (;;) {
      waiter.check()
      waiter.changed = false
      const { claim, busy } = await claimOldest(directory)
      if (claim !== undefined) return claim
      // A change seen during the scan may be the file we missed: look again at once.
      if (!waiter.changed) await waiter.next(busy ? Math.min(pollInterval, BUSY_RETRY) : pollInterval)
    }
  } finally {
    waiter.close()
  }
}

// Wakes the claim loop on a directory event (this machine), a poll (other
// machines: inotify does not cross them), and ends it on timeout or abort.
class Waiter {
  changed = false
  private readonly watcher: FSWatcher | undefined
  private wake: (() => void) | undefined
  private fail: ((error: unknown) => void) | undefined
  private failure: unknown
  private readonly deadline: NodeJS.Timeout | undefined
  private poll: NodeJS.Timeout | undefined
  private readonly onAbort: () => void

  constructor (directory: string, timeout: number | undefined, private readonly signal: AbortSignal | undefined) {
    this.watcher = watchDirectory(directory, () => {
      this.changed = true
      this.wake?.()
    })
    this.onAbort = () => this.stop(abortError(signal!))
    signal?.addEventListener('abort', this.onAbort, { once: true })
    // Aborted while the directory was made: that abort event is past, the listener would never hear it.
    if (signal?.aborted === true) this.onAbort()
    if (timeout !== undefined) {
      this.deadline = setTimeout(() => this.stop(new FST_TUS_WAIT_TIMEOUT(timeout)), timeout)
    }
  }

  /** Throws once the wait has timed out or was aborted. */
  check (): void {
    if (this.failure !== undefined) throw this.failure
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
function abortError (signal: AbortSignal): Error {
  return Object.assign(new Error('The wait for a finished upload was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' })
}

function watchDirectory (directory: string, onChange: () => void): FSWatcher | undefined {
  try {
    const watcher = watch(directory, { persistent: false }, onChange)
    watcher.on('error', () => watcher.close()) // polling goes on
    return watcher
  } catch {
    return undefined // no inotify here: polling alone
  }
}

/** The finished uploads of a directory, oldest first (a record is written when its upload finishes). */
export async function finishedUploads (directory: string): Promise<string[]> {
  const names = await readdir(directory)
  const found = await Promise.all(names.map(async (name) => {
    const id = name.endsWith(RECORD_SUFFIX) ? name.slice(0, -RECORD_SUFFIX.length) : ''
    if (!isUploadId(id)) return undefined
    try {
      return { id, finished: (await stat(path.join(directory, name))).mtimeMs }
    } catch {
      return undefined // claimed and released meanwhile
    }
  }))
  return found
    .filter((entry) => entry !== undefined)
    .sort((a, b) => a.finished - b.finished)
    .map((entry) => entry.id)
}

async function claimOldest (directory: string): Promise<{ claim?: ClaimedFile, busy: boolean }> {
  let busy = false
  for (const id of await finishedUploads(directory)) {
    const outcome = await claim(directory, id)
    if (outcome === 'busy') busy = true
    else if (outcome !== undefined) return { claim: outcome, busy }
  }
  return { busy }
}

async function claim (directory: string, id: string): Promise<Claim | 'busy' | undefined> {
  let handle: FileHandle
  try {
    handle = await open(path.join(directory, id), 'r')
  } catch {
    return undefined // gone: claimed and released, or the record has no data
  }
  try {
    if (!await tryLock(handle.fd)) {
      await handle.close()
      return 'busy'
    }
    // Released (deleted) between our open and our lock: the inode is no longer the upload.
    const [{ nlink }, record] = await Promise.all([handle.stat(), readRecord(directory, id)])
    if (nlink === 0 || record === undefined) {
      await handle.close()
      return undefined
    }
    return new Claim(directory, record, handle)
  } catch (error) {
    await handle.close()
    throw error
  }
}

/** A filesystem-safe name from the client's filename: no separators, no control characters. */
export function safeName (record: UploadRecord): string {
  const raw = record.metadata.filename ?? record.metadata.name ?? ''
  // eslint-disable-next-line no-control-regex
  let name = raw.replace(/[/\\\x00-\x1f\x7f]/g, '_').trim()
  while (Buffer.byteLength(name) > 255) name = name.slice(0, -1)
  return name === '' || name === '.' || name === '..' ? record.id : name
}

class Claim implements ClaimedFile {
  readonly id: string
  readonly name: string
  readonly record: UploadRecord
  path: string
  private readonly recordPath: string
  private dataSaved = false
  private recordSaved = false
  private released = false

  constructor (private readonly directory: string, record: UploadRecord, private readonly handle: FileHandle) {
    this.id = record.id
    this.record = record
    this.name = safeName(record)
    this.path = path.join(directory, record.id)
    this.recordPath = path.join(directory, recordName(record.id))
  }

  async save (destination: string): Promise<string> {
    this.usable('data', this.dataSaved)
    await mkdir(path.dirname(path.resolve(destination)), { recursive: true })
    await moveFile(this.path, destination)
    this.dataSaved = true
    this.path = path.resolve(destination)
    return this.path
  }

  async saveRecord (destination: string): Promise<string> {
    this.usable('record', this.recordSaved)
    await mkdir(path.dirname(path.resolve(destination)), { recursive: true })
    await moveFile(this.recordPath, destination)
    this.recordSaved = true
    return path.resolve(destination)
  }

  async release (): Promise<void> {
    if (this.released) return
    this.released = true
    try {
      // Record first: without it no other claimer considers the upload, even after a crash here.
      if (!this.recordSaved) await unlink(this.recordPath).catch(ignoreMissing)
      if (!this.dataSaved) await unlink(this.path).catch(ignoreMissing)
      await syncDirectory(this.directory)
    } finally {
      await this.handle.close()
    }
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.release()
  }

  private usable (what: 'data' | 'record', saved: boolean): void {
    if (this.released) throw new FST_TUS_ALREADY_RELEASED(this.id)
    if (saved) throw new FST_TUS_ALREADY_SAVED(what, this.id)
  }
}

function ignoreMissing (error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error
}

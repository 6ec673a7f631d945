// The budget of reserved-but-unwritten disk space. Preallocation reserves an
// upload's whole length at creation, so that an honest upload never meets a
// full disk halfway; without a bound, byte-less creations could reserve the
// whole filesystem. The total is counted from what is on disk (the sum over
// in-progress records marked `reserved` of length − offset), so every process
// and machine sharing the directory counts the same uploads without a
// coordinator. A full scan per creation would cost too much with thousands of
// uploads: each process keeps the total of its last scan plus its own changes
// since, and scans again every refresh interval. Another process's
// reservations are seen at its next scan at the latest, so the total may
// overshoot by what the other processes reserved within one interval.
// The same scan gives back the unwritten part of uploads idle for
// reservationTimeout: the data file is truncated to its offset (the kernel
// frees the blocks) and the record marked `reserved: false`; a write to such an
// upload takes its reservation again first (see `resume`).
import { readFileSync } from 'node:fs'
import { readdir, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { UploadRecord } from '../../types/index'
import { FST_TUS_RESERVATION_EXCEEDED } from '../errors'
import type { Directory } from './directory'
import { openIfPresent } from './files'
import { isUploadId } from './ids'
import { tryLock } from './lock'
import { readRecord, writeRecord } from './record'
import { canPreallocate, reserve, totalBytes } from './space'

export interface ReservationOptions {
  directory: Directory
  fsync: boolean
  /** Bytes, or a percentage of the size of the filesystem holding the directory. */
  maxReserved: number | `${number}%`
  /** ms without a write after which an upload's unwritten part is given back; 0 for never. */
  reservationTimeout: number
  /** ms between two scans; by default half the reservation timeout, from 50 ms to 5 s. */
  refreshInterval?: number
}

const MAX_REFRESH = 5000
const MIN_REFRESH = 50
// Records read in place per turn of the event loop during a scan (a few ms of
// work): a round trip through the thread pool per record would cost ten times
// as long at 10,000 uploads and take the pool from fsyncs.
const SCAN_BATCH = 128

/** Bytes an upload holds reserved on disk and has not written yet. */
export const reservedBytes = (record: UploadRecord): number =>
  record.reserved === true && record.length !== null ? Math.max(0, record.length - record.offset) : 0

export class Reservations {
  /** The budget in bytes, known once opened. */
  limit = Infinity
  private scanned = 0
  // This process's changes since the last scan began.
  private taken = 0
  private given = 0
  private timer: NodeJS.Timeout | undefined
  private scanning: Promise<void> | undefined
  private readonly interval: number
  // False once reserving turned out to be impossible here (no addon, or a filesystem without fallocate): no budget then.
  private reserving = canPreallocate

  constructor (private readonly options: ReservationOptions) {
    const { reservationTimeout, refreshInterval } = options
    this.interval = refreshInterval ?? (reservationTimeout > 0 ? Math.min(MAX_REFRESH, Math.max(MIN_REFRESH, reservationTimeout / 2)) : MAX_REFRESH)
  }

  /** Resolves the budget and counts what is reserved now; then rescans every interval (an unref'd timer). */
  async open (): Promise<void> {
    const { maxReserved } = this.options
    this.limit = typeof maxReserved === 'number'
      ? maxReserved
      : Math.floor(await totalBytes(this.options.directory.path) * Number(maxReserved.slice(0, -1)) / 100)
    if (!this.needed) return
    await this.refresh()
    this.timer = setInterval(() => { this.refresh().catch(() => {}) }, this.interval).unref()
  }

  async close (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.scanning?.catch(() => {})
  }

  private get needed (): boolean {
    return Number.isFinite(this.limit) || this.options.reservationTimeout > 0
  }

  /** The reserved-but-unwritten bytes as this process knows them. */
  get total (): number {
    return Math.max(0, this.scanned + this.taken - this.given)
  }

  /** Counts `bytes` against the budget; rejects with FST_TUS_RESERVATION_EXCEEDED (507) when they do not fit. */
  take (bytes: number): void {
    if (bytes <= 0) return
    if (this.total + bytes > this.limit) throw new FST_TUS_RESERVATION_EXCEEDED(this.limit)
    this.taken += bytes
  }

  /** `bytes` of a reservation were written, or given back. */
  give (bytes: number): void {
    if (bytes > 0) this.given += bytes
  }

  /**
   * Preallocates the unwritten part of an upload within the budget. Over
   * budget a new upload is refused (507); one that already has data (`keep`)
   * is kept unreserved, to reserve when it resumes.
   */
  async preallocate (fd: number, record: UploadRecord, keep: boolean): Promise<void> {
    if (!this.reserving) {
      await reserve(fd, this.options.directory.path, record.length!)
      return
    }
    const bytes = record.length! - record.offset
    try {
      this.take(bytes)
    } catch (error) {
      if (!keep || !(error instanceof FST_TUS_RESERVATION_EXCEEDED)) throw error
      record.reserved = false
      return
    }
    try {
      if (await reserve(fd, this.options.directory.path, record.length!)) {
        record.reserved = true
      } else {
        this.reserving = false
        this.give(bytes)
      }
    } catch (error) {
      this.give(bytes)
      throw error
    }
  }

  /**
   * Before a write to an upload whose reservation was given back: takes it
   * again (budget, then blocks) and records that, or rejects with 507 leaving
   * the upload as it was. The caller holds the upload's lock.
   */
  async resume (handle: FileHandle, record: UploadRecord): Promise<void> {
    if (record.reserved !== false || record.length === null || record.offset >= record.length) return
    const bytes = record.length - record.offset
    this.take(bytes)
    try {
      await reserve(handle.fd, this.options.directory.path, record.length)
      record.reserved = true
      await writeRecord(this.options.directory, record, this.options.fsync)
    } catch (error) {
      this.give(bytes)
      await handle.truncate(record.offset).catch(() => {})
      record.reserved = false
      throw error
    }
  }

  /** One scan: gives back idle reservations and recounts the total from the records. */
  refresh (): Promise<void> {
    this.scanning ??= this.scan().finally(() => { this.scanning = undefined })
    return this.scanning
  }

  private async scan (): Promise<void> {
    // Changes made while the scan runs may or may not be seen by it: taken
    // bytes are kept on top of its total (an overcount, until the next scan), given ones are not.
    const takenBefore = this.taken
    const directory = this.options.directory.path
    const names = (await readdir(directory)).filter((name) => name.endsWith('.meta') && isUploadId(name.slice(0, -5)))
    let total = 0
    for (let start = 0; start < names.length; start += SCAN_BATCH) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve))
      const records = names.slice(start, start + SCAN_BATCH).map((name) => readRecordQuietly(path.join(directory, name)))
      for (const record of records) {
        if (record === undefined || reservedBytes(record) === 0) continue
        total += this.isIdle(record) && await this.giveBack(record.id) ? 0 : reservedBytes(record)
      }
    }
    this.scanned = total
    this.taken -= takenBefore
    this.given = 0
  }

  private isIdle (record: UploadRecord): boolean {
    const { reservationTimeout } = this.options
    return reservationTimeout > 0 && record.finishedAt === null && Date.now() - Date.parse(record.lastWrite) >= reservationTimeout
  }

  // Truncates an idle upload's data file to its offset, under its lock; false when it is busy or no longer idle.
  private async giveBack (id: string): Promise<boolean> {
    const { directory, fsync } = this.options
    const handle = await openIfPresent(path.join(directory.path, id), 'r+')
    if (handle === undefined) return true
    try {
      if (!await tryLock(handle.fd)) return false
      const record = await readRecord(directory.path, id)
      if (record === undefined) return true
      if (reservedBytes(record) === 0 || !this.isIdle(record)) return reservedBytes(record) === 0
      await handle.truncate(record.offset)
      record.reserved = false
      await writeRecord(directory, record, fsync)
      return true
    } finally {
      await handle.close()
    }
  }
}

function readRecordQuietly (file: string): UploadRecord | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as UploadRecord
  } catch {
    return undefined // replaced or removed while the scan ran, or unreadable: the janitor's business
  }
}

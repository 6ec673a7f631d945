// What every part of the store shares: its options, its two directories, and
// the rules about records (expiry, removal) that they all apply the same way.
import path from 'node:path'
import type { UploadRecord } from '../../types/index'
import { Directory } from './directory'
import { unlinkIfPresent } from './files'
import { recordName } from './record'
import { faultAt } from './fault'
import { ReleaseRequests } from './release-requests'

// How often a holder looks for release requests made on other machines (no inotify there).
const RELEASE_POLL = 200
import { Reservations } from './reservations'

export interface FileStoreOptions {
  directory: string
  completedDir: string
  directoryMode: number
  maxSize: number
  fsync: boolean
  preallocate: boolean
  /** Budget of reserved-but-unwritten bytes: bytes, or a percentage of the filesystem's size. */
  maxReserved: number | `${number}%`
  /** ms without a write after which an upload's unwritten reservation is given back; 0 for never. */
  reservationTimeout: number
  /** ms between two recounts of the reservations on disk (default from reservationTimeout). */
  reservationRefresh?: number
  /** ms without a write after which an unfinished upload expires, or false. */
  expiration: number | false
  /** During a long write, make bytes durable and record the offset every this many bytes. */
  checkpointBytes?: number
  /** How long a request waits for the holder of its upload's lock (any process) to let go. */
  takeoverTimeout?: number
  /** Runs when the last byte is durable, before hand-over; when it throws, the upload is deleted. */
  beforeFinish?: (record: UploadRecord) => Promise<void>
  /** Whether beforeFinish has anything to run now (absent: whenever it is given); without it a finish may overlap its steps. */
  beforeFinishActive?: () => boolean
}

export class StoreContext {
  readonly directory: string
  readonly completedDir: string
  readonly uploads: Directory
  readonly completed: Directory
  readonly checkpointBytes: number
  readonly takeoverTimeout: number
  /** Asks for, and answers, release requests of upload locks held by other processes. */
  readonly releases: ReleaseRequests
  // Uploads created with data whose names are not durable yet: the write that follows makes them so.
  readonly unnamed = new Set<string>()
  readonly reservations: Reservations

  constructor (readonly options: FileStoreOptions) {
    this.directory = options.directory
    this.completedDir = options.completedDir
    this.uploads = new Directory(options.directory)
    this.completed = new Directory(options.completedDir)
    this.checkpointBytes = options.checkpointBytes ?? 64 * 1024 * 1024
    this.takeoverTimeout = options.takeoverTimeout ?? 5000
    this.releases = new ReleaseRequests(options.directory, RELEASE_POLL)
    this.reservations = new Reservations({
      directory: this.uploads,
      fsync: options.fsync,
      maxReserved: options.maxReserved,
      reservationTimeout: options.reservationTimeout,
      refreshInterval: options.reservationRefresh
    })
  }

  isExpired (record: UploadRecord, now: number): boolean {
    return this.options.expiration !== false && record.finishedAt === null && record.expiresAt !== null && Date.parse(record.expiresAt) <= now
  }

  expiryFrom (now: number): string | null {
    return this.options.expiration === false ? null : new Date(now + this.options.expiration).toISOString()
  }

  /** Deletes an upload's record, then its data (a record never names missing data), durably. True when the record was there. */
  async removeFiles (directory: string, id: string): Promise<boolean> {
    const removed = await unlinkIfPresent(path.join(directory, recordName(id)))
    faultAt('remove:record-removed')
    await unlinkIfPresent(path.join(directory, id))
    if (this.options.fsync) await (directory === this.completedDir ? this.completed : this.uploads).sync()
    return removed
  }
}

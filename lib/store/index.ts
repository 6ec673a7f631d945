// The filesystem store: one data file and one record per upload, handed over to
// completedDir when the last byte is durable. It knows nothing of HTTP, hooks or
// Fastify; all coordination between processes is flock, atomic renames and the
// record. This class is its face: each concern lives in a module of its own.
import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import type { CreateUploadInput, TusStore, UploadRecord, WriteUploadInput, WriteUploadResult } from '../../types/index'
import { FST_TUS_INVALID_OPTION, FST_TUS_UPLOAD_EXPIRED, FST_TUS_UPLOAD_NOT_FOUND } from '../errors'
import { StoreContext, type FileStoreOptions } from './context'
import { Creation } from './create'
import { CreationWithData, type CreatedCallback } from './create-with-data'
import type { Directory } from './directory'
import { HandOver } from './finish'
import { isUploadId } from './ids'
import { openIfPresent } from './files'
import { readRecord } from './record'
import { unlockedNow } from './lock'
import { acquireLock, stopWrites } from './takeover'
import type { Reservations } from './reservations'
import { terminate } from './terminate'
import { BodyWriting } from './write'

export type { FileStoreOptions } from './context'

export class FileStore implements TusStore {
  readonly directory: string
  readonly completedDir: string
  readonly uploads: Directory
  readonly completed: Directory
  private readonly context: StoreContext
  /** The budget of reserved-but-unwritten disk space, shared with every process on the directory. */
  readonly reservations: Reservations
  private readonly handOver: HandOver
  private readonly creation: Creation
  private readonly bodies: BodyWriting
  private readonly creationWithData: CreationWithData

  constructor (readonly options: FileStoreOptions) {
    const context = this.context = new StoreContext(options)
    this.directory = context.directory
    this.completedDir = context.completedDir
    this.uploads = context.uploads
    this.completed = context.completed
    this.reservations = context.reservations
    this.handOver = new HandOver(context)
    this.creation = new Creation(context, this.handOver)
    this.bodies = new BodyWriting(context, this.handOver)
    this.creationWithData = new CreationWithData(context, this.creation, this.bodies, this.handOver)
  }

  async open (): Promise<void> {
    await this.uploads.open(this.options.directoryMode)
    await this.completed.open(this.options.directoryMode)
    // Hand-over links the data into completedDir, which cannot cross filesystems.
    const [uploads, completed] = await Promise.all([stat(this.directory), stat(this.completedDir)])
    if (uploads.dev !== completed.dev) {
      await this.close()
      throw new FST_TUS_INVALID_OPTION('completedDir', 'must be on the same filesystem as directory')
    }
    // Without preallocation nothing is reserved.
    if (this.options.preallocate) await this.reservations.open()
    this.context.releases.start()
  }

  /**
   * Ends every body streaming into this store, and every one that starts later,
   * as a failed request: what arrived is made durable and recorded, and the
   * write rejects with `error` (the request still answers). For a shutdown.
   */
  stopWrites (error: Error): void {
    stopWrites(this.context, error)
  }

  async close (): Promise<void> {
    this.context.releases.stop()
    await this.reservations.close()
    await this.uploads.close()
    await this.completed.close()
  }

  async create (input: CreateUploadInput): Promise<UploadRecord> {
    return await this.creation.create(input)
  }

  async createWithData (input: CreateUploadInput, source: Readable, write: WriteUploadInput & CreatedCallback): Promise<WriteUploadResult> {
    return await this.creationWithData.createWithData(input, source, write)
  }

  async get (id: string): Promise<UploadRecord> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    // In progress first: a finishing upload has its completed record before it loses this one.
    const record = await readRecord(this.directory, id) ?? await readRecord(this.completedDir, id)
    if (record === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    if (this.isExpired(record, Date.now())) throw new FST_TUS_UPLOAD_EXPIRED()
    return record
  }

  async current (id: string): Promise<UploadRecord> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    // Joined as readRecord joins, without normalizing, for every HEAD; when locked, the path is
    // made as writers make the key they register under.
    if (unlockedNow(`${this.directory}/${id}`) !== false) return await this.get(id)
    const dataPath = path.join(this.directory, id)
    const handle = await openIfPresent(dataPath, 'r')
    if (handle === undefined) return await this.get(id)
    try {
      // A request writing it (here or elsewhere) records its bytes and lets go. The lock is held only
      // for that: records are replaced atomically, and readers holding it while they read would starve writers.
      await acquireLock(handle, dataPath, this.context, true)
    } finally {
      await handle.close()
    }
    return await this.get(id)
  }

  async write (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult> {
    return await this.bodies.write(id, source, input)
  }

  async terminate (id: string): Promise<UploadRecord> {
    return await terminate(this.context, this.handOver.concatenation, id)
  }

  /**
   * The upload's last byte is durable and recorded: a partial waits for its
   * final, anything else is handed over. Resolves with the uploads handed over.
   * The caller holds the upload's lock, or is its only user.
   */
  async complete (record: UploadRecord): Promise<UploadRecord[]> {
    return await this.handOver.complete(record)
  }

  /** Assembles a final upload whose partials are all finished; resolves with it when this call handed it over. Call without holding its lock. */
  async assemble (finalId: string): Promise<UploadRecord | undefined> {
    return await this.handOver.concatenation.assemble(finalId)
  }

  /** A partial upload is gone: no final waits for it any more. */
  async forgetPartial (partialId: string): Promise<void> {
    await this.handOver.concatenation.unlinked(partialId)
  }

  /** Deletes an upload's record, then its data (a record never names missing data), durably. True when the record was there. */
  async removeFiles (directory: string, id: string): Promise<boolean> {
    return await this.context.removeFiles(directory, id)
  }

  isExpired (record: UploadRecord, now: number): boolean {
    return this.context.isExpired(record, now)
  }
}

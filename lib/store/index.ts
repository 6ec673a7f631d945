// The filesystem store: one data file and one record per upload, handed over to
// completedDir when the last byte is durable. It knows nothing of HTTP; all
// coordination between processes is flock, atomic renames and the record.
import { link, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CreateUploadInput, TusStore, UploadRecord, WriteUploadInput, WriteUploadResult } from '../../types/index'
import {
  FST_TUS_CHUNK_TOO_LARGE,
  FST_TUS_CONCAT_FINAL_PATCH,
  FST_TUS_INSUFFICIENT_STORAGE,
  FST_TUS_INVALID_OPTION,
  FST_TUS_MAX_SIZE_EXCEEDED,
  FST_TUS_OFFSET_MISMATCH,
  FST_TUS_REQUEST_ABORTED,
  FST_TUS_SUPERSEDED,
  FST_TUS_UPLOAD_EXPIRED,
  FST_TUS_UPLOAD_LENGTH_ALREADY_SET,
  FST_TUS_UPLOAD_LENGTH_EXCEEDED,
  FST_TUS_UPLOAD_LENGTH_TOO_SMALL,
  FST_TUS_UPLOAD_LOCKED,
  FST_TUS_UPLOAD_NOT_FOUND
} from '../errors'
import { ChecksumVerifier } from './checksum'
import { Concatenation, isFinal, isPartial } from './concat'
import { Directory } from './directory'
import { isUploadId, newUploadId } from './ids'
import { tryLock } from './lock'
import { pump } from './pump'
import { readRecord, recordName, writeRecord } from './record'
import { UploadSink } from './sink'
import { reserve } from './space'

export interface FileStoreOptions {
  directory: string
  completedDir: string
  directoryMode: number
  maxSize: number
  fsync: boolean
  preallocate: boolean
  /** ms without a write after which an unfinished upload expires, or false. */
  expiration: number | false
  /** During a long write, make bytes durable and record the offset every this many bytes. */
  checkpointBytes?: number
  /** How long a write waits for a superseded writer in this process to let go. */
  takeoverTimeout?: number
  /** Runs when the last byte is durable, before hand-over; when it throws, the upload is deleted. */
  beforeFinish?: (record: UploadRecord) => Promise<void>
}

interface CreatedCallback {
  /** Runs once the new upload's record is persisted, before the result (or the failure) is known to the caller. */
  onCreated?: (record: UploadRecord) => Promise<void>
}

interface ActiveWrite {
  supersede (): void
  released: Promise<void>
}

interface Writer {
  release: () => void
  streaming: (on: boolean) => void
}

// Writers of this process, by data file path: a request for an upload whose
// previous request is still streaming (the client reconnected before the server
// saw the old socket die) stops that request instead of waiting for it.
const activeWrites = new Map<string, ActiveWrite>()

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG'])
const isDiskFull = (error: unknown): boolean => DISK_FULL.has((error as { code?: string } | undefined)?.code ?? '')
const storageError = (error: unknown): unknown => isDiskFull(error) ? new FST_TUS_INSUFFICIENT_STORAGE() : error
// Data given back on a full disk so that the record can still be written.
const RECORD_ROOM = 64 * 1024

export class FileStore implements TusStore {
  readonly directory: string
  readonly completedDir: string
  readonly uploads: Directory
  readonly completed: Directory
  private readonly checkpointBytes: number
  private readonly takeoverTimeout: number
  private readonly concatenation: Concatenation
  // Uploads created with data whose names are not durable yet: the write that follows makes them so.
  private readonly unnamed = new Set<string>()

  constructor (readonly options: FileStoreOptions) {
    this.directory = options.directory
    this.completedDir = options.completedDir
    this.uploads = new Directory(options.directory)
    this.completed = new Directory(options.completedDir)
    this.checkpointBytes = options.checkpointBytes ?? 64 * 1024 * 1024
    this.takeoverTimeout = options.takeoverTimeout ?? 2000
    this.concatenation = new Concatenation(this)
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
  }

  async close (): Promise<void> {
    await this.uploads.close()
    await this.completed.close()
  }

  async create (input: CreateUploadInput, withData = false): Promise<UploadRecord> {
    const partials = input.concat !== undefined && 'final' in input.concat
      ? await this.concatenation.partials(input.concat.final, input.allowUnfinishedPartials === true)
      : undefined
    const length = partials !== undefined ? partials.reduce((sum, partial) => sum + partial.length!, 0) : input.length
    if (length !== null && length > this.options.maxSize) throw new FST_TUS_MAX_SIZE_EXCEEDED(this.options.maxSize)
    const record = this.newRecord(input, length)
    const dataPath = path.join(this.directory, record.id)
    const handle = await open(dataPath, 'wx', 0o644)
    try {
      if (length !== null && length > 0 && this.options.preallocate) await reserve(handle.fd, this.directory, length)
      // The directory fsync in writeRecord also makes the new data file's name durable; with
      // data coming in the same request, the write that follows does it (and answers).
      await writeRecord(this.uploads, record, this.options.fsync, !withData)
      if (withData) this.unnamed.add(record.id)
    } catch (error) {
      await unlink(dataPath)
      throw storageError(error)
    } finally {
      await handle.close()
    }
    if (partials !== undefined) return await this.concatenation.created(record, partials)
    // Nobody else knows the id yet: no lock needed to finish an empty upload.
    if (length === 0) await this.complete(record)
    return record
  }

  private newRecord (input: CreateUploadInput, length: number | null): UploadRecord {
    const now = Date.now()
    return {
      id: newUploadId(),
      metadata: input.metadata ?? Object.create(null),
      serverMetadata: input.serverMetadata ?? {},
      length,
      offset: 0,
      createdAt: new Date(now).toISOString(),
      lastWrite: new Date(now).toISOString(),
      finishedAt: null,
      duration: null,
      expiresAt: this.expiryFrom(now),
      concat: input.concat ?? null
    }
  }

  async createWithData (input: CreateUploadInput, source: Readable, write: WriteUploadInput & CreatedCallback): Promise<WriteUploadResult> {
    const { length } = input
    // The whole upload may be in this body: then it goes straight to completedDir.
    const whole = input.concat === undefined && length !== null && length > 0 && (write.contentLength ?? length) === length
    if (!whole) {
      const record = await this.create(input, true)
      await write.onCreated?.(record)
      return await this.write(record.id, source, write)
    }
    if (length > this.options.maxSize) throw new FST_TUS_MAX_SIZE_EXCEEDED(this.options.maxSize)
    const record = this.newRecord(input, length)
    const { limit, overLimit } = this.limitOf(record, write.maxBytes)
    if (write.contentLength !== undefined && write.contentLength > limit) throw overLimit()
    // Written under a hidden name in completedDir, so that a whole upload takes its place there with one rename.
    const dataPath = path.join(this.completedDir, `.${record.id}.data.tmp`)
    const handle = await open(dataPath, 'wx', 0o644)
    try {
      return await this.writeWhole(handle, dataPath, record, source, write, limit, overLimit)
    } catch (error) {
      throw storageError(error)
    } finally {
      await handle.close()
    }
  }

  // An upload whose creation request carries its data, perhaps all of it. No
  // record of it exists while the body streams (nobody but this request knows
  // its id, and without its URL no client could resume it): when the body
  // completes it, its data is made durable and it is handed over with one record;
  // otherwise it becomes an ordinary upload at the offset the body reached.
  private async writeWhole (handle: FileHandle, dataPath: string, record: UploadRecord, source: Readable, write: WriteUploadInput & CreatedCallback, limit: number, overLimit: () => Error): Promise<WriteUploadResult> {
    const verifier = write.checksum !== undefined ? new ChecksumVerifier(write.checksum) : undefined
    const sink = new UploadSink(handle.fd, 0, limit, overLimit, () => {}, verifier)
    let streamError: unknown
    try {
      await pump(source, sink)
      verifier?.verify()
    } catch (error) {
      streamError = error
    }
    await sink.idle()
    // A checksummed body counts only whole and verified.
    let written = verifier !== undefined && streamError !== undefined ? 0 : sink.written
    if (written !== sink.written) await handle.truncate(0)
    if (isDiskFull(streamError)) {
      written = Math.max(0, written - RECORD_ROOM)
      await handle.truncate(written)
    }
    if (this.options.fsync && written > 0) await handle.datasync()
    record.offset = written
    record.lastWrite = new Date().toISOString()
    // Whole, even if the request then failed (bytes past the length, an abort after the last byte).
    if (written === record.length) {
      try {
        // No in-progress record to commit: the data's name needs no fsync of its own before the record's.
        await this.prepareFinish(record, () => rename(dataPath, path.join(this.completedDir, record.id)))
      } catch (error) {
        await unlinkIfPresent(dataPath)
        throw error
      }
      // One durable record, in completedDir; its directory fsync also makes the data's name there durable.
      await writeRecord(this.completed, record, this.options.fsync)
      await write.onCreated?.(record)
      write.onProgress?.({ ...record })
      await write.onHandedOver?.(record)
      if (streamError !== undefined) throw this.streamFailure(streamError)
      return { record, written, finished: true }
    }
    // Short of whole: an ordinary upload, its data where uploads in progress live.
    let current = dataPath
    try {
      await rename(dataPath, path.join(this.directory, record.id))
      current = path.join(this.directory, record.id)
      if (this.options.preallocate && written < record.length!) await reserve(handle.fd, this.directory, record.length!)
      await writeRecord(this.uploads, record, this.options.fsync)
    } catch (error) {
      await unlinkIfPresent(current)
      throw error
    }
    await write.onCreated?.(record)
    if (written > 0) write.onProgress?.({ ...record })
    if (streamError !== undefined) throw this.streamFailure(streamError)
    return { record, written, finished: false }
  }

  async get (id: string): Promise<UploadRecord> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    // In progress first: a finishing upload has its completed record before it loses this one.
    const record = await readRecord(this.directory, id) ?? await readRecord(this.completedDir, id)
    if (record === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    if (this.isExpired(record, Date.now())) throw new FST_TUS_UPLOAD_EXPIRED()
    return record
  }

  async write (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    const dataPath = path.join(this.directory, id)
    const handle = await openIfPresent(dataPath, 'r+')
    if (handle === undefined) return await this.writeFinished(id, source, input)
    let release = (): void => {}
    try {
      const writer = await this.lock(handle, dataPath, source)
      release = writer.release
      const record = await readRecord(this.directory, id)
      // No record beside the data: it was handed over while we waited for the lock.
      if (record === undefined) return await this.writeFinished(id, source, input)
      return await this.writeLocked(handle, record, source, input, writer)
    } catch (error) {
      throw storageError(error)
    } finally {
      await handle.close()
      release()
      if (this.unnamed.delete(id) && this.options.fsync) await this.uploads.sync()
    }
  }

  /**
   * The record once no write of this process streams into the upload any more:
   * one still streaming is stopped first (its client came back to ask where it
   * stands, so it has given that request up), and what it wrote is recorded.
   */
  async settle (id: string): Promise<UploadRecord> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    const dataPath = path.join(this.directory, id)
    const handle = activeWrites.has(dataPath) ? await openIfPresent(dataPath, 'r') : undefined
    if (handle !== undefined) {
      try {
        (await this.lock(handle, dataPath, null)).release()
      } finally {
        await handle.close()
      }
    }
    return await this.get(id)
  }

  async terminate (id: string): Promise<UploadRecord> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    const dataPath = path.join(this.directory, id)
    const handle = await openIfPresent(dataPath, 'r')
    if (handle !== undefined) {
      let release = (): void => {}
      try {
        // A request still streaming into the upload in this process is stopped first.
        release = (await this.lock(handle, dataPath, null)).release
        const record = await readRecord(this.directory, id)
        if (record !== undefined) {
          await this.removeFiles(this.directory, id)
          await this.concatenation.unlinked(id)
          return record
        }
      } finally {
        await handle.close()
        release()
      }
    }
    // Finished and waiting in completedDir: refused while a worker has claimed it.
    const finished = await openIfPresent(path.join(this.completedDir, id), 'r')
    if (finished === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    try {
      if (!await tryLock(finished.fd)) throw new FST_TUS_UPLOAD_LOCKED()
      const record = await readRecord(this.completedDir, id)
      if (record === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
      await this.removeFiles(this.completedDir, id)
      return record
    } finally {
      await finished.close()
    }
  }

  private async lock (handle: FileHandle, dataPath: string, source: Readable | null): Promise<Writer> {
    const deadline = Date.now() + this.takeoverTimeout
    while (!await tryLock(handle.fd)) {
      const active = activeWrites.get(dataPath)
      if (active === undefined || Date.now() > deadline) throw new FST_TUS_UPLOAD_LOCKED()
      active.supersede()
      await Promise.race([active.released, sleep(50)])
    }
    let streaming = false
    let release = (): void => {}
    const write: ActiveWrite = {
      supersede: () => { if (streaming) source?.destroy(new FST_TUS_SUPERSEDED()) },
      released: new Promise((resolve) => { release = resolve })
    }
    activeWrites.set(dataPath, write)
    return {
      streaming: (on) => { streaming = on },
      release: () => {
        if (activeWrites.get(dataPath) === write) activeWrites.delete(dataPath)
        release()
      }
    }
  }

  private async writeLocked (handle: FileHandle, record: UploadRecord, source: Readable | null, input: WriteUploadInput, writer: Writer): Promise<WriteUploadResult> {
    if (isFinal(record)) throw new FST_TUS_CONCAT_FINAL_PATCH()
    if (this.isExpired(record, Date.now())) throw new FST_TUS_UPLOAD_EXPIRED()
    if (input.offset !== record.offset) throw new FST_TUS_OFFSET_MISMATCH(input.offset, record.offset)
    if (record.finishedAt !== null) {
      // Complete but not handed over (a crash, or a partial waiting for its final): an empty PATCH takes it up again.
      await this.handedOver(await this.complete(record), input)
      return { record, written: 0, finished: true }
    }
    const lengthChanged = this.applyLength(record, input.length)
    const { limit, overLimit } = this.limitOf(record, input.maxBytes)
    if (input.contentLength !== undefined && input.contentLength > limit) throw overLimit()

    const start = record.offset
    const verifier = input.checksum !== undefined ? new ChecksumVerifier(input.checksum) : undefined
    // A checksummed body counts only once verified whole: no offset is recorded before its end.
    const checkpoints = new Checkpoints(verifier === undefined ? this.checkpointBytes : Infinity, async (written) => {
      if (this.options.fsync) await handle.datasync()
      const now = Date.now()
      const checkpoint = { ...record, offset: start + written, lastWrite: new Date(now).toISOString(), expiresAt: this.expiryFrom(now) }
      await writeRecord(this.uploads, checkpoint, this.options.fsync)
      input.onProgress?.(checkpoint)
    })
    // No checkpoint at the very end: the final record follows at once.
    const sink = new UploadSink(handle.fd, start, limit, overLimit, (written) => { if (written < limit) checkpoints.reached(written) }, verifier)
    let streamError: unknown
    if (source !== null) {
      writer.streaming(true)
      try {
        await pump(source, sink)
      } catch (error) {
        streamError = error
      }
      writer.streaming(false)
      await sink.idle()
    }

    if (verifier !== undefined) {
      if (streamError === undefined) {
        try {
          verifier.verify()
        } catch (error) {
          streamError = error
        }
      }
      if (streamError !== undefined) {
        await this.discard(handle, record, start)
        throw this.streamFailure(streamError)
      }
    }

    // Whatever ended the stream, the bytes that arrived are made durable and recorded.
    let written = sink.written
    if (isDiskFull(streamError) && written > 0) {
      // The record needs room of its own on the full disk: give back the last bytes of data.
      written = Math.max(0, written - RECORD_ROOM)
      await handle.truncate(start + written)
    }
    await checkpoints.settled()
    const finished = record.length === record.offset + written
    if (written > 0 || lengthChanged) {
      let dataSynced = this.options.fsync && written > 0 ? handle.datasync() : undefined
      dataSynced?.catch(() => {}) // awaited below; never an unhandled rejection meanwhile
      const now = Date.now()
      record.offset += written
      record.lastWrite = new Date(now).toISOString()
      record.expiresAt = this.expiryFrom(now)
      if (finished) {
        // The last byte: tus:preFinish sees it durable, and the record that says
        // finished is also the one that commits the hand-over.
        await dataSynced
        dataSynced = undefined
        await this.prepareFinish(record)
      }
      await writeRecord(this.uploads, record, this.options.fsync, true, dataSynced)
      this.unnamed.delete(record.id)
      input.onProgress?.({ ...record })
      if (finished) await this.handedOver(await this.afterFinish(record), input)
    }
    if (streamError !== undefined) throw this.streamFailure(streamError)
    return { record, written, finished }
  }

  private async handedOver (records: UploadRecord[], input: WriteUploadInput): Promise<void> {
    for (const record of records) await input.onHandedOver?.(record)
  }

  // The length of a deferred upload, set by a later PATCH.
  private applyLength (record: UploadRecord, length: number | null | undefined): boolean {
    if (length === undefined || length === null) return false
    if (record.length !== null) {
      if (length !== record.length) throw new FST_TUS_UPLOAD_LENGTH_ALREADY_SET(record.length)
      return false
    }
    if (length < record.offset) throw new FST_TUS_UPLOAD_LENGTH_TOO_SMALL(length, record.offset)
    if (length > this.options.maxSize) throw new FST_TUS_MAX_SIZE_EXCEEDED(this.options.maxSize)
    record.length = length
    return true
  }

  private limitOf (record: UploadRecord, maxBytes: number | undefined): { limit: number, overLimit: () => Error } {
    const { maxSize } = this.options
    const remaining = (record.length ?? maxSize) - record.offset
    if (maxBytes !== undefined && maxBytes < remaining) {
      return { limit: maxBytes, overLimit: () => new FST_TUS_CHUNK_TOO_LARGE(maxBytes) }
    }
    const length = record.length
    return {
      limit: remaining,
      overLimit: length === null ? () => new FST_TUS_MAX_SIZE_EXCEEDED(maxSize) : () => new FST_TUS_UPLOAD_LENGTH_EXCEEDED(length)
    }
  }

  private streamFailure (error: unknown): unknown {
    const code = (error as { code?: string }).code
    if (code?.startsWith('FST_TUS_') === true || isDiskFull(error)) return error
    if ((error as { syscall?: string }).syscall !== undefined) return error
    return new FST_TUS_REQUEST_ABORTED()
  }

  // A body that cannot count (its checksum failed, or could not be checked):
  // the file goes back to what it was, preallocation included.
  private async discard (handle: FileHandle, record: UploadRecord, start: number): Promise<void> {
    await handle.truncate(start)
    if (this.options.preallocate && record.length !== null && record.length > start) await reserve(handle.fd, this.directory, record.length)
  }

  // A write to an upload that is already handed over (or gone): only a matching, empty request succeeds.
  private async writeFinished (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult> {
    const record = await readRecord(this.completedDir, id)
    if (record === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    if (isFinal(record)) throw new FST_TUS_CONCAT_FINAL_PATCH()
    if (input.offset !== record.offset) throw new FST_TUS_OFFSET_MISMATCH(input.offset, record.offset)
    const overLimit = (): Error => new FST_TUS_UPLOAD_LENGTH_EXCEEDED(record.length)
    if (input.contentLength !== undefined && input.contentLength > 0) throw overLimit()
    // A body of unknown length: refused at its first byte, without touching any file.
    if (source !== null) await pump(source, new UploadSink(-1, 0, 0, overLimit, () => {}))
    return { record, written: 0, finished: true }
  }

  /**
   * The upload's last byte is durable and recorded: a partial waits for its
   * final, anything else is handed over. Resolves with the uploads handed over.
   * The caller holds the upload's lock, or is its only user.
   */
  async complete (record: UploadRecord): Promise<UploadRecord[]> {
    if (record.finishedAt === null) {
      await this.prepareFinish(record)
      await writeRecord(this.uploads, record, this.options.fsync)
    }
    return await this.afterFinish(record)
  }

  // Before the record that says "finished" is written: the hook may still refuse,
  // and the data gets its durable name in completedDir (a hard link).
  private async prepareFinish (record: UploadRecord, placeData = (): Promise<void> => this.linkIntoCompleted(record)): Promise<void> {
    if (!isPartial(record)) {
      if (this.options.beforeFinish !== undefined) {
        try {
          await this.options.beforeFinish({ ...record })
        } catch (error) {
          await this.removeFiles(this.directory, record.id)
          throw error
        }
      }
      await placeData()
    }
    const finishedAt = Date.now()
    record.finishedAt = new Date(finishedAt).toISOString()
    record.duration = finishedAt - Date.parse(record.createdAt)
    if (!isPartial(record)) record.expiresAt = null
  }

  private async linkIntoCompleted (record: UploadRecord): Promise<void> {
    try {
      await link(path.join(this.directory, record.id), path.join(this.completedDir, record.id))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error // a finish taken up again
    }
    if (this.options.fsync) await this.completed.sync()
  }

  private async afterFinish (record: UploadRecord): Promise<UploadRecord[]> {
    if (isPartial(record)) return await this.concatenation.partialFinished(record)
    return await this.publish(record) ? [record] : []
  }

  // Hand-over, once the in-progress record says finished: the record appears in
  // completedDir (from then on a worker may claim it), then the in-progress
  // record and data name go, in that order. A directory fsync (another
  // upload's included) persists every earlier change in it, so whenever the
  // power goes, a durable record has its data under a durable name, and a
  // finished in-progress record whose completed data is gone was delivered.
  private async publish (record: UploadRecord): Promise<boolean> {
    const completedData = await stat(path.join(this.completedDir, record.id)).then(() => true, () => false)
    const published = completedData && await readRecord(this.completedDir, record.id) === undefined
    if (published) await writeRecord(this.completed, record, this.options.fsync)
    // Not fsynced: should these removals be lost, the finished record left behind
    // is recognised (its completed copy is there, or was delivered) and cleared.
    await unlinkIfPresent(path.join(this.directory, recordName(record.id)))
    await unlinkIfPresent(path.join(this.directory, record.id))
    return published
  }

  /** Assembles a final upload whose partials are all finished; resolves with it when this call handed it over. Call without holding its lock. */
  async assemble (finalId: string): Promise<UploadRecord | undefined> {
    return await this.concatenation.assemble(finalId)
  }

  /** A partial upload is gone: no final waits for it any more. */
  async forgetPartial (partialId: string): Promise<void> {
    await this.concatenation.unlinked(partialId)
  }

  /** Deletes an upload's record, then its data (a record never names missing data), durably. True when the record was there. */
  async removeFiles (directory: string, id: string): Promise<boolean> {
    const removed = await unlinkIfPresent(path.join(directory, recordName(id)))
    await unlinkIfPresent(path.join(directory, id))
    if (this.options.fsync) await (directory === this.completedDir ? this.completed : this.uploads).sync()
    return removed
  }

  isExpired (record: UploadRecord, now: number): boolean {
    return this.options.expiration !== false && record.finishedAt === null && record.expiresAt !== null && Date.parse(record.expiresAt) <= now
  }

  private expiryFrom (now: number): string | null {
    return this.options.expiration === false ? null : new Date(now + this.options.expiration).toISOString()
  }
}

export async function openIfPresent (file: string, flags: string): Promise<FileHandle | undefined> {
  try {
    return await open(file, flags)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** True when the file was there to delete. */
export async function unlinkIfPresent (file: string): Promise<boolean> {
  try {
    await unlink(file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}

// Periodic durability during one long write, so a crash in the middle of a
// multi-gigabyte PATCH resumes near where it stopped. Runs beside the writes.
class Checkpoints {
  private last = 0
  private chain: Promise<void> = Promise.resolve()
  private error: unknown

  constructor (private readonly every: number, private readonly persist: (written: number) => Promise<void>) {}

  reached (written: number): void {
    if (written - this.last < this.every) return
    this.last = written
    this.chain = this.chain.then(() => this.persist(written)).catch((error) => { this.error ??= error })
  }

  async settled (): Promise<void> {
    await this.chain
    if (this.error !== undefined) throw this.error
  }
}

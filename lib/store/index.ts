// The filesystem store: one data file and one record per upload, moved to
// completedDir when the last byte is durable. It knows nothing of HTTP; all
// coordination between processes is flock, atomic renames and the record.
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CreateUploadInput, TusStore, UploadRecord, WriteUploadInput, WriteUploadResult } from '../../types/index'
import {
  FST_TUS_CHUNK_TOO_LARGE,
  FST_TUS_INSUFFICIENT_STORAGE,
  FST_TUS_INVALID_OPTION,
  FST_TUS_MAX_SIZE_EXCEEDED,
  FST_TUS_OFFSET_MISMATCH,
  FST_TUS_REQUEST_ABORTED,
  FST_TUS_SUPERSEDED,
  FST_TUS_UPLOAD_LENGTH_ALREADY_SET,
  FST_TUS_UPLOAD_LENGTH_EXCEEDED,
  FST_TUS_UPLOAD_LENGTH_TOO_SMALL,
  FST_TUS_UPLOAD_LOCKED,
  FST_TUS_UPLOAD_NOT_FOUND
} from '../errors'
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
  /** During a long write, make bytes durable and record the offset every this many bytes. */
  checkpointBytes?: number
  /** How long a write waits for a superseded writer in this process to let go. */
  takeoverTimeout?: number
  /** Runs when the last byte is durable, before hand-over; when it throws, the upload is deleted. */
  beforeFinish?: (record: UploadRecord) => Promise<void>
}

interface ActiveWrite {
  supersede (): void
  released: Promise<void>
}

// Writers of this process, by data file path: a request for an upload whose
// previous request is still streaming (the client reconnected before the server
// saw the old socket die) stops that request instead of waiting for it.
const activeWrites = new Map<string, ActiveWrite>()

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG'])
const isDiskFull = (error: unknown): boolean => DISK_FULL.has((error as { code?: string } | undefined)?.code ?? '')
// Data given back on a full disk so that the record can still be written.
const RECORD_ROOM = 64 * 1024

export class FileStore implements TusStore {
  readonly directory: string
  readonly completedDir: string
  private readonly uploads: Directory
  private readonly completed: Directory
  private readonly checkpointBytes: number
  private readonly takeoverTimeout: number

  constructor (private readonly options: FileStoreOptions) {
    this.directory = options.directory
    this.completedDir = options.completedDir
    this.uploads = new Directory(options.directory)
    this.completed = new Directory(options.completedDir)
    this.checkpointBytes = options.checkpointBytes ?? 64 * 1024 * 1024
    this.takeoverTimeout = options.takeoverTimeout ?? 2000
  }

  async open (): Promise<void> {
    await this.uploads.open(this.options.directoryMode)
    await this.completed.open(this.options.directoryMode)
    // Finishing is a rename, which cannot cross filesystems.
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

  async create (input: CreateUploadInput): Promise<UploadRecord> {
    const { length } = input
    if (length !== null && length > this.options.maxSize) throw new FST_TUS_MAX_SIZE_EXCEEDED(this.options.maxSize)
    const now = new Date().toISOString()
    const record: UploadRecord = {
      id: newUploadId(),
      metadata: input.metadata ?? Object.create(null),
      serverMetadata: input.serverMetadata ?? {},
      length,
      offset: 0,
      createdAt: now,
      lastWrite: now,
      finishedAt: null,
      duration: null,
      expiresAt: null,
      concat: null
    }
    const dataPath = path.join(this.directory, record.id)
    const handle = await open(dataPath, 'wx', 0o644)
    try {
      if (length !== null && length > 0 && this.options.preallocate) await reserve(handle.fd, this.directory, length)
    } catch (error) {
      await handle.close()
      await unlink(dataPath)
      throw isDiskFull(error) ? new FST_TUS_INSUFFICIENT_STORAGE() : error
    }
    await handle.close()
    try {
      // The directory fsync in writeRecord also makes the new data file's name durable.
      await writeRecord(this.uploads, record, this.options.fsync)
    } catch (error) {
      await unlink(dataPath)
      throw isDiskFull(error) ? new FST_TUS_INSUFFICIENT_STORAGE() : error
    }
    if (length === 0) await this.finish(record)
    return record
  }

  async get (id: string): Promise<UploadRecord> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    // In progress first: a finishing upload has its completed record before it loses this one.
    const record = await readRecord(this.directory, id) ?? await readRecord(this.completedDir, id)
    if (record === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    return record
  }

  async write (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    const dataPath = path.join(this.directory, id)
    let handle: FileHandle
    try {
      handle = await open(dataPath, 'r+')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      return await this.writeFinished(id, source, input)
    }
    let release = (): void => {}
    try {
      const writer = await this.lock(handle, dataPath, source)
      release = writer.release
      const record = await readRecord(this.directory, id)
      // No record beside the data: it was finished (and moved) while we waited, or never created.
      if (record === undefined) return await this.writeFinished(id, source, input)
      return await this.writeLocked(handle, record, source, input, writer)
    } catch (error) {
      throw isDiskFull(error) ? new FST_TUS_INSUFFICIENT_STORAGE() : error
    } finally {
      await handle.close()
      release()
    }
  }

  private async lock (handle: FileHandle, dataPath: string, source: Readable | null): Promise<{ release: () => void, streaming: (on: boolean) => void }> {
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

  private async writeLocked (
    handle: FileHandle,
    record: UploadRecord,
    source: Readable | null,
    input: WriteUploadInput,
    writer: { streaming: (on: boolean) => void }
  ): Promise<WriteUploadResult> {
    if (input.offset !== record.offset) throw new FST_TUS_OFFSET_MISMATCH(input.offset, record.offset)
    const lengthChanged = this.applyLength(record, input.length)
    const { limit, overLimit } = this.limitOf(record, input.maxBytes)
    if (input.contentLength !== undefined && input.contentLength > limit) throw overLimit()

    const start = record.offset
    const checkpoints = new Checkpoints(this.checkpointBytes, async (written) => {
      if (this.options.fsync) await handle.datasync()
      const checkpoint = { ...record, offset: start + written, lastWrite: new Date().toISOString() }
      await writeRecord(this.uploads, checkpoint, this.options.fsync)
      input.onProgress?.(checkpoint)
    })
    const sink = new UploadSink(handle.fd, start, limit, overLimit, (written) => checkpoints.reached(written))
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

    // Whatever ended the stream, the bytes that arrived are made durable and recorded.
    let written = sink.written
    if (isDiskFull(streamError) && written > 0) {
      // The record needs room of its own on the full disk: give back the last bytes of data.
      written = Math.max(0, written - RECORD_ROOM)
      await handle.truncate(start + written)
    }
    await checkpoints.settled()
    if (written > 0 || lengthChanged) {
      if (this.options.fsync && written > 0) await handle.datasync()
      record.offset += written
      record.lastWrite = new Date().toISOString()
      await writeRecord(this.uploads, record, this.options.fsync)
      input.onProgress?.({ ...record })
    }
    const finished = record.length === record.offset
    if (finished) await this.finish(record)
    if (streamError !== undefined) throw this.streamFailure(streamError)
    return { record, written, finished }
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

  // A write to an upload that is already finished (or gone): only a matching, empty request succeeds.
  private async writeFinished (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult> {
    const record = await readRecord(this.completedDir, id)
    if (record === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    if (input.offset !== record.offset) throw new FST_TUS_OFFSET_MISMATCH(input.offset, record.offset)
    const overLimit = (): Error => new FST_TUS_UPLOAD_LENGTH_EXCEEDED(record.length)
    if (input.contentLength !== undefined && input.contentLength > 0) throw overLimit()
    // A body of unknown length: refused at its first byte, without touching any file.
    if (source !== null) await pump(source, new UploadSink(-1, 0, 0, overLimit, () => {}))
    return { record, written: 0, finished: false }
  }

  /** Hands a durable, complete upload over to completedDir, unless beforeFinish refuses it (then it is deleted). The caller holds its lock. */
  async finish (record: UploadRecord): Promise<void> {
    if (this.options.beforeFinish !== undefined) {
      try {
        await this.options.beforeFinish({ ...record })
      } catch (error) {
        await this.removeFiles(this.directory, record.id)
        throw error
      }
    }
    await this.handOver(record)
  }

  /** Deletes an upload's record, then its data (a record never names missing data for long), durably. */
  async removeFiles (directory: string, id: string): Promise<boolean> {
    const removed = await unlinkIfPresent(path.join(directory, recordName(id)))
    await unlinkIfPresent(path.join(directory, id))
    if (this.options.fsync) await (directory === this.completedDir ? this.completed : this.uploads).sync()
    return removed
  }

  // Hand-over: data to completedDir first, then its record, then the in-progress
  // record goes; at every instant one record names the upload and its data exists.
  private async handOver (record: UploadRecord): Promise<void> {
    stampFinished(record)
    await rename(path.join(this.directory, record.id), path.join(this.completedDir, record.id))
    if (this.options.fsync) await this.completed.sync()
    await this.recordHandOver(record)
  }

  private async recordHandOver (record: UploadRecord): Promise<void> {
    await writeRecord(this.completed, record, this.options.fsync)
    await unlinkIfPresent(path.join(this.directory, recordName(record.id)))
    if (this.options.fsync) await this.uploads.sync()
  }

  /** Ends a hand-over cut short after its data reached completedDir. The caller holds the lock; `record` becomes the finished record. */
  async completeHandOver (record: UploadRecord): Promise<void> {
    const finished = await readRecord(this.completedDir, record.id)
    if (finished === undefined) stampFinished(record)
    else Object.assign(record, finished)
    await this.recordHandOver(record)
  }
}

function stampFinished (record: UploadRecord): void {
  const finishedAt = new Date()
  record.finishedAt = finishedAt.toISOString()
  record.duration = finishedAt.getTime() - Date.parse(record.createdAt)
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

// An upload whose creation request carries its data, perhaps all of it. When
// the body is the whole upload, no record of it exists while the body streams
// (nobody but this request knows its id, and without its URL no client could
// resume it): when the body completes it, its data is made durable and it is
// handed over with one record; otherwise it becomes an ordinary upload at the
// offset the body reached. Any other body is an ordinary write after creation.
import { close, closeSync, fdatasync, ftruncate, open, openSync, renameSync } from 'node:fs'
import { rename } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import type { CreateUploadInput, UploadRecord, WriteUploadInput, WriteUploadResult } from '../../types/index'
import { FST_TUS_MAX_SIZE_EXCEEDED } from '../errors'
import { ChecksumVerifier } from './checksum'
import type { StoreContext } from './context'
import type { Creation } from './create'
import { unlinkIfPresent } from './files'
import type { HandOver } from './finish'
import { RECORD_ROOM, isDiskFull, limitOf, storageError, streamFailure, type BodyLimit } from './limits'
import { pump } from './pump'
import { writeRecord } from './record'
import { UploadSink } from './sink'
import { track } from './takeover'
import type { BodyWriting } from './write'

export interface CreatedCallback {
  /** Runs once the new upload's record is persisted, before the result (or the failure) is known to the caller. */
  onCreated?: (record: UploadRecord) => Promise<void>
}

type WriteInput = WriteUploadInput & CreatedCallback

const openFile = promisify(open)
const closeFile = promisify(close)
const datasync = promisify(fdatasync)
const truncate = promisify(ftruncate)
// The data file's small steps are taken in place, as a record's are: a trip through the
// thread pool costs more than they do (a tenth of the uploads per second, 64 KiB each, fsync
// off). Creating its name and renaming it only while nothing here fsyncs (both wait for the
// journal other requests' fsyncs keep committing); closing it when its bytes are durable or
// few (a network filesystem writes back what is not on close).
const IN_PLACE_CLOSE = 1024 * 1024

export class CreationWithData {
  constructor (
    private readonly store: StoreContext,
    private readonly creation: Creation,
    private readonly bodies: BodyWriting,
    private readonly handOver: HandOver
  ) {}

  async createWithData (input: CreateUploadInput, source: Readable, write: WriteInput): Promise<WriteUploadResult> {
    const { store } = this
    const { length } = input
    // The whole upload may be in this body: then it goes straight to completedDir.
    const whole = input.concat === undefined && length !== null && length > 0 && (write.contentLength ?? length) === length
    if (!whole) {
      const record = await this.creation.create(input, true)
      await write.onCreated?.(record)
      return await this.bodies.write(record.id, source, write)
    }
    if (length > store.options.maxSize) throw new FST_TUS_MAX_SIZE_EXCEEDED(store.options.maxSize)
    const record = this.creation.newRecord(input, length)
    const limit = limitOf(record, store.options.maxSize, write.maxBytes)
    if (write.contentLength !== undefined && write.contentLength > limit.limit) throw limit.overLimit()
    // Written under a hidden name in completedDir, so that a whole upload takes its place there with one rename.
    const dataPath = path.join(store.completedDir, `.${record.id}.data.tmp`)
    const { fsync } = store.options
    const fd = fsync ? await openFile(dataPath, 'wx', 0o644) : openSync(dataPath, 'wx', 0o644)
    try {
      return await this.writeWhole(fd, dataPath, record, source, write, limit)
    } catch (error) {
      throw storageError(error)
    } finally {
      if (fsync || length <= IN_PLACE_CLOSE) closeSync(fd)
      else await closeFile(fd)
    }
  }

  private async writeWhole (fd: number, dataPath: string, record: UploadRecord, source: Readable, write: WriteInput, { limit, overLimit }: BodyLimit): Promise<WriteUploadResult> {
    const verifier = write.checksum !== undefined ? new ChecksumVerifier(write.checksum) : undefined
    const sink = new UploadSink(fd, 0, limit, overLimit, () => {}, verifier)
    let streamError: unknown
    const writer = track(this.store, dataPath, source)
    writer.streaming(true)
    try {
      await pump(source, sink)
      verifier?.verify()
    } catch (error) {
      streamError = error
    } finally {
      writer.streaming(false)
      writer.release()
    }
    await sink.idle()
    // A checksummed body counts only whole and verified.
    let written = verifier !== undefined && streamError !== undefined ? 0 : sink.written
    if (written !== sink.written) await truncate(fd, 0)
    if (isDiskFull(streamError)) {
      written = Math.max(0, written - RECORD_ROOM)
      await truncate(fd, written)
    }
    const durable = this.store.options.fsync && written > 0 ? datasync(fd) : undefined
    record.offset = written
    record.lastWrite = new Date().toISOString()
    // Whole, even if the request then failed (bytes past the length, an abort after the last byte).
    const finished = written === record.length
    if (finished) {
      await this.handOverWhole(dataPath, record, write, durable)
    } else {
      await durable
      await this.keepInProgress(fd, dataPath, record, write)
    }
    if (streamError !== undefined) throw streamFailure(streamError)
    return { record, written, finished }
  }

  // `durable`: the data's fsync, under way.
  private async handOverWhole (dataPath: string, record: UploadRecord, write: WriteInput, durable: Promise<void> | undefined): Promise<void> {
    const { handOver, store } = this
    let placed: Promise<void> | undefined
    try {
      if (handOver.mayRefuse()) {
        // The hook sees the last byte durable. No in-progress record to commit: the data's name needs no fsync of its own before the record's.
        await durable
        await handOver.prepareRenamed(record, dataPath)
      } else {
        // Nothing may refuse: the record is written and fsynced while the data is, and the data
        // takes its name once durable, before the record takes its own (see writeRecord).
        await handOver.prepare(record, async () => {})
        const completedPath = path.join(store.completedDir, record.id)
        placed = durable === undefined ? Promise.resolve(renameSync(dataPath, completedPath)) : durable.then(async () => await rename(dataPath, completedPath))
        // Settled however the record's write goes: the catch below must not race the rename.
        placed.catch(() => {})
      }
      // One durable record, in completedDir; its directory fsync also makes the data's name there durable.
      await writeRecord(store.completed, record, store.options.fsync, store.options.fsync, placed)
    } catch (error) {
      await placed?.catch(() => {})
      await unlinkIfPresent(dataPath)
      throw error
    }
    await write.onCreated?.(record)
    write.onProgress?.({ ...record })
    await write.onHandedOver?.(record)
  }

  // Short of whole: an ordinary upload, its data where uploads in progress live.
  private async keepInProgress (fd: number, dataPath: string, record: UploadRecord, write: WriteInput): Promise<void> {
    const { store } = this
    let current = dataPath
    try {
      await rename(dataPath, path.join(store.directory, record.id))
      current = path.join(store.directory, record.id)
      // Its bytes arrived: over the budget it is kept, unreserved.
      if (store.options.preallocate && record.offset < record.length!) await store.reservations.preallocate(fd, record, true)
      await writeRecord(store.uploads, record, store.options.fsync)
    } catch (error) {
      await unlinkIfPresent(current)
      throw error
    }
    await write.onCreated?.(record)
    if (record.offset > 0) write.onProgress?.({ ...record })
  }
}

// Writing a body into an upload in progress: under its lock (taking over from a
// stale writer of this process), from the recorded offset, with checkpoints on
// long bodies; whatever ends the stream, the bytes that arrived are made durable
// and recorded, and the last byte hands the upload over.
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import type { UploadRecord, WriteUploadInput, WriteUploadResult } from '../../types/index'
import { FST_TUS_CONCAT_FINAL_PATCH, FST_TUS_OFFSET_MISMATCH, FST_TUS_UPLOAD_EXPIRED, FST_TUS_UPLOAD_LENGTH_EXCEEDED, FST_TUS_UPLOAD_NOT_FOUND } from '../errors'
import { ChecksumVerifier } from './checksum'
import { Checkpoints } from './checkpoints'
import { isFinal } from './concat'
import type { StoreContext } from './context'
import { openIfPresent } from './files'
import type { HandOver } from './finish'
import { isUploadId } from './ids'
import { RECORD_ROOM, applyLength, isDiskFull, limitOf, storageError, streamFailure } from './limits'
import { pump } from './pump'
import { readRecord, writeRecord } from './record'
import { UploadSink } from './sink'
import { reserve } from './space'
import { takeLock, type Writer } from './takeover'
import { faultAt } from './fault'

/** Tells the write's caller of every upload it handed over. */
export async function tellHandedOver (records: UploadRecord[], input: WriteUploadInput): Promise<void> {
  for (const record of records) await input.onHandedOver?.(record)
}

interface Streamed {
  written: number
  error: unknown
}

export class BodyWriting {
  constructor (private readonly store: StoreContext, private readonly handOver: HandOver) {}

  async write (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult> {
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    const { store } = this
    const dataPath = path.join(store.directory, id)
    const handle = await openIfPresent(dataPath, 'r+')
    if (handle === undefined) return await this.writeFinished(id, source, input)
    let release = (): void => {}
    try {
      const writer = await takeLock(handle, dataPath, source, store)
      release = writer.release
      const record = await readRecord(store.directory, id)
      // No record beside the data: it was handed over while we waited for the lock.
      if (record === undefined) return await this.writeFinished(id, source, input)
      return await this.writeLocked(handle, record, source, input, writer)
    } catch (error) {
      throw storageError(error)
    } finally {
      await handle.close()
      release()
      if (store.unnamed.delete(id) && store.options.fsync) await store.uploads.sync()
    }
  }

  private async writeLocked (handle: FileHandle, record: UploadRecord, source: Readable | null, input: WriteUploadInput, writer: Writer): Promise<WriteUploadResult> {
    if (isFinal(record)) throw new FST_TUS_CONCAT_FINAL_PATCH()
    if (this.store.isExpired(record, Date.now())) throw new FST_TUS_UPLOAD_EXPIRED()
    if (input.offset !== record.offset) throw new FST_TUS_OFFSET_MISMATCH(input.offset, record.offset)
    if (record.finishedAt !== null) {
      // Complete but not handed over (a crash, or a partial waiting for its final): an empty PATCH takes it up again.
      await tellHandedOver(await this.handOver.complete(record), input)
      return { record, written: 0, finished: true }
    }
    await this.store.reservations.resume(handle, record)
    const lengthChanged = applyLength(record, input.length, this.store.options.maxSize)
    const start = record.offset
    const streamed = await this.stream(handle, record, source, input, writer)
    const written = streamed.written
    const finished = record.length === start + written
    if (record.reserved === true) this.store.reservations.give(written)
    if (written > 0 || lengthChanged) await this.recordWritten(handle, record, written, finished, input)
    if (streamed.error !== undefined) throw streamFailure(streamed.error)
    return { record, written, finished }
  }

  // The body into the data file from the recorded offset; a body that cannot count is undone here.
  private async stream (handle: FileHandle, record: UploadRecord, source: Readable | null, input: WriteUploadInput, writer: Writer): Promise<Streamed> {
    const { limit, overLimit } = limitOf(record, this.store.options.maxSize, input.maxBytes)
    if (input.contentLength !== undefined && input.contentLength > limit) throw overLimit()
    const start = record.offset
    const verifier = input.checksum !== undefined ? new ChecksumVerifier(input.checksum) : undefined
    // A checksummed body counts only once verified whole: no offset is recorded before its end.
    const checkpoints = new Checkpoints(verifier === undefined ? this.store.checkpointBytes : Infinity, (written) => this.checkpoint(handle, record, start + written, input))
    // No checkpoint at the very end: the final record follows at once.
    const sink = new UploadSink(handle.fd, start, limit, overLimit, (written) => { if (written < limit) checkpoints.reached(written) }, verifier)
    let error: unknown
    if (source !== null) {
      writer.streaming(true)
      try {
        await pump(source, sink)
      } catch (failure) {
        error = failure
      }
      writer.streaming(false)
      await sink.idle()
    }
    if (verifier !== undefined) {
      if (error === undefined) {
        try {
          verifier.verify()
        } catch (failure) {
          error = failure
        }
      }
      if (error !== undefined) {
        await this.discard(handle, record, start)
        throw streamFailure(error)
      }
    }
    let written = sink.written
    if (isDiskFull(error) && written > 0) {
      // The record needs room of its own on the full disk: give back the last bytes of data.
      written = Math.max(0, written - RECORD_ROOM)
      await handle.truncate(start + written)
    }
    await checkpoints.settled()
    return { written, error }
  }

  private async checkpoint (handle: FileHandle, record: UploadRecord, offset: number, input: WriteUploadInput): Promise<void> {
    const { store } = this
    if (store.options.fsync) await handle.datasync()
    const now = Date.now()
    const checkpoint = { ...record, offset, lastWrite: new Date(now).toISOString(), expiresAt: store.expiryFrom(now) }
    await writeRecord(store.uploads, checkpoint, store.options.fsync)
    input.onProgress?.(checkpoint)
  }

  // The bytes that arrived, durable and recorded; the last byte hands the upload over.
  private async recordWritten (handle: FileHandle, record: UploadRecord, written: number, finished: boolean, input: WriteUploadInput): Promise<void> {
    const { store } = this
    let dataSynced = store.options.fsync && written > 0 ? handle.datasync() : undefined
    dataSynced?.catch(() => {}) // awaited below; never an unhandled rejection meanwhile
    const now = Date.now()
    record.offset += written
    record.lastWrite = new Date(now).toISOString()
    record.expiresAt = store.expiryFrom(now)
    if (finished) {
      // The last byte: tus:preFinish sees it durable, and the record that says
      // finished is also the one that commits the hand-over.
      await dataSynced
      dataSynced = undefined
      await this.handOver.prepare(record)
    }
    await writeRecord(store.uploads, record, store.options.fsync, true, dataSynced)
    if (finished) faultAt('finish:committed')
    store.unnamed.delete(record.id)
    input.onProgress?.({ ...record })
    if (finished) await tellHandedOver(await this.handOver.afterFinish(record), input)
  }

  // A body that cannot count (its checksum failed, or could not be checked):
  // the file goes back to what it was, preallocation included.
  private async discard (handle: FileHandle, record: UploadRecord, start: number): Promise<void> {
    await handle.truncate(start)
    if (this.store.options.preallocate && record.length !== null && record.length > start) await reserve(handle.fd, this.store.directory, record.length)
  }

  // A write to an upload that is already handed over (or gone): only a matching, empty request succeeds.
  private async writeFinished (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult> {
    const record = await readRecord(this.store.completedDir, id)
    if (record === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    if (isFinal(record)) throw new FST_TUS_CONCAT_FINAL_PATCH()
    if (input.offset !== record.offset) throw new FST_TUS_OFFSET_MISMATCH(input.offset, record.offset)
    const overLimit = (): Error => new FST_TUS_UPLOAD_LENGTH_EXCEEDED(record.length)
    if (input.contentLength !== undefined && input.contentLength > 0) throw overLimit()
    // A body of unknown length: refused at its first byte, without touching any file.
    if (source !== null) await pump(source, new UploadSink(-1, 0, 0, overLimit, () => {}))
    return { record, written: 0, finished: true }
  }
}

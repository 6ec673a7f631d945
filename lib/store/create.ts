// Creating an upload: its record, an empty data file (preallocated to the
// length when known), and for a final upload the links its partials follow.
import { open, unlink } from 'node:fs/promises'
import path from 'node:path'
import type { CreateUploadInput, UploadRecord } from '../../types/index'
import { FST_TUS_MAX_SIZE_EXCEEDED } from '../errors'
import type { StoreContext } from './context'
import type { HandOver } from './finish'
import { newUploadId } from './ids'
import { storageError } from './limits'
import { writeRecord } from './record'

export class Creation {
  constructor (private readonly store: StoreContext, private readonly handOver: HandOver) {}

  /** With `withData`, the write that follows in the same request makes the new names durable (and answers). */
  async create (input: CreateUploadInput, withData = false): Promise<UploadRecord> {
    const { store } = this
    const { concatenation } = this.handOver
    const partials = input.concat !== undefined && 'final' in input.concat
      ? await concatenation.partials(input.concat.final, input.allowUnfinishedPartials === true)
      : undefined
    const length = partials !== undefined ? partials.reduce((sum, partial) => sum + partial.length!, 0) : input.length
    if (length !== null && length > store.options.maxSize) throw new FST_TUS_MAX_SIZE_EXCEEDED(store.options.maxSize)
    const record = this.newRecord(input, length)
    const dataPath = path.join(store.directory, record.id)
    const handle = await open(dataPath, 'wx', 0o644)
    try {
      if (length !== null && length > 0 && store.options.preallocate) await store.reservations.preallocate(handle.fd, record, false)
      // The directory fsync in writeRecord also makes the new data file's name durable.
      await writeRecord(store.uploads, record, store.options.fsync, !withData)
      if (withData) store.unnamed.add(record.id)
    } catch (error) {
      await unlink(dataPath)
      throw storageError(error)
    } finally {
      await handle.close()
    }
    if (partials !== undefined) return await concatenation.created(record, partials)
    // Nobody else knows the id yet: no lock needed to finish an empty upload.
    if (length === 0) await this.handOver.complete(record)
    return record
  }

  newRecord (input: CreateUploadInput, length: number | null): UploadRecord {
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
      expiresAt: this.store.expiryFrom(now),
      concat: input.concat ?? null
    }
  }
}

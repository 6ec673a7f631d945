// Concatenation: a final upload is the partial uploads' data, in order, copied
// into its own data file once every partial is finished. Assembling runs under
// the final's lock, waited for rather than tried, so that of two partials
// finishing at once (in two processes), the second sees the first's work.
import { createReadStream } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import path from 'node:path'
import type { UploadRecord } from '../../types/index'
import { FST_TUS_INVALID_CONCAT, FST_TUS_UPLOAD_EXPIRED, FST_TUS_UPLOAD_NOT_FOUND } from '../errors'
import type { StoreContext } from './context'
import { openIfPresent, unlinkIfPresent } from './files'
import { isUploadId } from './ids'
import { lock } from './lock'
import { pump } from './pump'
import { readRecord } from './record'
import { UploadSink } from './sink'
import { faultAt } from './fault'

export const isPartial = (record: UploadRecord): boolean => record.concat !== null && 'partial' in record.concat
export const isFinal = (record: UploadRecord): boolean => record.concat !== null && 'final' in record.concat

/** `<partial id>.final` holds the id of the final upload waiting for that partial. */
export const linkName = (partialId: string): string => `${partialId}.final`

/** Completes an upload whose last byte is recorded (see HandOver.complete); resolves with the uploads handed over. */
export type Complete = (record: UploadRecord) => Promise<UploadRecord[]>

export class Concatenation {
  constructor (private readonly store: StoreContext, private readonly complete: Complete) {}

  /** The partial uploads a final upload will be made of, checked. */
  async partials (ids: string[], allowUnfinished: boolean): Promise<UploadRecord[]> {
    const now = Date.now()
    return await Promise.all(ids.map(async (id) => {
      const record = await readRecord(this.store.directory, id)
      if (record === undefined) {
        // Partial uploads are never handed over: one found there is an upload of another kind.
        if (await readRecord(this.store.completedDir, id) !== undefined) throw new FST_TUS_INVALID_CONCAT(`${id} is not a partial upload`)
        throw new FST_TUS_UPLOAD_NOT_FOUND()
      }
      if (!isPartial(record)) throw new FST_TUS_INVALID_CONCAT(`${id} is not a partial upload`)
      if (this.store.isExpired(record, now)) throw new FST_TUS_UPLOAD_EXPIRED()
      if (record.length === null) throw new FST_TUS_INVALID_CONCAT(`partial upload ${id} has no length yet`)
      if (!allowUnfinished && record.finishedAt === null) throw new FST_TUS_INVALID_CONCAT(`partial upload ${id} is not finished`)
      return record
    }))
  }

  /** A final upload was created: its unfinished partials learn of it, and it is assembled if none is left. */
  async created (final: UploadRecord, partials: UploadRecord[]): Promise<UploadRecord> {
    const waiting = partials.filter((partial) => partial.finishedAt === null)
    await Promise.all(waiting.map((partial) => this.writeLink(partial.id, final.id)))
    if (waiting.length > 0 && this.store.options.fsync) await this.store.uploads.sync()
    // Always tried: a partial may have finished before its link existed.
    return await this.assemble(final.id) ?? final
  }

  // The link's content is durable before its name can be (by this directory fsync or another
  // request's): a power cut never leaves an empty link that names no final.
  private async writeLink (partialId: string, finalId: string): Promise<void> {
    const handle = await open(path.join(this.store.directory, linkName(partialId)), 'w')
    try {
      await handle.writeFile(finalId)
      if (this.store.options.fsync) await handle.datasync()
    } finally {
      await handle.close()
    }
  }

  /** A partial upload has its last byte: assemble the final waiting for it, if any. */
  async partialFinished (partial: UploadRecord): Promise<UploadRecord[]> {
    const finalId = await readFile(path.join(this.store.directory, linkName(partial.id)), 'utf8').catch(() => undefined)
    // Without fsync, a power cut may leave a link empty: the janitor finishes what it cannot.
    if (finalId === undefined || !isUploadId(finalId)) return []
    const final = await this.assemble(finalId)
    return final === undefined ? [] : [final]
  }

  private async removePartials (partials: UploadRecord[]): Promise<void> {
    for (const partial of partials) {
      await this.store.removeFiles(this.store.directory, partial.id)
      await this.unlinked(partial.id)
    }
  }

  /** A partial upload was deleted: no final waits for it any more. */
  async unlinked (partialId: string): Promise<void> {
    await unlinkIfPresent(path.join(this.store.directory, linkName(partialId)))
  }

  /** Assembles and hands over the final upload if all its partials are finished; resolves with it when this call handed it over. */
  async assemble (finalId: string): Promise<UploadRecord | undefined> {
    const { store } = this
    const handle = await openIfPresent(path.join(store.directory, finalId), 'r+')
    if (handle === undefined) return undefined // already handed over (or deleted)
    try {
      await lock(handle.fd)
      const final = await readRecord(store.directory, finalId)
      if (final === undefined || final.concat === null || !('final' in final.concat)) return undefined
      // Taken up again after a crash between the finished record and the hand-over.
      if (final.finishedAt !== null) return (await this.complete(final))[0]
      const partials = await Promise.all(final.concat.final.map((id) => readRecord(store.directory, id)))
      if (partials.some((partial) => partial?.finishedAt == null)) return undefined
      let position = 0
      for (const partial of partials as UploadRecord[]) {
        await copyInto(handle.fd, position, path.join(store.directory, partial.id), partial.length!)
        position += partial.length!
      }
      if (store.options.fsync) await handle.datasync()
      faultAt('concat:assembled')
      final.offset = position
      final.lastWrite = new Date().toISOString()
      let handedOver: UploadRecord[]
      try {
        handedOver = await this.complete(final)
      } catch (error) {
        // Refused by tus:preFinish (the final is gone): its partials go with it. Any other failure keeps them.
        if (await readRecord(store.directory, finalId) === undefined) await this.removePartials(partials as UploadRecord[])
        throw error
      }
      faultAt('concat:handed-over')
      await this.removePartials(partials as UploadRecord[])
      return handedOver[0]
    } finally {
      await handle.close()
    }
  }
}

async function copyInto (fd: number, position: number, source: string, length: number): Promise<void> {
  if (length === 0) return
  const tooLong = (): Error => new FST_TUS_INVALID_CONCAT('a partial upload is longer than its length')
  await pump(createReadStream(source, { start: 0, end: length - 1 }), new UploadSink(fd, position, length, tooLong, () => {}))
}

// Finishing and hand-over: once an upload's last byte is durable, the hook may
// still refuse it; otherwise its data gets a durable name in completedDir, its
// record follows, and the in-progress files go. A partial upload instead waits
// for its final, which concatenation assembles and hands over the same way.
import { link, rename, stat } from 'node:fs/promises'
import path from 'node:path'
import type { UploadRecord } from '../../types/index'
import { Concatenation, isPartial } from './concat'
import type { StoreContext } from './context'
import { unlinkIfPresent } from './files'
import { readRecord, recordName, writeRecord } from './record'
import { faultAt } from './fault'

export class HandOver {
  readonly concatenation: Concatenation

  constructor (private readonly store: StoreContext) {
    this.concatenation = new Concatenation(store, (record) => this.complete(record))
  }

  /**
   * The upload's last byte is durable and recorded: a partial waits for its
   * final, anything else is handed over. Resolves with the uploads handed over.
   * The caller holds the upload's lock, or is its only user.
   */
  async complete (record: UploadRecord): Promise<UploadRecord[]> {
    if (record.finishedAt === null) {
      await this.prepare(record)
      await writeRecord(this.store.uploads, record, this.store.options.fsync)
      faultAt('finish:committed')
    }
    return await this.afterFinish(record)
  }

  /**
   * Before the record that says "finished" is written: the hook may still refuse
   * (the upload is then deleted), and the data gets its durable name in completedDir.
   */
  async prepare (record: UploadRecord, placeData = (): Promise<void> => this.linkIntoCompleted(record)): Promise<void> {
    if (!isPartial(record)) {
      if (this.mayRefuse()) {
        try {
          await this.store.options.beforeFinish!({ ...record })
        } catch (error) {
          await this.store.removeFiles(this.store.directory, record.id)
          throw error
        }
      }
      await placeData()
    }
    const finishedAt = Date.now()
    delete record.reserved // nothing is left to write
    record.finishedAt = new Date(finishedAt).toISOString()
    record.duration = finishedAt - Date.parse(record.createdAt)
    if (!isPartial(record)) record.expiresAt = null
  }

  /** Whether beforeFinish may refuse a finish now: only then must the data be durable before the finish is prepared. */
  mayRefuse (): boolean {
    const { beforeFinish, beforeFinishActive } = this.store.options
    return beforeFinish !== undefined && (beforeFinishActive?.() ?? true)
  }

  /** Data written under `dataPath` in completedDir, hidden, takes its name there with one rename. */
  async prepareRenamed (record: UploadRecord, dataPath: string): Promise<void> {
    await this.prepare(record, () => rename(dataPath, path.join(this.store.completedDir, record.id)))
  }

  /** The record says finished: hand it over, or for a partial, assemble the final waiting for it. */
  async afterFinish (record: UploadRecord): Promise<UploadRecord[]> {
    if (isPartial(record)) return await this.concatenation.partialFinished(record)
    return await this.publish(record) ? [record] : []
  }

  // A hard link: the in-progress name stays until the completed record is durable.
  private async linkIntoCompleted (record: UploadRecord): Promise<void> {
    try {
      await link(path.join(this.store.directory, record.id), path.join(this.store.completedDir, record.id))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error // a finish taken up again
    }
    faultAt('finish:linked')
    if (this.store.options.fsync) await this.store.completed.sync()
    faultAt('finish:linked-durable')
  }

  // Hand-over, once the in-progress record says finished: the record appears in
  // completedDir (from then on a worker may claim it), then the in-progress
  // record and data name go, in that order. A directory fsync (another
  // upload's included) persists every earlier change in it, so whenever the
  // power goes, a durable record has its data under a durable name, and a
  // finished in-progress record whose completed data is gone was delivered.
  private async publish (record: UploadRecord): Promise<boolean> {
    const { directory, completedDir } = this.store
    const completedData = await stat(path.join(completedDir, record.id)).then(() => true, () => false)
    const published = completedData && await readRecord(completedDir, record.id) === undefined
    if (published) await writeRecord(this.store.completed, record, this.store.options.fsync)
    faultAt('finish:published')
    // Not fsynced: should these removals be lost, the finished record left behind
    // is recognised (its completed copy is there, or was delivered) and cleared.
    await unlinkIfPresent(path.join(directory, recordName(record.id)))
    faultAt('finish:record-removed')
    await unlinkIfPresent(path.join(directory, record.id))
    faultAt('finish:data-removed')
    return published
  }
}

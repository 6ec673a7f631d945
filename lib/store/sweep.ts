// One cleanup pass over both directories. Every change is made under the
// upload's flock (the same lock writers and claimers take), and counted only by
// the process whose unlink or rename did it, so passes in several processes at
// once neither collide nor double-count.
import { open, readdir, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { JanitorReport, UploadRecord } from '../../types/index'
import { isUploadId } from './ids'
import { unlinkIfPresent } from './files'
import type { FileStore } from './index'
import { tryLock } from './lock'
import { isFinal, isPartial, linkName, readLink } from './concat'
import { readRecord, recordName } from './record'

export interface SweepPolicy {
  now: number
  staleUploadAge: number
  completedFileAge: number
  /** Files that belong to no upload are left this long: creation writes data before its record. */
  orphanAge: number
}

export interface SweepResult {
  report: JanitorReport
  /** Uploads handed over by this pass. */
  finished: UploadRecord[]
}

const RECORD = /^(.+)\.meta$/
const LINK_SUFFIX = linkName('')

interface Listing { records: string[], data: string[], temporary: string[], links: string[] }

async function list (directory: string): Promise<Listing> {
  const listing: Listing = { records: [], data: [], temporary: [], links: [] }
  for (const name of await readdir(directory)) {
    const record = RECORD.exec(name)?.[1]
    if (record !== undefined && isUploadId(record)) listing.records.push(record)
    else if (isUploadId(name)) listing.data.push(name)
    // Release requests (.<id>.release) left by an asker that crashed go the way of temporary files.
    else if (name.startsWith('.') && (name.endsWith('.tmp') || name.endsWith('.release'))) listing.temporary.push(name)
    else if (name.endsWith(LINK_SUFFIX) && isUploadId(name.slice(0, -LINK_SUFFIX.length))) listing.links.push(name)
  }
  return listing
}

export async function sweep (store: FileStore, policy: SweepPolicy): Promise<SweepResult> {
  const result: SweepResult = {
    report: { finalized: [], stale: [], expired: [], orphanedMeta: [], orphanedData: [], oldCompleted: [], errors: [] },
    finished: []
  }
  const pass = new Pass(store, policy, result)
  const [uploads, completed] = await Promise.all([list(store.directory), list(store.completedDir)])
  await pass.each(uploads.records, (id) => pass.sweepUpload(id))
  await pass.each(completed.records, (id) => pass.sweepCompleted(id))
  for (const [directory, listing] of [[store.directory, uploads], [store.completedDir, completed]] as const) {
    const withRecord = new Set(listing.records)
    await pass.each(listing.data.filter((id) => !withRecord.has(id)), (id) => pass.sweepOrphanedData(directory, id))
    // Links of partial uploads that are gone go the way of temporary records.
    const goneLinks = listing.links.filter((name) => !withRecord.has(name.slice(0, -LINK_SUFFIX.length)))
    await pass.each([...listing.temporary, ...goneLinks], (name) => pass.sweepTemporary(directory, name))
  }
  return result
}

class Pass {
  constructor (private readonly store: FileStore, private readonly policy: SweepPolicy, private readonly result: SweepResult) {}

  private get report (): JanitorReport {
    return this.result.report
  }

  async each (items: string[], sweepOne: (item: string) => Promise<void>): Promise<void> {
    for (const item of items) {
      try {
        await sweepOne(item)
      } catch (error) {
        this.report.errors.push({ id: isUploadId(item) ? item : null, error: error as Error })
      }
    }
  }

  async sweepUpload (id: string): Promise<void> {
    const { store, policy } = this
    const handle = await openLocked(path.join(store.directory, id))
    if (handle === 'busy') return
    if (handle === 'missing') {
      // Records go before their data, so a record without data lost it to something else.
      const recordPath = path.join(store.directory, recordName(id))
      if (await this.oldEnough(recordPath) && await unlinkIfPresent(recordPath)) this.report.orphanedMeta.push(id)
      return
    }
    let assemble = false
    try {
      const record = await readRecord(store.directory, id)
      if (record === undefined) return // handed over or deleted while we took the lock
      const complete = record.length !== null && record.offset === record.length
      if (store.isExpired(record, policy.now)) {
        if (await this.remove(record)) this.report.expired.push(id)
      } else if (complete && !isPartial(record)) {
        // Its last byte is durable but it was never handed over (a crash in between): hand it over now.
        this.handedOver(await store.complete(record))
      } else if (complete && await this.finalHandedOver(id)) {
        // A partial whose final was assembled and handed over, and a crash came before the partial was removed.
        await this.remove(record)
      } else if (policy.now - Date.parse(record.lastWrite) > policy.staleUploadAge) {
        if (await this.remove(record)) this.report.stale.push(id)
      } else if (isFinal(record)) {
        assemble = true // its partials may all be finished, and a crash came before it was assembled
      }
    } finally {
      await handle.close()
    }
    // Assembling takes the final's lock itself.
    if (assemble) this.handedOver([await store.assemble(id)].filter((final) => final !== undefined))
  }

  // The final waiting for this partial (its link names it) has left the uploads directory.
  private async finalHandedOver (partialId: string): Promise<boolean> {
    const finalId = await readLink(this.store.directory, partialId)
    return finalId !== undefined && await readRecord(this.store.directory, finalId) === undefined &&
      await readRecord(this.store.completedDir, finalId) !== undefined
  }

  private handedOver (records: UploadRecord[]): void {
    for (const record of records) {
      this.report.finalized.push(record.id)
      this.result.finished.push(record)
    }
  }

  private async remove (record: UploadRecord): Promise<boolean> {
    const removed = await this.store.removeFiles(this.store.directory, record.id)
    if (isPartial(record)) await this.store.forgetPartial(record.id)
    return removed
  }

  async sweepCompleted (id: string): Promise<void> {
    const { store, policy } = this
    const handle = await openLocked(path.join(store.completedDir, id))
    if (handle === 'busy') return // claimed right now
    if (handle === 'missing') {
      // Saved by a claimer that died before releasing the record.
      const recordPath = path.join(store.completedDir, recordName(id))
      if (await this.oldEnough(recordPath) && await unlinkIfPresent(recordPath)) this.report.orphanedMeta.push(id)
      return
    }
    try {
      const record = await readRecord(store.completedDir, id)
      if (record === undefined) return
      const finishedAt = Date.parse(record.finishedAt ?? record.lastWrite)
      if (policy.now - finishedAt > policy.completedFileAge && await store.removeFiles(store.completedDir, id)) {
        this.report.oldCompleted.push(id)
      }
    } finally {
      await handle.close()
    }
  }

  async sweepOrphanedData (directory: string, id: string): Promise<void> {
    const file = path.join(directory, id)
    if (!await this.oldEnough(file)) return
    const handle = await openLocked(file)
    if (typeof handle === 'string') return
    try {
      // Its record may have appeared since the listing; data in completedDir may belong to an in-progress hand-over.
      if (await readRecord(directory, id) !== undefined) return
      if (directory !== this.store.directory && await readRecord(this.store.directory, id) !== undefined) return
      if (await unlinkIfPresent(file)) this.report.orphanedData.push(id)
    } finally {
      await handle.close()
    }
  }

  // Temporary records left by a crash mid-write; not reported, they never named an upload.
  async sweepTemporary (directory: string, name: string): Promise<void> {
    const file = path.join(directory, name)
    if (await this.oldEnough(file)) await unlinkIfPresent(file)
  }

  private async oldEnough (file: string): Promise<boolean> {
    try {
      return this.policy.now - (await stat(file)).mtimeMs > this.policy.orphanAge
    } catch {
      return false
    }
  }
}

/** The file opened and exclusively locked, or why not. */
async function openLocked (file: string): Promise<FileHandle | 'missing' | 'busy'> {
  let handle: FileHandle
  try {
    handle = await open(file, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
    throw error
  }
  try {
    if (await tryLock(handle.fd)) return handle
  } catch (error) {
    await handle.close()
    throw error
  }
  await handle.close()
  return 'busy'
}

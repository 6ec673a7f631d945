// Termination: an upload in progress is removed under its lock (a request still
// streaming into it in this process is stopped first); a finished one waiting in
// completedDir only while no worker has claimed it.
import path from 'node:path'
import type { UploadRecord } from '../../types/index'
import { FST_TUS_UPLOAD_LOCKED, FST_TUS_UPLOAD_NOT_FOUND } from '../errors'
import type { Concatenation } from './concat'
import type { StoreContext } from './context'
import { openIfPresent } from './files'
import { isUploadId } from './ids'
import { tryLock } from './lock'
import { readRecord } from './record'
import { reservedBytes } from './reservations'
import { takeLock } from './takeover'
import { faultAt } from './fault'

export async function terminate (store: StoreContext, concatenation: Concatenation, id: string): Promise<UploadRecord> {
  if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
  const inProgress = await terminateInProgress(store, concatenation, id)
  return inProgress ?? await terminateFinished(store, id)
}

async function terminateInProgress (store: StoreContext, concatenation: Concatenation, id: string): Promise<UploadRecord | undefined> {
  const dataPath = path.join(store.directory, id)
  const handle = await openIfPresent(dataPath, 'r')
  if (handle === undefined) return undefined
  let release = (): void => {}
  try {
    release = (await takeLock(handle, dataPath, null, store)).release
    const record = await readRecord(store.directory, id)
    if (record === undefined) return undefined // handed over while we waited
    faultAt('terminate:locked')
    await store.removeFiles(store.directory, id)
    store.reservations.give(reservedBytes(record))
    await concatenation.unlinked(id)
    faultAt('terminate:removed')
    return record
  } finally {
    await handle.close()
    release()
  }
}

async function terminateFinished (store: StoreContext, id: string): Promise<UploadRecord> {
  const finished = await openIfPresent(path.join(store.completedDir, id), 'r')
  if (finished === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
  try {
    if (!await tryLock(finished.fd)) throw new FST_TUS_UPLOAD_LOCKED()
    const record = await readRecord(store.completedDir, id)
    if (record === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    faultAt('terminate:locked')
    await store.removeFiles(store.completedDir, id)
    faultAt('terminate:removed')
    return record
  } finally {
    await finished.close()
  }
}

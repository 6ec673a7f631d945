// Taking an upload's lock for a write. Writers of this process are known by
// data file path: a request for an upload whose previous request is still
// streaming (the client reconnected before the server saw the old socket die)
// stops that request instead of waiting for it.
import type { FileHandle } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { FST_TUS_SUPERSEDED, FST_TUS_UPLOAD_LOCKED } from '../errors'
import { openIfPresent } from './files'
import { tryLock } from './lock'

interface ActiveWrite {
  supersede (): void
  released: Promise<void>
}

/** The holder of an upload's lock in this process. */
export interface Writer {
  release: () => void
  /** While on, a takeover destroys the source; off, the takeover waits for the release. */
  streaming: (on: boolean) => void
}

const activeWrites = new Map<string, ActiveWrite>()

/** Locks the upload's data file, superseding a writer of this process for at most `timeout` ms; FST_TUS_UPLOAD_LOCKED otherwise. */
export async function takeLock (handle: FileHandle, dataPath: string, source: Readable | null, timeout: number): Promise<Writer> {
  const deadline = Date.now() + timeout
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

/**
 * Stops a writer of this process still streaming into the data file (its client
 * came back to ask where it stands, so it has given that request up) and
 * resolves once it has let go and recorded what it wrote.
 */
export async function settleWrites (dataPath: string, timeout: number): Promise<void> {
  if (!activeWrites.has(dataPath)) return
  const handle = await openIfPresent(dataPath, 'r')
  if (handle === undefined) return
  try {
    (await takeLock(handle, dataPath, null, timeout)).release()
  } finally {
    await handle.close()
  }
}

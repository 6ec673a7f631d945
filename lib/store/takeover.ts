// Taking an upload's lock, and letting go of it when someone else needs it.
// A request for an upload whose previous request is still streaming (the client
// reconnected before the server saw the old socket die) stops that request
// instead of waiting for it: directly when it runs in this process (writers are
// known by data file path), through a release request in the shared directory
// when it runs in another process or on another machine. Either way the old
// request records the bytes it received and unlocks; 423 only when it does not
// within the takeover timeout.
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { FST_TUS_SUPERSEDED, FST_TUS_UPLOAD_LOCKED } from '../errors'
import { tryLock } from './lock'
import { Asking, type ReleaseRequests } from './release-requests'

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

/** What taking a lock needs of the store. */
export interface Takeover {
  readonly takeoverTimeout: number
  readonly releases: ReleaseRequests
}

const activeWrites = new Map<string, ActiveWrite>()

/**
 * Waits for the upload's lock, asking its holder (here or elsewhere) to let go; FST_TUS_UPLOAD_LOCKED
 * after the timeout. `shared`, for a reader: readers never wait for one another, only for a writer.
 */
export async function acquireLock (handle: FileHandle, dataPath: string, store: Takeover, shared = false): Promise<void> {
  const deadline = Date.now() + store.takeoverTimeout
  const mode = shared ? 'shnb' : 'exnb'
  let asking: Asking | undefined
  try {
    while (!await tryLock(handle.fd, mode)) {
      if (Date.now() > deadline) throw new FST_TUS_UPLOAD_LOCKED()
      const active = activeWrites.get(dataPath)
      if (active !== undefined) {
        active.supersede()
        await Promise.race([active.released, sleep(50)])
      } else {
        // Held by another process or machine (or by a short task here: a hand-over, the janitor).
        asking ??= new Asking(store.releases, path.basename(dataPath))
        await asking.wait()
      }
    }
  } finally {
    await asking?.done()
  }
}

/** Locks the upload's data file for a write, and stops that write when another request asks for the upload. */
export async function takeLock (handle: FileHandle, dataPath: string, source: Readable | null, store: Takeover): Promise<Writer> {
  await acquireLock(handle, dataPath, store)
  let streaming = false
  let release = (): void => {}
  const write: ActiveWrite = {
    supersede: () => { if (streaming) source?.destroy(new FST_TUS_SUPERSEDED()) },
    released: new Promise((resolve) => { release = resolve })
  }
  activeWrites.set(dataPath, write)
  let unhold = (): void => {}
  try {
    unhold = await store.releases.hold(path.basename(dataPath), () => write.supersede())
  } catch (error) {
    activeWrites.delete(dataPath)
    throw error
  }
  return {
    streaming: (on) => { streaming = on },
    release: () => {
      unhold()
      if (activeWrites.get(dataPath) === write) activeWrites.delete(dataPath)
      release()
    }
  }
}

// Taking an upload's lock, and letting go of it when someone else needs it.
// A request for an upload whose previous request is still streaming (the client
// reconnected before the server saw the old socket die) stops that request
// instead of waiting for it: directly when it runs in this process (writers are
// known by data file path), through a release request in the shared directory
// when it runs in another process or on another machine. Either way the old
// request records the bytes it received and unlocks; 423 only when it does not
// within the takeover timeout. The same registry lets a closing store end every
// body still streaming into it, and every one that starts streaming after, as a
// failed request: the bytes that arrived are recorded, and the request can still answer.
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { FST_TUS_SUPERSEDED, FST_TUS_UPLOAD_LOCKED } from '../errors'
import { tryLock } from './lock'
import { Asking, type ReleaseRequests } from './release-requests'

interface ActiveWrite {
  owner: object
  supersede (): void
  stop (error: Error): void
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
// Owners (stores) that are closing, with the error their bodies end with.
const stopped = new WeakMap<object, Error>()

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
  const writer = track(store, dataPath, source)
  let unhold = (): void => {}
  try {
    unhold = await store.releases.hold(path.basename(dataPath), () => activeWrites.get(dataPath)?.supersede())
  } catch (error) {
    writer.release()
    throw error
  }
  return {
    streaming: writer.streaming,
    release: () => {
      unhold()
      writer.release()
    }
  }
}

/**
 * Registers a write without a lock of its own (a creation streaming its whole
 * upload: nobody else knows its id) so that its store's stop reaches it too.
 */
export function track (owner: object, key: string, source: Readable | null): Writer {
  let streaming = false
  let release = (): void => {}
  const write: ActiveWrite = {
    owner,
    supersede: () => { if (streaming) source?.destroy(new FST_TUS_SUPERSEDED()) },
    // An error on the source, not its destruction: the socket stays open for the answer.
    stop: (error) => { if (streaming) source?.emit('error', error) },
    released: new Promise((resolve) => { release = resolve })
  }
  activeWrites.set(key, write)
  return {
    streaming: (on) => {
      streaming = on
      const error = stopped.get(owner)
      // Started after the stop: ended once the body's reader is listening.
      if (on && error !== undefined) process.nextTick(() => write.stop(error))
    },
    release: () => {
      if (activeWrites.get(key) === write) activeWrites.delete(key)
      release()
    }
  }
}

/** Ends the bodies streaming into `owner`'s uploads now and from now on, each as if its request failed with `error`. */
export function stopWrites (owner: object, error: Error): void {
  stopped.set(owner, error)
  for (const write of activeWrites.values()) {
    if (write.owner === owner) write.stop(error)
  }
}

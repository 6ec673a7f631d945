// Taking an upload's lock for a write. Writers of this process are known by
// data file path: a request for an upload whose previous request is still
// streaming (the client reconnected before the server saw the old socket die)
// stops that request instead of waiting for it. The same registry lets a
// closing store end every body still streaming into it, and every one that
// starts streaming after, as a failed request: the bytes that arrived are
// recorded, and the request can still answer.
import type { FileHandle } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { FST_TUS_SUPERSEDED, FST_TUS_UPLOAD_LOCKED } from '../errors'
import { openIfPresent } from './files'
import { tryLock } from './lock'

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

const activeWrites = new Map<string, ActiveWrite>()
// Owners (stores) that are closing, with the error their bodies end with.
const stopped = new WeakMap<object, Error>()

/** Locks the upload's data file, superseding a writer of this process for at most `timeout` ms; FST_TUS_UPLOAD_LOCKED otherwise. */
export async function takeLock (owner: object, handle: FileHandle, dataPath: string, source: Readable | null, timeout: number): Promise<Writer> {
  const deadline = Date.now() + timeout
  while (!await tryLock(handle.fd)) {
    const active = activeWrites.get(dataPath)
    if (active === undefined || Date.now() > deadline) throw new FST_TUS_UPLOAD_LOCKED()
    active.supersede()
    await Promise.race([active.released, sleep(50)])
  }
  return track(owner, dataPath, source)
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
    (await takeLock({}, handle, dataPath, null, timeout)).release()
  } finally {
    await handle.close()
  }
}

// Creations whose 104 is out but whose body may not be streaming into the store
// yet. The client knows the upload's URL from then on; should it give up on the
// request and come back (HEAD, PATCH, DELETE) before the store has locked the
// upload for that body, the old body must not start writing after the new
// request has looked or written: it is stopped, and the new request waits for
// it to be over. (Writes already streaming are stopped by the store itself.)
// In this process only, as the store's own takeover.
import type { Readable } from 'node:stream'
import { FST_TUS_SUPERSEDED } from '../errors'

interface Announced { body: Readable, over: Promise<void> }

const announced = new Map<string, Announced>()

/** Runs a creation's write of `body` as announced: stoppable by `supersedeAnnounced(id)` until it is over. */
export async function asAnnounced<T> (id: string, body: Readable, write: () => Promise<T>): Promise<T> {
  let over!: () => void
  announced.set(id, { body, over: new Promise((resolve) => { over = resolve }) })
  try {
    return await write()
  } finally {
    announced.delete(id)
    over()
  }
}

/** Stops the announced creation of upload `id`, if any, and resolves once it is over. */
export async function supersedeAnnounced (id: string): Promise<void> {
  const entry = announced.get(id)
  if (entry === undefined) return
  entry.body.destroy(new FST_TUS_SUPERSEDED())
  await entry.over
}

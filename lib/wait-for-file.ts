// Claiming finished uploads exactly once, across threads, processes and
// machines, roughly oldest first, at a cost that does not grow with the
// backlog: claims try this process's candidate list (lib/claims/candidates.ts)
// and read the whole directory only when the list yields nothing, or in the
// background once per poll interval.
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { ClaimedFile, WaitForFileOptions } from '../types/index'
import { candidatesOf, type Candidates } from './claims/candidates'
import { tryClaim } from './claims/claimed-file'
import { Waiter, abortError } from './claims/waiter'
import { FST_TUS_INVALID_OPTION } from './errors'

export { safeName } from './claims/claimed-file'

// How soon to look again when a finished upload was still locked by its writer or another claimer.
const BUSY_RETRY = 100

export async function waitForFile (completedDir: string, options: WaitForFileOptions = {}): Promise<ClaimedFile> {
  const { timeout, signal, pollInterval = 1000 } = options
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0)) {
    throw new FST_TUS_INVALID_OPTION('timeout', 'must be a number of ms, 0 or more')
  }
  if (!(Number.isFinite(pollInterval) && pollInterval > 0)) {
    throw new FST_TUS_INVALID_OPTION('pollInterval', 'must be a positive number of ms')
  }
  if (signal?.aborted === true) throw abortError(signal)
  const directory = path.resolve(completedDir)
  // A worker may start before the server that creates the directory.
  await mkdir(directory, { recursive: true })
  const candidates = candidatesOf(directory)
  const deadline = timeout === undefined ? undefined : Date.now() + timeout
  // Started only once a look found nothing: watching a directory costs the kernel a walk of its
  // cached entries (milliseconds with a big backlog), which a claim that succeeds at once never pays.
  let waiter: Waiter | undefined
  try {
    for (;;) {
      if (waiter !== undefined) waiter.changed = false
      const looked = Date.now()
      // Uploads finished on other machines reach the list by readdir only: one a poll interval, beside the claims.
      if (looked - candidates.refreshedAt >= pollInterval) void candidates.refresh().catch(() => {})
      let { claim, busy } = await claimOldest(candidates)
      if (claim === undefined && candidates.refreshedAt < looked) {
        // Nothing in the list: the directory itself says whether there is really nothing.
        await candidates.refresh()
        ;({ claim, busy } = await claimOldest(candidates))
      }
      if (claim !== undefined) return claim
      if (waiter === undefined) {
        // From now on events are seen: one more look covers a file that came before the watch.
        waiter = new Waiter(directory, timeout, deadline, signal, (name) => name === null ? Promise.resolve() : candidates.note(name))
        continue
      }
      // A change seen during the scan may be the file we missed: look again at once.
      if (!waiter.changed) await waiter.next(busy ? Math.min(pollInterval, BUSY_RETRY) : pollInterval)
    }
  } finally {
    waiter?.close()
  }
}

async function claimOldest (candidates: Candidates): Promise<{ claim?: ClaimedFile, busy: boolean }> {
  let busy = false
  for (const { id } of candidates.snapshot()) {
    const outcome = await tryClaim(candidates.directory, id)
    if (outcome === 'busy') {
      busy = true
      continue
    }
    // Taken or gone: no claimer here needs to try it again.
    candidates.forget(id)
    if (outcome !== undefined) return { claim: outcome, busy }
  }
  return { busy }
}

// Claims with a backlog: a worker that fell behind pays about the same per claim
// whatever is waiting, still takes the oldest first, skips what vanished under
// it, and two processes draining one backlog claim each upload exactly once.
import { randomUUID } from 'node:crypto'
import { closeSync, openSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import { readdir, unlink } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import path from 'node:path'
import t from 'tap'
import type { ClaimedFile } from '../../types/index'
import { waitForFile } from '../../lib/wait-for-file'
import { tempDir } from '../helpers'
import { startWorker } from '../worker-helpers'

/** `count` finished uploads written in the on-disk format, finished one second apart; their ids, oldest first. */
function backlog (dir: string, count: number): string[] {
  const ids: string[] = []
  const start = Math.floor(Date.now() / 1000) - count
  for (let i = 0; i < count; i++) {
    const id = randomUUID()
    const fd = openSync(path.join(dir, id), 'w')
    writeSync(fd, id)
    closeSync(fd)
    const at = new Date((start + i) * 1000).toISOString()
    const record = path.join(dir, `${id}.meta`)
    writeFileSync(record, JSON.stringify({ id, metadata: {}, serverMetadata: {}, length: 36, offset: 36, createdAt: at, lastWrite: at, finishedAt: at, duration: 0, expiresAt: null, concat: null }))
    utimesSync(record, start + i, start + i)
    ids.push(id)
  }
  return ids
}

/** Claims and releases `count` files one after the other; the median ms of one claim + release, and the ids in order. */
async function drain (dir: string, count: number): Promise<{ median: number, ids: string[] }> {
  const times: number[] = []
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const started = performance.now()
    const file = await waitForFile(dir, { timeout: 10_000 })
    await file.release()
    times.push(performance.now() - started)
    ids.push(file.id)
  }
  times.sort((a, b) => a - b)
  return { median: times[Math.floor(times.length / 2)], ids }
}

t.test('a claim costs about the same with 10,000 uploads waiting as with 200, oldest first', async (t) => {
  const small = await tempDir(t)
  const big = await tempDir(t)
  const smallIds = backlog(small, 200)
  const bigIds = backlog(big, 10_000)
  // The first claim of a directory reads it whole (once per process): not what is measured.
  await (await waitForFile(small, { timeout: 10_000 })).release()
  await (await waitForFile(big, { timeout: 10_000 })).release()

  const few = await drain(small, 100)
  const many = await drain(big, 100)
  t.comment(`median claim + release: ${few.median.toFixed(2)} ms with 200 waiting, ${many.median.toFixed(2)} ms with 10,000`)
  t.strictSame(few.ids, smallIds.slice(1, 101), 'oldest first with 200 waiting')
  t.strictSame(many.ids, bigIds.slice(1, 101), 'oldest first with 10,000 waiting')
  // A claim that listed and stat'ed the directory took hundreds of ms at 10,000: far outside this bound.
  t.ok(many.median < Math.max(25, 4 * few.median), `with 10,000 waiting a claim is not much dearer (${many.median.toFixed(2)} ms vs ${few.median.toFixed(2)} ms)`)
})

t.test('uploads that vanish behind the list (claimed elsewhere, deleted) are skipped; new ones are found', async (t) => {
  const dir = await tempDir(t)
  const ids = backlog(dir, 50)
  const first = await waitForFile(dir, { timeout: 10_000 })
  t.equal(first.id, ids[0], 'the oldest')
  await first.release()
  // Another machine takes the next ten: no event reaches this process's list.
  for (const id of ids.slice(1, 11)) {
    await unlink(path.join(dir, `${id}.meta`))
    await unlink(path.join(dir, id))
  }
  const next = await waitForFile(dir, { timeout: 10_000 })
  t.equal(next.id, ids[11], 'the oldest still there')
  await next.release()
  // A held claim is skipped, not lost.
  const held: ClaimedFile = await waitForFile(dir, { timeout: 10_000 })
  t.equal(held.id, ids[12])
  const after = await waitForFile(dir, { timeout: 10_000 })
  t.equal(after.id, ids[13], 'the one after a held claim')
  await after.release()
  await held.release()
  const rest = (await drain(dir, 36)).ids
  t.strictSame(rest, ids.slice(14), 'the rest, in order')
  const late = backlog(dir, 1)
  const lateFile = await waitForFile(dir, { timeout: 10_000 })
  t.equal(lateFile.id, late[0], 'an upload that came once the list was empty')
  await lateFile.release()
  t.strictSame(await readdir(dir), [])
})

t.test('two worker processes drain a backlog of 1,000: each upload claimed exactly once', async (t) => {
  const dir = await tempDir(t)
  const dest = await tempDir(t)
  const ids = backlog(dir, 1000)
  const workers = [0, 1].map(() => startWorker(t, dir, dest, 'loop', 2000))
  const exits = await Promise.all(workers.map((worker) => worker.exit))
  workers.forEach((worker, i) => t.strictSame(exits[i], { code: 0, signal: null }, `worker ${i} ended on its idle timeout: ${worker.stderr()}`))
  const claims = workers.flatMap((worker) => worker.claimed())
  t.comment(`claims per worker: ${workers.map((worker) => worker.claimed().length).join(', ')}`)
  t.equal(claims.length, 1000, "1,000 claims")
  t.strictSame([...claims].sort(), [...ids].sort(), 'each upload once')
  t.ok(workers.every((worker) => worker.claimed().length > 0), 'both workers claimed')
  t.equal((await readdir(dest)).length, 1000, "all saved")
  t.strictSame(await readdir(dir), [], 'completedDir drained')
})

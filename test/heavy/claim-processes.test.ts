// Claiming across real processes: worker processes, each looping on the
// standalone waitForFile, share one completedDir with a live server; every
// finished upload reaches exactly one of them. A worker killed while holding a
// claim lets go of it (the kernel drops its flock) and another worker gets it.
import { randomBytes } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { startServer, tempDir } from '../helpers'
import { sha256, waitFor } from '../interop-helpers'
import { finishUpload } from '../lifecycle-helpers'
import { startWorker } from '../worker-helpers'

t.test('three worker processes share 300 finished uploads: each claimed exactly once, none lost', async (t) => {
  const server = await startServer(t)
  const dest = await tempDir(t)
  // The workers wait as long as it takes (their timeout only a safety net) and stop when told.
  const workers = Array.from({ length: 3 }, () => startWorker(t, server.completedDir, dest, 'loop', 100_000))
  await Promise.all(workers.map((worker) => worker.next('ready')))

  // The uploads finish while the workers claim.
  const hashes = new Map<string, string>()
  let made = 0
  await Promise.all(Array.from({ length: 12 }, async () => {
    while (made < 300) {
      made++
      const body = randomBytes(1024 + Math.floor(Math.random() * 3072))
      hashes.set(await finishUpload(server.endpoint, body), sha256(body))
    }
  }))
  t.equal(hashes.size, 300, '300 uploads finished')
  // Every upload saved by someone: the work is done, and the workers are told so.
  await waitFor('the workers to save 300 uploads', async () => workers.flatMap((worker) => worker.saved()).length >= 300 ? true : undefined, 100_000)
  for (const worker of workers) worker.stop()

  const exits = await Promise.all(workers.map((worker) => worker.exit))
  workers.forEach((worker, i) => {
    t.strictSame(exits[i], { code: 0, signal: null }, `worker ${i} stopped when told: ${worker.stderr()}`)
    t.notOk(worker.messages.some((message) => message.event === 'error'), `worker ${i} reported no error`)
  })
  const claims = workers.flatMap((worker) => worker.claimed())
  const perWorker = workers.map((worker) => worker.claimed().length)
  t.comment(`claims per worker: ${perWorker.join(', ')}`)
  t.equal(claims.length, 300, 'exactly 300 claims')
  t.equal(new Set(claims).size, 300, 'no upload claimed twice')
  t.strictSame([...claims].sort(), [...hashes.keys()].sort(), 'every upload claimed')
  t.ok(perWorker.filter((count) => count > 0).length >= 2, 'the workers really competed')
  const saved = workers.flatMap((worker) => worker.saved())
  t.strictSame([...saved].sort(), [...claims].sort(), 'and every claim was saved')

  const files = await readdir(dest)
  t.equal(files.length, 300, '300 files in the destination')
  let intact = 0
  for (const [id, hash] of hashes) if (sha256(await readFile(path.join(dest, id))) === hash) intact++
  t.equal(intact, 300, 'each one byte-identical to its upload')
  t.strictSame(await readdir(server.completedDir), [], 'completedDir is empty')
  t.strictSame(await readdir(server.directory), [], 'so is the uploads directory')
})

t.test('a worker killed while holding a claim lets go: another worker gets the file', async (t) => {
  const server = await startServer(t)
  const dest = await tempDir(t)
  const body = randomBytes(8192)
  const id = await finishUpload(server.endpoint, body)

  const holder = startWorker(t, server.completedDir, dest, 'hold', 10_000)
  t.equal((await holder.next('claimed')).id, id, 'the first worker claims it, and holds it')

  // While it lives, nobody else gets the file.
  const prober = startWorker(t, server.completedDir, dest, 'one', 500)
  await prober.next('timeout')
  t.strictSame(prober.claimed(), [], 'another process cannot claim a held file')
  t.strictSame(await prober.exit, { code: 0, signal: null })

  const taker = startWorker(t, server.completedDir, dest, 'one', 60_000)
  await taker.next('ready')
  holder.child.kill('SIGKILL')
  t.strictSame(await holder.exit, { code: null, signal: 'SIGKILL' }, 'the holder dies without releasing')
  t.equal((await taker.next('claimed')).id, id, 'another worker claims the same file')
  t.equal((await taker.next('saved')).id, id)
  t.strictSame(await taker.exit, { code: 0, signal: null })
  t.equal(sha256(await readFile(path.join(dest, id))), sha256(body), 'and saves it whole')
  t.strictSame(await readdir(server.completedDir), [], 'nothing left in completedDir')
})

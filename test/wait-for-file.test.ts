// waitForFile: claiming finished uploads exactly once, oldest first, waiting
// for them (fs.watch and polling), timeouts and aborts that leave nothing
// running, and what a claimed file can do: save, saveRecord, release, dispose.
import { randomBytes, randomUUID } from 'node:crypto'
import { closeSync, openSync } from 'node:fs'
import { readFile, readdir, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { flockSync } from 'fs-ext'
import t from 'tap'
import type { ClaimedFile, UploadRecord } from '../types/index'
import { waitForFile } from '../lib/wait-for-file'
import { create, idOf, patch, startServer, tempDir } from './helpers'
import { sha256, waitFor } from './interop-helpers'
import { activeTimeouts, finishUpload, inotifyWatches, mountTmpfs, readRecordAt } from './lifecycle-helpers'

const KiB = 1024

/** Resolves with the value, or rejects when `promise` takes longer than `ms`. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The error a promise rejects with (or a failure when it resolves). */
async function rejection (promise: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  return await promise.then(
    (value) => { throw new Error(`expected a rejection, got ${JSON.stringify(value)}`) },
    (error: NodeJS.ErrnoException) => error
  )
}

// Timestamps come from a coarse kernel clock: uploads finished a few ms apart may share one.
const nextTimestamp = (): Promise<void> => sleep(20)

t.test('resolves with the oldest finished upload: id, name, path, record, save, saveRecord, release, asyncDispose', async (t) => {
  const server = await startServer(t)
  const body = randomBytes(3 * KiB)
  const id = await finishUpload(server.endpoint, body, { filename: 'report.pdf', kind: 'doc' })
  const file = await server.app.tus.waitForFile({ timeout: 30_000 })
  t.teardown(() => file.release())
  t.equal(file.id, id)
  t.equal(file.name, 'report.pdf', 'the client\'s filename')
  t.equal(file.path, path.join(server.completedDir, id), 'the data in completedDir')
  t.equal(sha256(await readFile(file.path)), sha256(body), 'holding the upload\'s bytes')
  t.strictSame(JSON.parse(JSON.stringify(file.record)), await readRecordAt(server.completedDir, id), 'the finished record')
  t.equal(file.record.offset, body.length)
  t.ok(file.record.finishedAt !== null, 'finishedAt is set')
  t.same(file.record.metadata, { filename: 'report.pdf', kind: 'doc' })
  for (const method of ['save', 'saveRecord', 'release'] as const) t.type(file[method], 'function', method)
  t.type(file[Symbol.asyncDispose], 'function', 'Symbol.asyncDispose')
})

t.test('name: the filename (or name) made safe for a filesystem, else the id', async (t) => {
  const server = await startServer(t)
  const dest = await tempDir(t)
  const cases: Array<[string, Record<string, string | null> | undefined, (name: string, id: string) => void]> = [
    ['a path that climbs', { filename: '../../etc/passwd' }, (name) => { t.ok(name.endsWith('passwd'), `keeps the name: ${name}`) }],
    ['backslashes', { filename: '..\\..\\boot.ini' }, (name) => { t.ok(name.endsWith('boot.ini'), `keeps the name: ${name}`) }],
    ['control characters', { filename: 'a\u0001b\nc\r\u0000d\u001b\u007f.txt' }, (name) => { t.ok(name.endsWith('.txt') && name.includes('a'), `keeps the rest: ${JSON.stringify(name)}`) }],
    ['a name key', { name: 'photo.jpg' }, (name) => { t.equal(name, 'photo.jpg') }],
    ['unicode', { filename: 'résumé 2026.pdf' }, (name) => { t.equal(name, 'résumé 2026.pdf', 'left as it is') }],
    ['an empty filename', { filename: '' }, (name, id) => { t.equal(name, id) }],
    ['a filename key without value', { filename: null }, (name, id) => { t.equal(name, id) }],
    ['dot-dot', { filename: '..' }, (name, id) => { t.equal(name, id) }],
    ['dot', { filename: '.' }, (name, id) => { t.equal(name, id) }],
    ['no metadata', undefined, (name, id) => { t.equal(name, id) }]
  ]
  for (const [what, metadata, check] of cases) {
    const id = await finishUpload(server.endpoint, Buffer.from(what), metadata)
    const file = await server.app.tus.waitForFile({ timeout: 30_000 })
    t.equal(file.id, id, `${what}: the upload just finished`)
    t.notMatch(file.name, /[/\\\u0000-\u001f\u007f]/, `${what}: no separator, no control character`)
    t.not(file.name, '')
    t.equal(path.dirname(path.join(dest, file.name)), dest, `${what}: a name that stays in the destination directory`)
    check(file.name, id)
    const saved = await file.save(path.join(dest, file.name))
    t.equal(await readFile(saved, 'utf8'), what, `${what}: saved under that name`)
    await file.release()
  }
})

t.test('oldest finished first: by finish, not by creation', async (t) => {
  const server = await startServer(t)
  const first = await create(server.endpoint, { 'upload-length': '1' })
  const second = await create(server.endpoint, { 'upload-length': '1' })
  t.equal((await patch(second, 0, 'b')).statusCode, 204)
  await nextTimestamp()
  t.equal((await patch(first, 0, 'a')).statusCode, 204)
  await nextTimestamp()
  const third = await finishUpload(server.endpoint, Buffer.from('c'))
  // Claims are held (not released) while the next is taken: each call skips what is claimed.
  const claims: ClaimedFile[] = []
  for (let i = 0; i < 3; i++) claims.push(await server.app.tus.waitForFile({ timeout: 30_000 }))
  t.strictSame(claims.map((file) => file.id), [idOf(second), idOf(first), third], 'in the order they finished')
  for (const file of claims) await file.release()
  t.strictSame(await readdir(server.completedDir), [], 'released: nothing left')
})

t.test('waits for an upload finished later and gets it at once (fs.watch, not the poll)', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '5' })
  // A poll this slow would miss the test's bounds: only a directory event can wake the wait in time.
  const waiting = server.app.tus.waitForFile({ pollInterval: 60_000, timeout: 20_000 })
  let settled = false
  void waiting.then(() => { settled = true }, () => { settled = true })
  await sleep(100) // the wait is idle on its watcher by now
  t.notOk(settled, 'nothing to claim yet: still waiting')
  t.equal((await patch(url, 0, 'hello')).statusCode, 204)
  // The poll would come after 60 s: an answer well before it is the watcher's.
  const file = await within(waiting, 20_000, 'the claim after the upload finished')
  t.equal(file.id, idOf(url))
  t.equal(await readFile(file.path, 'utf8'), 'hello')
  await file.release()
})

t.test('polling: files written straight into completedDir, and a file freed without any directory event', async (t) => {
  const completedDir = await tempDir(t)
  const staging = await tempDir(t)

  // Another writer (another machine, say) drops a finished upload in.
  const id = randomUUID()
  const now = new Date().toISOString()
  const record: UploadRecord = {
    id, metadata: { filename: 'dropped.txt' }, serverMetadata: {}, length: 7, offset: 7, createdAt: now, lastWrite: now,
    finishedAt: now, duration: 0, expiresAt: null, concat: null
  }
  const waiting = waitForFile(completedDir, { pollInterval: 50, timeout: 30_000 })
  await writeFile(path.join(staging, id), 'dropped')
  await writeFile(path.join(staging, `${id}.meta`), JSON.stringify(record))
  await rename(path.join(staging, id), path.join(completedDir, id))
  await rename(path.join(staging, `${id}.meta`), path.join(completedDir, `${id}.meta`))
  const file = await within(waiting, 20_000, 'the claim of a dropped-in file')
  t.equal(file.id, id)
  t.equal(file.name, 'dropped.txt')
  t.strictSame(JSON.parse(JSON.stringify(file.record)), record, 'its record')

  // Held by someone else (a lock of another open file), then let go: closing a
  // file is no directory event, so only looking again finds it.
  await file.release()
  const heldId = randomUUID()
  await writeFile(path.join(completedDir, heldId), 'held')
  await writeFile(path.join(completedDir, `${heldId}.meta`), JSON.stringify({ ...record, id: heldId }))
  const holder = openSync(path.join(completedDir, heldId), 'r')
  flockSync(holder, 'exnb')
  const refused = await rejection(waitForFile(completedDir, { pollInterval: 50, timeout: 300 }))
  t.equal(refused.code, 'FST_TUS_WAIT_TIMEOUT', 'a file claimed elsewhere is not claimed')
  const waitingForHeld = waitForFile(completedDir, { pollInterval: 50, timeout: 30_000 })
  await sleep(100)
  closeSync(holder) // the lock goes with the file
  const freed = await within(waitingForHeld, 20_000, 'the claim of a freed file')
  t.equal(freed.id, heldId)
  await freed.release()
  t.strictSame(await readdir(completedDir), [])
})

t.test('timeout rejects with FST_TUS_WAIT_TIMEOUT, abort with an AbortError; neither leaves a timer or a watcher', async (t) => {
  const completedDir = await tempDir(t)
  const timers = activeTimeouts()
  const watches = inotifyWatches()

  // Long enough to look at the wait while it runs, however busy the machine.
  const TIMEOUT = 2000
  const started = Date.now()
  const timingOut = waitForFile(completedDir, { timeout: TIMEOUT, pollInterval: 40 })
  await waitFor('the wait to watch the directory', async () => inotifyWatches() > watches ? true : undefined)
  const probed = Date.now() - started
  t.ok(inotifyWatches() > watches, 'while waiting it watches the directory (the probe sees watchers)')
  // Seen before the timeout, the timer must still be there.
  t.ok(activeTimeouts() > timers || probed >= TIMEOUT, 'and has timers (the probe sees timers)')
  const timeout = await rejection(timingOut)
  t.equal(timeout.code, 'FST_TUS_WAIT_TIMEOUT')
  t.ok(Date.now() - started >= TIMEOUT - 10, `not before the timeout (${Date.now() - started} ms)`)
  t.ok(Date.now() - started < 20_000, 'nor long after (it does end)')
  t.equal(inotifyWatches(), watches, 'no watcher left after a timeout')
  t.equal(activeTimeouts(), timers, 'no timer left after a timeout')

  const controller = new AbortController()
  const aborting = waitForFile(completedDir, { signal: controller.signal })
  await sleep(20)
  controller.abort(new Error('shutting down'))
  const aborted = await rejection(aborting)
  t.equal(aborted.name, 'AbortError')
  t.equal(inotifyWatches(), watches, 'no watcher left after an abort')
  t.equal(activeTimeouts(), timers, 'no timer left after an abort')

  const early = await rejection(waitForFile(completedDir, { signal: AbortSignal.abort() }))
  t.equal(early.name, 'AbortError', 'an already aborted signal rejects at once')

  // Aborted in the same tick as the call: while the wait still makes sure completedDir exists.
  const meanwhile = new AbortController()
  const startingUp = waitForFile(path.join(completedDir, 'not-yet'), { signal: meanwhile.signal })
  meanwhile.abort()
  t.equal((await within(rejection(startingUp), 20_000, 'the rejection of a wait aborted while it started')).name, 'AbortError',
    'an abort while the wait starts up is not missed')

  // AbortSignal.timeout, the idiomatic deadline.
  const deadline = await rejection(waitForFile(completedDir, { signal: AbortSignal.timeout(50) }))
  t.equal(deadline.name, 'AbortError')
  t.equal(inotifyWatches(), watches, 'still no watcher left')
  t.equal(activeTimeouts(), timers, 'still no timer left')

  // A claim that succeeds leaves nothing running either.
  const id = randomUUID()
  await writeFile(path.join(completedDir, id), 'x')
  await writeFile(path.join(completedDir, `${id}.meta`), JSON.stringify({ id, metadata: {}, length: 1, offset: 1 }))
  const file = await waitForFile(completedDir, { timeout: 5000 })
  t.equal(inotifyWatches(), watches, 'no watcher left after a claim')
  t.equal(activeTimeouts(), timers, 'no timer left after a claim')
  await file.release()
})

t.test('save moves the data by rename, once; saveRecord writes the record, once; release deletes the rest, twice is harmless', async (t) => {
  const server = await startServer(t)
  const dest = await tempDir(t)
  const body = randomBytes(64 * KiB)
  const id = await finishUpload(server.endpoint, body, { filename: 'x.bin' })
  const file = await server.app.tus.waitForFile({ timeout: 30_000 })
  const inode = (await stat(file.path)).ino

  const target = path.join(dest, 'saved.bin')
  await writeFile(target, 'an older file of that name')
  const saved = await file.save(target)
  t.equal(saved, target, 'save returns the destination')
  t.equal(file.path, target, 'path follows the data')
  t.equal(sha256(await readFile(target)), sha256(body), 'the data, replacing what was there')
  t.equal((await stat(target)).ino, inode, 'moved by rename: the same inode')
  t.strictSame(await readdir(server.completedDir), [`${id}.meta`], 'only the record is left in completedDir')
  const again = await rejection(file.save(path.join(dest, 'again.bin')))
  t.equal(again.code, 'FST_TUS_ALREADY_SAVED', 'a second save is refused')
  t.strictSame((await readdir(dest)).sort(), ['saved.bin'], 'and writes nothing')

  const recordPath = await file.saveRecord(path.join(dest, 'x.json'))
  t.equal(recordPath, path.join(dest, 'x.json'))
  t.strictSame(JSON.parse(await readFile(recordPath, 'utf8')), JSON.parse(JSON.stringify(file.record)), 'the record, as JSON')
  t.equal((await rejection(file.saveRecord(path.join(dest, 'y.json')))).code, 'FST_TUS_ALREADY_SAVED', 'a second saveRecord is refused')
  t.strictSame(await readdir(server.completedDir), [], 'both moved out')

  await file.release()
  await file.release()
  t.pass('release twice is harmless')
  t.equal((await rejection(file.save(path.join(dest, 'late.bin')))).code, 'FST_TUS_ALREADY_RELEASED', 'nothing to save after release')
  t.strictSame((await readdir(dest)).sort(), ['saved.bin', 'x.json'], 'the saved files stay')

  // release without saving deletes both files.
  await finishUpload(server.endpoint, Buffer.from('unwanted'))
  const unwanted = await server.app.tus.waitForFile({ timeout: 30_000 })
  await unwanted.release()
  t.strictSame(await readdir(server.completedDir), [], 'release deletes data and record')
})

t.test('save across filesystems copies; a copy that fails leaves no partial file and the upload is still there', async (t) => {
  const server = await startServer(t)
  const roomy = await mountTmpfs(t, 1024 * KiB)
  const cramped = await mountTmpfs(t, 64 * KiB)
  const body = randomBytes(256 * KiB)

  await finishUpload(server.endpoint, body)
  const file = await server.app.tus.waitForFile({ timeout: 30_000 })
  const source = file.path
  const target = path.join(roomy, 'copied.bin')
  t.equal(await file.save(target), target)
  t.equal(sha256(await readFile(target)), sha256(body), 'the bytes arrived on the other filesystem')
  t.strictSame(await readdir(roomy), ['copied.bin'], 'no temporary file left beside it')
  t.equal(await stat(source).then(() => 'there', () => 'gone'), 'gone', 'the source is gone: a move, not a copy')
  await file.release()

  await finishUpload(server.endpoint, body)
  const big = await server.app.tus.waitForFile({ timeout: 30_000 })
  const failed = await rejection(big.save(path.join(cramped, 'too-big.bin')))
  t.equal(failed.code, 'ENOSPC', 'the copy fails: the filesystem is full')
  t.strictSame(await readdir(cramped), [], 'no partial file, no temporary file')
  t.equal(big.path, path.join(server.completedDir, big.id), 'the claim still points at completedDir')
  t.equal(sha256(await readFile(big.path)), sha256(body), 'where the data is whole')
  const retried = path.join(roomy, 'retried.bin')
  await big.save(retried)
  t.equal(sha256(await readFile(retried)), sha256(body), 'and a second try elsewhere saves it')
  await big.release()
  t.strictSame(await readdir(server.completedDir), [])
})

t.test('await using releases the claim at the end of the block, even when it throws', async (t) => {
  const server = await startServer(t)
  const dest = await tempDir(t)
  const kept = await finishUpload(server.endpoint, Buffer.from('kept'))
  {
    await using file = await server.app.tus.waitForFile({ timeout: 30_000 })
    t.equal(file.id, kept)
    await file.save(path.join(dest, 'kept'))
  }
  t.strictSame(await readdir(server.completedDir), [], 'the record went with the claim')
  t.equal(await readFile(path.join(dest, 'kept'), 'utf8'), 'kept')

  await finishUpload(server.endpoint, Buffer.from('dropped'))
  const error = await rejection((async () => {
    await using file = await server.app.tus.waitForFile({ timeout: 30_000 })
    t.ok(file.id)
    throw new Error('the worker failed')
  })())
  t.equal(error.message, 'the worker failed')
  t.strictSame(await readdir(server.completedDir), [], 'disposed despite the error')
})

t.test('concurrent waits in one process never get the same file', async (t) => {
  const server = await startServer(t)
  // A pool of workers in one process is normal use, not a leak to warn about.
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  // Some uploads already finished, the rest finishing while the waits run.
  const before = await Promise.all(Array.from({ length: 4 }, (_, i) => finishUpload(server.endpoint, Buffer.from(`before ${i}`))))
  const waits = Array.from({ length: 12 }, () => server.app.tus.waitForFile({ timeout: 30_000, pollInterval: 100 }))
  const after = await Promise.all(Array.from({ length: 8 }, (_, i) => finishUpload(server.endpoint, Buffer.from(`after ${i}`))))
  const claims = await Promise.all(waits)
  const ids = claims.map((file) => file.id)
  t.equal(new Set(ids).size, 12, 'twelve different files')
  t.strictSame([...ids].sort(), [...before, ...after].sort(), 'exactly the finished uploads')
  t.equal((await rejection(server.app.tus.waitForFile({ timeout: 200 }))).code, 'FST_TUS_WAIT_TIMEOUT', 'held claims are not handed out again')
  await Promise.all(claims.map((file) => file.release()))
  t.strictSame(await readdir(server.completedDir), [])
  await sleep(0) // warnings are emitted on the next tick
  t.strictSame(warnings.map((warning) => `${warning.name}: ${warning.message}`), [], 'no process warning (MaxListenersExceeded on the close signal)')
})

t.test('app.close() rejects a pending app.tus.waitForFile with an AbortError', async (t) => {
  // Before the server: its store watches its directory for release requests, until it closes too.
  const watches = inotifyWatches()
  const server = await startServer(t)
  const plain = rejection(server.app.tus.waitForFile())
  const withSignal = rejection(server.app.tus.waitForFile({ signal: new AbortController().signal, timeout: 60_000 }))
  await sleep(20)
  await server.app.close()
  const [a, b] = await within(Promise.all([plain, withSignal]), 20_000, 'the rejections after close')
  t.equal(a.name, 'AbortError', 'a wait without a signal')
  t.equal(b.name, 'AbortError', 'a wait with a signal of its own')
  t.equal(inotifyWatches(), watches, 'no watcher left, the store\'s included')
  t.equal((await rejection(server.app.tus.waitForFile())).name, 'AbortError', 'a wait started after close rejects at once')
})

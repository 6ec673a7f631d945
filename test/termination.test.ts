// The termination extension: DELETE removes an upload, in progress or finished
// and unclaimed, and refuses (423) while a worker or another process holds it.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import type { UploadRecord } from '../types/index'
import { TUS, create, idOf, patch, send, startServer } from './helpers'
import { assertError, listTree, names } from './protocol-helpers'
import { PATCH_HEADERS, waitFor, waitForBytesOnDisk } from './interop-helpers'
import { streamRequest } from './raw-client'
import { encodeMetadata, finishUpload } from './lifecycle-helpers'

interface Teardown { teardown (fn: () => unknown): void }

// The server's default idle timeout, and how long lockInChild's process holds its lock: bounds on time stay well inside both.
const IDLE_TIMEOUT = 60_000
const LOCK_HELD = 60_000

/** After a DELETE: every later request for the upload is 404, and a second DELETE too. */
async function assertGone (t: tap.Test, url: string): Promise<void> {
  assertError(t, await send(url, 'HEAD', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'HEAD after DELETE', { head: true })
  assertError(t, await patch(url, 0, 'x'), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'PATCH after DELETE')
  assertError(t, await send(url, 'DELETE', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'DELETE after DELETE')
}

/**
 * Another process holding the upload's lock: flock(1) takes it, then (no fork)
 * becomes a shell that says so and sleeps. Killed at teardown, or by the caller.
 */
async function lockInChild (t: Teardown, file: string): Promise<() => Promise<void>> {
  const child = spawn('flock', ['--no-fork', '-x', file, '-c', `echo locked; exec sleep ${LOCK_HELD / 1000}`], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(kill)
  let output = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      output += text
      if (output.includes('locked')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`flock exited (${code}) before taking the lock`)))
  })
  return kill
}

t.test('DELETE of an upload in progress: 204, data and record gone, then 404', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '10' })
  t.equal((await patch(url, 0, 'hello')).statusCode, 204)
  t.strictSame(await names(server.directory), [idOf(url), `${idOf(url)}.meta`], 'data and record on disk')

  const response = await send(url, 'DELETE', TUS)
  t.equal(response.statusCode, 204)
  t.equal(response.headers['tus-resumable'], '1.0.0')
  t.equal(response.text, '', 'no body')
  t.strictSame(await names(server.directory), [], 'data and record deleted')
  t.strictSame(await names(server.completedDir), [], 'nothing handed over')
  await assertGone(t, url)
})

t.test('DELETE of a finished upload nobody claimed yet: removed from completedDir', async (t) => {
  const server = await startServer(t)
  const id = await finishUpload(server.endpoint, Buffer.from('finished'))
  const url = `${server.endpoint}/${id}`
  t.strictSame(await names(server.completedDir), [id, `${id}.meta`], 'handed over')
  const response = await send(url, 'DELETE', TUS)
  t.equal(response.statusCode, 204)
  t.equal(response.headers['tus-resumable'], '1.0.0')
  t.strictSame(await names(server.completedDir), [], 'data and record deleted from completedDir')
  await assertGone(t, url)
  await t.rejects(server.app.tus.waitForFile({ timeout: 50 }), { code: 'FST_TUS_WAIT_TIMEOUT' }, 'no worker can claim it any more')
})

t.test('DELETE of a finished upload a worker has claimed: 423 with Retry-After, the file stays', async (t) => {
  const server = await startServer(t)
  const id = await finishUpload(server.endpoint, Buffer.from('claimed'))
  const url = `${server.endpoint}/${id}`
  const file = await server.app.tus.waitForFile({ timeout: 30_000 })
  t.equal(file.id, id)
  const response = await send(url, 'DELETE', TUS)
  assertError(t, response, 423, 'FST_TUS_UPLOAD_LOCKED', 'DELETE of a claimed upload')
  t.equal(response.headers['retry-after'], '1')
  t.strictSame(await names(server.completedDir), [id, `${id}.meta`], 'the claimed files are untouched')
  await file.release()
  assertError(t, await send(url, 'DELETE', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'released (deleted) by the worker')
})

t.test('DELETE while a PATCH of this process streams into the upload: the PATCH is stopped, the upload deleted', async (t) => {
  const server = await startServer(t, { idleTimeout: IDLE_TIMEOUT })
  const length = 1024 * 1024
  const url = await create(server.endpoint, { 'upload-length': String(length) })
  const first = randomBytes(64 * 1024)
  // A body that announces a whole MiB and stops after 64 KiB, as a slow client would.
  const streaming = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(length) })
  await streaming.write(first)
  await waitForBytesOnDisk(path.join(server.directory, idOf(url)), 0, first)

  const started = Date.now()
  const response = await send(url, 'DELETE', TUS)
  const took = Date.now() - started
  t.equal(response.statusCode, 204, 'DELETE succeeds')
  // Waiting for the stalled body instead of stopping it would take the whole idle timeout.
  t.ok(took < IDLE_TIMEOUT / 2, `long before the idle timeout (took ${took} ms)`)
  const outcome = await streaming.settled
  t.not(outcome.response?.statusCode, 204, `the streaming PATCH did not succeed (${outcome.response?.statusCode ?? outcome.error?.message})`)
  t.strictSame(await names(server.directory), [], 'data and record deleted, not rewritten by the stopped PATCH')
  await assertGone(t, url)
})

t.test('DELETE while another process holds the upload lock and does not let go: 423 FST_TUS_UPLOAD_LOCKED after takeoverTimeout', async (t) => {
  const server = await startServer(t, { takeoverTimeout: 300 })
  const url = await create(server.endpoint, { 'upload-length': '10' })
  t.equal((await patch(url, 0, 'hello')).statusCode, 204)
  const before = await listTree(server.directory)
  const release = await lockInChild(t, path.join(server.directory, idOf(url)))

  const started = Date.now()
  const response = await send(url, 'DELETE', TUS)
  const waited = Date.now() - started
  assertError(t, response, 423, 'FST_TUS_UPLOAD_LOCKED', 'DELETE of a locked upload')
  t.equal(response.headers['retry-after'], '1', 'Retry-After tells the client when to try again')
  // The other process holds the lock until it is killed below: a wait past takeoverTimeout would never end.
  t.ok(waited >= 290 && waited < LOCK_HELD / 2, `refused once the holder had takeoverTimeout to let go (${waited} ms)`)
  t.strictSame(await listTree(server.directory), before, 'the upload is untouched, and the release request withdrawn')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 423, 'HEAD too waits for the holder, and is refused alike')

  // Once the other process is gone, the kernel frees its lock and DELETE works.
  await release()
  const deleted = await waitFor('the lock to be freed', async () => {
    const retry = await send(url, 'DELETE', TUS)
    return retry.statusCode === 423 ? undefined : retry
  })
  t.equal(deleted.statusCode, 204)
  t.strictSame(await names(server.directory), [])
})

t.test('tus:preTerminate may refuse (the upload stays); tus:terminated gets the record', async (t) => {
  const preTerminate: string[] = []
  const terminated: UploadRecord[] = []
  const server = await startServer(t, {
    hooks: {
      'tus:preTerminate': (_request, upload) => {
        preTerminate.push(upload.id)
        if (upload.metadata.keep !== undefined) throw Object.assign(new Error('this upload is kept'), { statusCode: 403, code: 'APP_KEEP' })
      },
      'tus:terminated': (upload) => { terminated.push(upload) }
    }
  })
  const kept = await create(server.endpoint, { 'upload-length': '10', 'upload-metadata': encodeMetadata({ keep: null }) })
  const doomed = await create(server.endpoint, { 'upload-length': '10', 'upload-metadata': encodeMetadata({ filename: 'a.txt' }) })
  t.equal((await patch(doomed, 0, 'abc')).statusCode, 204)
  const before = await listTree(server.directory)

  assertError(t, await send(kept, 'DELETE', TUS), 403, 'APP_KEEP', 'a refusing tus:preTerminate')
  t.strictSame(await listTree(server.directory), before, 'nothing deleted')
  t.equal((await send(kept, 'HEAD', TUS)).statusCode, 200, 'the refused upload is still there')
  t.strictSame(terminated, [], 'tus:terminated does not run for a refused DELETE')

  t.equal((await send(doomed, 'DELETE', TUS)).statusCode, 204)
  t.strictSame(preTerminate, [idOf(kept), idOf(doomed)], 'tus:preTerminate saw both uploads')
  t.equal(terminated.length, 1, 'tus:terminated once')
  t.match(terminated[0], { id: idOf(doomed), offset: 3, length: 10, metadata: { filename: 'a.txt' } }, 'with the last record of the upload')
  t.strictSame(await names(server.directory), [idOf(kept), `${idOf(kept)}.meta`], 'only the kept upload is left')
})

t.test('DELETE of an unknown upload: 404', async (t) => {
  const server = await startServer(t)
  assertError(t, await send(`${server.endpoint}/1b4e28ba-2fa1-4d2e-883f-0016d3cca427`, 'DELETE', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'an unknown UUID')
  assertError(t, await send(`${server.endpoint}/not-an-id`, 'DELETE', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'not an upload id')
})

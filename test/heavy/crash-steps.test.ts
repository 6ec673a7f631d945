// A crash at every step of finishing an upload, of assembling a final upload
// and of termination. A server process armed with FASTIFY_TUS_FAULT=<step>
// kills itself (SIGKILL) on reaching that step; a fresh server on the same
// directories then runs its start-up janitor pass, and: HEAD answers what was
// acknowledged, a client resumes from it, the upload is delivered exactly once
// (one waitForFile claim, the right bytes, never a second), and a terminated
// upload stays terminated.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { FAULT_STEPS, type FaultStep } from '../../lib/store/fault'
import { waitForFile } from '../../lib/wait-for-file'
import { TUS, patch, send, tempDir } from '../helpers'
import { waitFor } from '../interop-helpers'
import { startServerProcess, type ServerProcess } from '../server-process-helpers'

const KiB = 1024

interface Dirs { directory: string, completedDir: string }

const idOf = (location: unknown): string => String(location).slice(String(location).lastIndexOf('/') + 1)

async function createUpload (endpoint: string, headers: Record<string, string>): Promise<string> {
  const created = await send(endpoint, 'POST', { ...TUS, ...headers })
  if (created.statusCode !== 201) throw new Error(`creation failed: ${created.statusCode} ${created.text}`)
  return idOf(created.headers.location)
}

/** The request the armed process dies in: it gets no answer, and the process dies by SIGKILL. */
async function diesIn (t: Test, server: ServerProcess, step: FaultStep, request: () => Promise<unknown>): Promise<void> {
  const outcome = await request().then(() => 'answered', (error: Error) => error.message)
  t.not(outcome, 'answered', `the request got no answer (${outcome})`)
  t.same(await server.exit, { code: null, signal: 'SIGKILL' }, `the server killed itself at ${step}`)
}

/** Exactly one claim of the upload, with its bytes; nothing else to claim after it. */
async function deliveredOnce (t: Test, dirs: Dirs, id: string, data: Buffer): Promise<void> {
  const file = await waitForFile(dirs.completedDir, { timeout: 60_000 })
  t.equal(file.id, id, 'the upload is claimed')
  t.ok((await readFile(file.path)).equals(data), 'with its bytes')
  await file.release()
  await t.rejects(waitForFile(dirs.completedDir, { timeout: 300 }), { code: 'FST_TUS_WAIT_TIMEOUT' }, 'and never handed over a second time')
}

// Waits for the start-up janitor pass to have done what it owes: no in-progress record of the upload left.
const noInProgressRecord = (dirs: Dirs, id: string): Promise<true> =>
  waitFor('the start-up janitor pass', async () => existsSync(path.join(dirs.directory, `${id}.meta`)) ? undefined : true, 60_000)

const FINISH_STEPS = FAULT_STEPS.filter((step) => step.startsWith('finish:'))
// Before the commit point the last bytes are on disk but not recorded: HEAD says the acknowledged offset.
const COMMITTED = new Set<FaultStep>(['finish:committed', 'finish:published', 'finish:record-removed', 'finish:data-removed'])

async function scenario (t: Test, step: FaultStep, run: (armed: ServerProcess, dirs: Dirs, restart: () => Promise<ServerProcess>) => Promise<void>): Promise<void> {
  const root = await tempDir(t, 'fastify-tus-crash-')
  const dirs = { directory: path.join(root, 'uploads'), completedDir: path.join(root, 'completed') }
  const armed = await startServerProcess(t, dirs.directory, dirs.completedDir, { env: { FASTIFY_TUS_FAULT: step } })
  let restarted: ServerProcess | undefined
  await run(armed, dirs, async () => (restarted = await startServerProcess(t, dirs.directory, dirs.completedDir)))
  if (restarted !== undefined) t.same(await restarted.stop(), { code: 0, signal: null }, 'the restarted server closes cleanly')
}

t.setTimeout(600_000)
// Each scenario has its own directories and processes: several at once.
t.jobs = 4

for (const step of FINISH_STEPS) {
  t.test(`a crash at ${step}: HEAD, resume, delivered once`, (t) => scenario(t, step, async (armed, dirs, restart) => {
    const data = randomBytes(64 * KiB)
    const id = await createUpload(armed.endpoint, { 'upload-length': String(data.length) })
    t.equal((await patch(`${armed.endpoint}/${id}`, 0, data.subarray(0, 16 * KiB))).statusCode, 204, 'a first part acknowledged')
    await diesIn(t, armed, step, () => patch(`${armed.endpoint}/${id}`, 16 * KiB, data.subarray(16 * KiB)))
    const server = await restart()
    const url = `${server.endpoint}/${id}`
    if (COMMITTED.has(step)) {
      await noInProgressRecord(dirs, id)
      const head = await send(url, 'HEAD', TUS)
      t.equal(head.statusCode, 200)
      t.equal(head.headers['upload-offset'], String(data.length), 'committed: HEAD says finished')
      // The client never got its answer: it asks again with an empty PATCH at the end.
      t.equal((await patch(url, data.length, Buffer.alloc(0))).statusCode, 204, 'the retried last request succeeds')
    } else {
      const head = await send(url, 'HEAD', TUS)
      t.equal(head.headers['upload-offset'], String(16 * KiB), 'not committed: HEAD says the acknowledged offset')
      const resumed = await patch(url, 16 * KiB, data.subarray(16 * KiB))
      t.equal(resumed.statusCode, 204, 'the client resumes from it and finishes')
    }
    t.notOk(existsSync(path.join(dirs.directory, `${id}.meta`)), 'no in-progress record left')
    await deliveredOnce(t, dirs, id, data)
  }))
}

for (const step of ['concat:assembled', 'concat:handed-over'] as const) {
  t.test(`a crash at ${step}: the final is delivered once, its partials go`, (t) => scenario(t, step, async (armed, dirs, restart) => {
    const parts = [randomBytes(24 * KiB), randomBytes(40 * KiB)]
    const partials = await Promise.all(parts.map((part) => createUpload(armed.endpoint, { 'upload-length': String(part.length), 'upload-concat': 'partial' })))
    const final = await createUpload(armed.endpoint, { 'upload-concat': `final;${partials.map((id) => `/files/${id}`).join(' ')}` })
    t.equal((await patch(`${armed.endpoint}/${partials[0]}`, 0, parts[0])).statusCode, 204, 'the first partial finished')
    // The last partial's end assembles the final.
    await diesIn(t, armed, step, () => patch(`${armed.endpoint}/${partials[1]}`, 0, parts[1]))
    const server = await restart()
    await noInProgressRecord(dirs, final)
    await waitFor('the partials to go', async () => partials.every((id) => !existsSync(path.join(dirs.directory, `${id}.meta`))) ? true : undefined, 60_000)
    const head = await send(`${server.endpoint}/${final}`, 'HEAD', TUS)
    t.equal(head.headers['upload-offset'], String(parts[0].length + parts[1].length), 'HEAD of the final: assembled')
    for (const id of partials) t.equal((await send(`${server.endpoint}/${id}`, 'HEAD', TUS)).statusCode, 404, 'a partial is gone')
    await deliveredOnce(t, dirs, final, Buffer.concat(parts))
  }))
}

for (const step of ['terminate:locked', 'remove:record-removed', 'terminate:removed'] as const) {
  t.test(`a crash at ${step}: the upload is either untouched or terminated, never half`, (t) => scenario(t, step, async (armed, dirs, restart) => {
    const id = await createUpload(armed.endpoint, { 'upload-length': '100' })
    t.equal((await patch(`${armed.endpoint}/${id}`, 0, Buffer.alloc(40, 1))).statusCode, 204)
    await diesIn(t, armed, step, () => send(`${armed.endpoint}/${id}`, 'DELETE', TUS))
    const server = await restart()
    const url = `${server.endpoint}/${id}`
    const head = await send(url, 'HEAD', TUS)
    if (step === 'terminate:locked') {
      t.equal(head.statusCode, 200, 'nothing was removed: HEAD answers')
      t.equal(head.headers['upload-offset'], '40', 'with the acknowledged offset')
      t.equal((await send(url, 'DELETE', TUS)).statusCode, 204, 'the retried DELETE terminates it')
    } else {
      t.equal(head.statusCode, 404, 'the record is gone: terminated')
      t.equal((await send(url, 'DELETE', TUS)).statusCode, 404, 'a retried DELETE: 404')
      t.equal((await patch(url, 40, 'x')).statusCode, 404, 'and it cannot be written again')
    }
    t.equal((await send(url, 'HEAD', TUS)).statusCode, 404, 'terminated in the end')
    await t.rejects(waitForFile(dirs.completedDir, { timeout: 300 }), { code: 'FST_TUS_WAIT_TIMEOUT' }, 'nothing handed over')
  }))
}

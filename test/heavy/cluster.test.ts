// "Safe across machines", on a real shared filesystem: one GlusterFS volume
// mounted twice through FUSE (test/cluster/setup.sh), so that two server
// processes, one per mount, share data and flock locks only through the brick,
// as two hosts would. Each mount has its own client caches and no inotify
// reaches across. Needs root, /dev/fuse and the glusterfs-server and
// glusterfs-client packages (setup.sh installs them with apt when missing). A
// machine that cannot run the cluster fails this test; it is never skipped.
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { JanitorReport, UploadRecord } from '../../types/index'
import { TUS, create, idOf, send, tempDir, type Response } from '../helpers'
import {
  PATCH_HEADERS,
  headOffset,
  sha256,
  sha256File,
  waitFor,
  waitForBytesOnDisk,
  waitForOffset
} from '../interop-helpers'
import { rawSend, streamRequest, type RawOutcome } from '../raw-client'
import { DAY, HOUR, backDate, editRecord, finishUpload, isoAgo } from '../lifecycle-helpers'
import { loggedErrors, startTusNode, type TusNode } from '../node-helpers'
import { ROOT, ensureFreshBuild, startNode } from '../process-helpers'
import { describeTally, newTally, racingPatches, stalledOnA, tusClientMovesToB } from '../takeover-scenarios'
import { startWorker, type Worker } from '../worker-helpers'

const SCRIPTS = path.join(__dirname, '..', 'cluster')
const INSTALL = 'apt-get update && apt-get install -y glusterfs-server glusterfs-client'
const KiB = 1024
const MiB = 1024 * KiB

// On a quiet machine a run takes 30-40 s: setup ~4 s, the scenarios 20-30 s, teardown ~7 s.
// A busy machine is slower at all of it in about the same proportion, so every bound below is a
// quiet machine's bound times `pace`, this run's setup time over QUIET_SETUP: a slow machine gets
// the time it needs, a hang still fails. The scenarios end within their budget, then teardown
// gets its own, all inside the file's timeout, so that tap never kills this process with the
// cluster still up. Setup is bounded by its own waits (setup.sh) and SETUP_LIMIT.
const QUIET_SETUP = 4000
const SETUP_LIMIT = 300_000
const SCENARIOS_BUDGET = 170_000
const TEARDOWN_BUDGET = 45_000
let pace = 1
const paced = (ms: number): number => Math.round(ms * pace)
t.setTimeout(SETUP_LIMIT + SCENARIOS_BUDGET + TEARDOWN_BUDGET)

/** Measures the pace from the setup's duration; the scenarios' and the file's timeouts, restarted now, stretch by it. */
function setPace (scenarios: Test, setup: number): void {
  pace = Math.max(1, setup / QUIET_SETUP)
  scenarios.comment(`pace: ${pace.toFixed(1)} (setup ${setup} ms, ${QUIET_SETUP} ms on a quiet machine)`)
  scenarios.setTimeout(paced(SCENARIOS_BUDGET))
  t.setTimeout(paced(SCENARIOS_BUDGET + TEARDOWN_BUDGET) + 10_000)
}

// ---------------------------------------------------------------- the cluster

interface Cluster {
  root: string
  m1: string
  m2: string
}

interface Ran { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs one of the cluster scripts with the cluster's environment; killed after `timeout` ms. */
function runScript (name: string, env: Record<string, string>, timeout: number): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn('bash', [path.join(SCRIPTS, name)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
    child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
    const timer = setTimeout(() => {
      stderr += `\n[test] ${name} still running after ${timeout} ms: killed`
      child.kill('SIGKILL')
    }, timeout)
    child.on('error', (error) => { stderr += `\n[test] ${error.message}` })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

const mountsUnder = (root: string): string[] => readFileSync('/proc/mounts', 'utf8').split('\n')
  .map((line) => line.split(' ')[1] ?? '')
  .filter((mountPoint) => mountPoint.startsWith(`${root}/`))

/**
 * Brings the cluster up in a fresh directory and tears it down when `t` ends,
 * whatever happened; the teardown is registered before anything is started.
 * Its own volume name, so that a volume left by a run that was killed never blocks this one.
 */
async function startCluster (t: Test): Promise<Cluster> {
  const root = await mkdtemp(path.join(tmpdir(), 'fastify-tus-gluster-'))
  const env = { GLUSTER_ROOT: root, VOLNAME: `fastifytus_${process.pid}` }
  t.teardown(async () => {
    const started = Date.now()
    const down = await runScript('teardown.sh', env, paced(TEARDOWN_BUDGET))
    // setup.sh may have failed before marking the directory as its own: remove it if nothing is mounted there.
    if (existsSync(root) && mountsUnder(root).length === 0) await rm(root, { recursive: true, force: true })
    if (down.code !== 0) throw new Error(`test/cluster/teardown.sh failed (exit ${down.code ?? down.signal}):\n${down.stderr}`)
    process.stderr.write(`# cluster teardown took ${Date.now() - started} ms\n`)
  })
  const up = await runScript('setup.sh', env, SETUP_LIMIT)
  const m1 = /^M1=(.+)$/m.exec(up.stdout)?.[1]
  const m2 = /^M2=(.+)$/m.exec(up.stdout)?.[1]
  if (up.code !== 0 || m1 === undefined || m2 === undefined) {
    throw new Error(
      `The GlusterFS test cluster could not be started (test/cluster/setup.sh exit ${up.code ?? up.signal}). ` +
      `It needs root, /dev/fuse and GlusterFS; CI must run, as root: ${INSTALL}\n${up.stderr}${up.stdout}`)
  }
  return { root, m1, m2 }
}

// ---------------------------------------------------------------- the nodes

// The janitor of a CLI server cannot be called from outside: this server runs it on request instead.
const JANITOR_NODE = `'use strict'
// A tus node whose janitor runs on request: POST /janitor answers with its report.
// argv: packageRoot directory completedDir
const path = require('node:path')
const { createRequire } = require('node:module')
const [root, directory, completedDir] = process.argv.slice(2)
const load = createRequire(path.join(root, 'package.json'))
const Fastify = load('fastify')
const tus = load(root)

async function main () {
  const app = Fastify()
  await app.register(tus, { directory, completedDir, janitor: false, underPressure: false })
  app.post('/janitor', async () => {
    const { errors, ...done } = await app.tus.janitor.run()
    return { ...done, errors: errors.map(({ id, error }) => ({ id, code: error.code, message: error.message })) }
  })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write('janitor node listening on ' + address + '\\n')
}
main().catch((error) => { process.stderr.write(String(error && error.stack) + '\\n'); process.exit(1) })
`

type Report = Omit<JanitorReport, 'errors'> & { errors: Array<{ id: string | null, code?: string, message: string }> }
const CATEGORIES = ['finalized', 'stale', 'expired', 'orphanedMeta', 'orphanedData', 'oldCompleted'] as const

async function runJanitor (origin: string): Promise<Report> {
  const response = await send(`${origin}/janitor`, 'POST')
  if (response.statusCode !== 200) throw new Error(`janitor run failed: ${response.statusCode} ${response.text}`)
  return response.json() as Report
}

// ---------------------------------------------------------------- checks

/** A 204 answer to a PATCH, with the offset it reached. */
function assertPatched (t: Test, outcome: RawOutcome | Response, offset: number, what: string): void {
  const response = 'statusCode' in outcome ? outcome : outcome.response
  t.equal(response?.statusCode, 204, `${what}: 204`)
  t.equal(response?.headers['tus-resumable'], '1.0.0', `${what}: Tus-Resumable`)
  t.equal(response?.headers['upload-offset'], String(offset), `${what}: Upload-Offset ${offset}`)
}

const patchHeaders = (offset: number, length: number): Record<string, string> =>
  ({ ...PATCH_HEADERS, 'upload-offset': String(offset), 'content-length': String(length) })

/**
 * Resumes an upload as a tus client does: HEAD for the offset, PATCH the rest, and
 * again after a 423 or a connection the server closed on a refused body (the
 * other node is letting go of the upload), for at most `timeout` ms.
 */
async function resume (url: string, body: Buffer): Promise<RawOutcome> {
  const deadline = Date.now() + paced(10_000)
  for (;;) {
    const offset = Number((await send(url, 'HEAD', TUS)).headers['upload-offset'])
    const outcome = await rawSend(url, 'PATCH', patchHeaders(offset, body.length - offset), body.subarray(offset))
    const retry = outcome.error !== undefined || outcome.response.statusCode === 423
    if (!retry || Date.now() > deadline) return outcome
    await sleep(50)
  }
}

/** The finished file, read through each mount in turn: byte-identical to what was sent. */
async function assertFinishedOnBoth (t: Test, nodes: TusNode[], id: string, hash: string, length: number): Promise<void> {
  for (const node of nodes) {
    const file = path.join(node.completed, id)
    t.equal(statSync(file).size, length, `finished size through ${node.name}'s mount`)
    t.equal(await sha256File(file), hash, `finished bytes through ${node.name}'s mount`)
    const record = JSON.parse(await readFile(`${file}.meta`, 'utf8')) as UploadRecord
    t.equal(record.offset, length, `finished record through ${node.name}'s mount: offset == length`)
  }
}

const uuids = (names: string[]): string[] => names.filter((name) => /^[0-9a-f-]{36}$/.test(name)).sort()
const records = (names: string[]): string[] => names.filter((name) => /^[0-9a-f-]{36}\.meta$/.test(name)).map((name) => name.slice(0, 36)).sort()

// ---------------------------------------------------------------- the test

t.test('two nodes on one GlusterFS volume (two FUSE mounts)', { timeout: SCENARIOS_BUDGET }, async (t) => {
  let phase = Date.now()
  const lap = (what: string): void => {
    t.comment(`${what}: ${Date.now() - phase} ms`)
    phase = Date.now()
  }
  ensureFreshBuild()
  lap('build check')
  const setupStarted = Date.now()
  const cluster = await startCluster(t)
  setPace(t, Date.now() - setupStarted)
  lap('cluster setup')
  // Two mounts of one volume, not one directory seen twice.
  t.not(statSync(cluster.m1).dev, statSync(cluster.m2).dev, 'm1 and m2 are two mounts')
  t.strictSame(mountsUnder(cluster.root).sort(), [cluster.m1, cluster.m2].sort(), 'both are mounted')

  // The takeover timeout (5 s by default) stretched too: what a takeover takes grows with the machine's load.
  // No load shedding: on a busy machine the event loop lags past its 1 s bound, and shedding's 503s are
  // overload.test.ts's subject, not this file's.
  const takeoverTimeout = paced(5000)
  const flags = ['--takeover-timeout', String(takeoverTimeout), '--max-event-loop-delay', '0']
  const A = await startTusNode(t, 'A', cluster.m1, flags, paced(20_000))
  const B = await startTusNode(t, 'B', cluster.m2, flags, paced(20_000))
  const tally = newTally()
  lap('nodes started')
  // Every upload that finishes in this run, with its sha256: the workers of (4) must hand over all of them.
  const finished = new Map<string, string>()
  let claimed = 0
  const onB = (url: string): string => `${B.endpoint}/${idOf(url)}`

  await t.test('(1) an upload resumed across nodes: POST on A, PATCH on B, HEAD and PATCH on A', { timeout: paced(30_000) }, async (t) => {
    const body = randomBytes(3 * MiB + 17)
    const half = Math.floor(body.length / 2)
    const urlA = await create(A.endpoint, { 'upload-length': String(body.length) })
    const id = idOf(urlA)
    t.ok(statSync(path.join(B.uploads, id)).isFile(), 'the data file created by A is seen through B\'s mount')

    assertPatched(t, await rawSend(onB(urlA), 'PATCH', patchHeaders(0, half), body.subarray(0, half)), half, 'first half on B')
    t.equal(await headOffset(t, urlA), half, 'HEAD on A shows the offset B wrote')
    assertPatched(t, await rawSend(urlA, 'PATCH', patchHeaders(half, body.length - half), body.subarray(half)), body.length, 'the rest on A')

    const head = await send(onB(urlA), 'HEAD', TUS)
    t.equal(head.statusCode, 200, 'HEAD on B of the finished upload')
    t.equal(head.headers['upload-offset'], String(body.length), 'B sees it finished')
    await assertFinishedOnBoth(t, [A, B], id, sha256(body), body.length)
    t.strictSame(uuids(await readdir(B.uploads)), [], 'nothing of it left in progress')
    finished.set(id, sha256(body))
  })

  await t.test('(1b) HEAD on B while A writes: read-after-write across nodes, no stale or failed answer', { timeout: paced(45_000) }, async (t) => {
    // Every PATCH replaces the record (a rename over it) through A's mount while B reads it:
    // hundreds of small PATCHes, so that B often reads the record in the middle of its replacement.
    const chunk = 4 * KiB
    const chunks = 200
    const body = randomBytes(chunk * chunks)
    const urlA = await create(A.endpoint, { 'upload-length': String(body.length) })
    let acknowledged = 0
    let writing = true
    const wrong: string[] = []
    let heads = 0
    // A HEAD started after A acknowledged an offset must see at least that offset, and never less than the one before.
    const readers = [0, 1, 2, 3, 4, 5].map(async () => {
      let last = 0
      while (writing) {
        const floor = acknowledged
        const head = await send(onB(urlA), 'HEAD', TUS)
        const offset = Number(head.headers['upload-offset'])
        heads++
        if (head.statusCode !== 200) wrong.push(`HEAD ${head.statusCode} (offset acknowledged by A: ${floor})`)
        else if (offset < floor) wrong.push(`stale: offset ${offset} after A acknowledged ${floor}`)
        else if (offset < last) wrong.push(`went back: offset ${offset} after ${last}`)
        else if (offset > body.length) wrong.push(`offset ${offset} past the length`)
        else last = offset
      }
    })
    // A HEAD on B that meets A's lock asks A to let go: a PATCH of A's may be stopped (409
    // FST_TUS_SUPERSEDED, its bytes recorded), and A's client resumes from A's HEAD, as tus clients do.
    let superseded = 0
    try {
      for (let start = 0; start < body.length;) {
        const response = await send(urlA, 'PATCH', { ...TUS, ...PATCH_HEADERS, 'upload-offset': String(start) }, body.subarray(start, start + chunk))
        if (response.statusCode === 409 && (response.json() as { code: string }).code === 'FST_TUS_SUPERSEDED') {
          superseded++
          start = await headOffset(t, urlA)
          acknowledged = start
          continue
        }
        if (response.statusCode !== 204) throw new Error(`PATCH at ${start} on A: ${response.statusCode} ${response.text}`)
        start = Number(response.headers['upload-offset'])
        acknowledged = start
      }
    } finally {
      writing = false
      await Promise.all(readers)
    }
    t.comment(`${heads} HEADs on B during ${chunks} PATCHes on A; ${superseded} of A's PATCHes were stopped by a HEAD on B`)
    t.ok(heads >= chunks, 'B was asked throughout')
    t.strictSame(wrong, [], 'every HEAD on B answered 200 with an offset at least as new as A had acknowledged')
    await assertFinishedOnBoth(t, [A, B], idOf(urlA), sha256(body), body.length)
    finished.set(idOf(urlA), sha256(body))
  })

  await t.test('(2) a client back on B while its old PATCH is still open on A: no 423, no 409', { timeout: paced(60_000) }, async (t) => {
    // Across machines A learns of the request by polling: slower than on one machine, well inside the timeout.
    for (const how of ['head', 'patch', 'delete'] as const) {
      await t.test(`a PATCH stalled on A; the client comes back on B with ${how === 'head' ? 'HEAD, then PATCH' : how.toUpperCase()}`, (t) => stalledOnA(t, A, B, how, tally, takeoverTimeout))
    }
    await t.test('tus-js-client whose connection to A is stranded mid-PATCH resumes on B', (t) => tusClientMovesToB(t, A, B, tally, paced(10_000)))
    await t.test('racing PATCHes of one upload on A and B, 8 rounds: never both succeed', (t) => racingPatches(t, A, B, 8, tally))
    for (const [id, hash] of tally.finished) finished.set(id, hash)
  })

  await t.test('(3) a PATCH on A killed mid-body is resumed on B from the offset B reports', { timeout: paced(30_000) }, async (t) => {
    const body = randomBytes(2 * MiB)
    const urlA = await create(A.endpoint, { 'upload-length': String(body.length) })
    const id = idOf(urlA)
    const sent = 5 * 64 * KiB
    const dying = streamRequest(urlA, 'PATCH', patchHeaders(0, body.length))
    for (let start = 0; start < sent; start += 64 * KiB) await dying.write(body.subarray(start, start + 64 * KiB))
    await waitForBytesOnDisk(path.join(B.uploads, id), 0, body.subarray(0, sent), paced(10_000))
    dying.abort()
    t.ok((await dying.settled).error !== undefined, 'the client died without an answer')

    // A records what arrived once it sees the socket die; B learns it from the record only.
    const offset = await waitForOffset(onB(urlA), (o) => o > 0, paced(10_000))
    t.equal(offset, sent, 'HEAD on B reports every byte A received before the client died')
    assertPatched(t, await resume(onB(urlA), body), body.length, 'the rest on B')
    await assertFinishedOnBoth(t, [A, B], id, sha256(body), body.length)
    finished.set(id, sha256(body))
  })

  await t.test('(5) concatenation across nodes', { timeout: paced(30_000) }, async (t) => {
    const partial = async (node: TusNode, body: Buffer): Promise<string> => {
      const response = await send(node.endpoint, 'POST', {
        ...TUS, 'upload-concat': 'partial', 'upload-length': String(body.length), 'content-type': 'application/offset+octet-stream'
      }, body)
      t.equal(response.statusCode, 201, `partial created on ${node.name}`)
      t.equal(response.headers['upload-offset'], String(body.length), `and finished on ${node.name}`)
      return idOf(String(response.headers.location))
    }
    const createFinal = async (ids: string[]): Promise<Response> =>
      await send(A.endpoint, 'POST', { ...TUS, 'upload-concat': `final;${ids.map((id) => `${A.endpoint}/${id}`).join(' ')}` })
    const assertAssembled = async (t: Test, finalId: string, ids: string[], whole: Buffer): Promise<void> => {
      const head = await send(`${B.endpoint}/${finalId}`, 'HEAD', TUS)
      t.equal(head.statusCode, 200, 'HEAD of the final on B')
      t.equal(head.headers['upload-offset'], String(whole.length), 'the final is complete')
      t.equal(head.headers['upload-concat'], `final;${ids.map((id) => `/files/${id}`).join(' ')}`, 'and names its partials')
      await assertFinishedOnBoth(t, [A, B], finalId, sha256(whole), whole.length)
      for (const node of [A, B]) {
        const left = (await readdir(node.uploads)).filter((name) => [finalId, ...ids].some((id) => name.startsWith(id)))
        t.strictSame(left, [], `nothing of the final or its partials left in progress (through ${node.name}'s mount)`)
      }
      const inCompleted = records(await readdir(A.completed)).filter((id) => [finalId, ...ids].includes(id))
      t.strictSame(inCompleted, [finalId], 'handed over once: one record, the final\'s')
      finished.set(finalId, sha256(whole))
    }

    await t.test('partial 1 finished on A, partial 2 on B, final on A', async (t) => {
      const bodies = [randomBytes(300 * KiB + 3), randomBytes(200 * KiB + 5)]
      const ids = [await partial(A, bodies[0]), await partial(B, bodies[1])]
      const response = await createFinal(ids)
      t.equal(response.statusCode, 201, 'final created on A')
      t.equal(response.headers['tus-resumable'], '1.0.0')
      await assertAssembled(t, idOf(String(response.headers.location)), ids, Buffer.concat(bodies))
    })

    await t.test('final made first; its partials finish at the same time on A and on B, 3 rounds: assembled once', async (t) => {
      for (let round = 0; round < 3; round++) {
        const bodies = [randomBytes(400 * KiB + round), randomBytes(300 * KiB + 7)]
        const halves = bodies.map((body) => Math.floor(body.length / 2))
        const urls = await Promise.all([A, B].map((node, i) => create(node.endpoint, {
          'upload-concat': 'partial', 'upload-length': String(bodies[i].length)
        })))
        const ids = urls.map(idOf)
        // First halves on the partials' own nodes, then the final on A, with both partials unfinished.
        for (const [i, node] of [A, B].entries()) {
          assertPatched(t, await rawSend(`${node.endpoint}/${ids[i]}`, 'PATCH', patchHeaders(0, halves[i]), bodies[i].subarray(0, halves[i])), halves[i], `round ${round}: first half of partial ${i + 1} on ${node.name}`)
        }
        const response = await createFinal(ids)
        t.equal(response.statusCode, 201, `round ${round}: final created on A before its partials finished`)
        const finalId = idOf(String(response.headers.location))
        const head = await send(`${B.endpoint}/${finalId}`, 'HEAD', TUS)
        t.equal(head.headers['upload-offset'], undefined, `round ${round}: the final has no offset yet (HEAD on B)`)
        // The last bytes of both partials at once, one on each node: either may assemble, only one may hand over.
        const outcomes = await Promise.all([A, B].map((node, i) =>
          rawSend(`${node.endpoint}/${ids[i]}`, 'PATCH', patchHeaders(halves[i], bodies[i].length - halves[i]), bodies[i].subarray(halves[i]))))
        outcomes.forEach((outcome, i) => assertPatched(t, outcome, bodies[i].length, `round ${round}: partial ${i + 1} finished`))
        await assertAssembled(t, finalId, ids, Buffer.concat(bodies))
      }
    })
  })

  // (4) comes after (5): its workers hand over every upload this run finished.
  await t.test('(4) exactly-once hand-over across nodes: 2 workers per node, polling across', { timeout: paced(45_000) }, async (t) => {
    t.strictSame(records(await readdir(B.completed)), [...finished.keys()].sort(), 'completedDir holds the uploads finished so far, as B sees it')
    const started: Array<{ index: number, node: TusNode, dest: string, process: Worker }> = []
    for (const [index, node] of [A, A, B, B].entries()) {
      const dest = await tempDir(t, 'fastify-tus-dest-')
      // Workers stop when told, once every upload is claimed; a wait this long means a lost upload.
      started.push({ index, node, dest, process: startWorker(t, node.completed, dest, 'loop', paced(45_000), { pollInterval: 100, entry: ROOT }) })
    }
    await Promise.all(started.map((worker) => worker.process.next('ready')))

    // 40 small uploads finish while the workers wait, half through each node.
    const fresh = new Map<string, string>()
    const finishedVia = new Map<string, string>()
    await Promise.all([0, 1, 2, 3].map(async (lane) => {
      for (let i = lane; i < 40; i += 4) {
        const node = i % 2 === 0 ? A : B
        const body = randomBytes(1 + Math.floor(Math.random() * 8 * KiB))
        const id = await finishUpload(node.endpoint, body)
        fresh.set(id, sha256(body))
        finishedVia.set(id, node.name)
      }
    }))
    t.equal(fresh.size, 40, '40 uploads finished')
    for (const [id, hash] of fresh) finished.set(id, hash)

    const saved = (): number => started.reduce((sum, worker) => sum + worker.process.saved().length, 0)
    await waitFor('every finished upload to be saved by a worker', async () => saved() >= finished.size ? true : undefined, paced(30_000))
    for (const worker of started) worker.process.stop()
    const exits = await Promise.all(started.map((worker) => worker.process.exit))
    started.forEach((worker, i) => {
      t.strictSame(exits[i], { code: 0, signal: null }, `worker ${i} (node ${worker.node.name}) stopped when told ${worker.process.stderr()}`)
      t.ok(worker.process.messages.some((message) => message.event === 'stopped'), `worker ${i} was still waiting for files when told to stop`)
      t.notOk(worker.process.messages.some((message) => message.event === 'error'), `worker ${i} reported no error: ${JSON.stringify(worker.process.messages.filter((m) => m.event === 'error'))}`)
    })
    const claims = started.flatMap((worker) => worker.process.claimed())
    claimed += claims.length
    t.comment(`claims per worker: ${started.map((w) => `${w.node.name}${w.index}=${w.process.claimed().length}`).join(', ')}; ` +
      `uploads finished via A and claimed on B: ${started.filter((w) => w.node === B).flatMap((w) => w.process.claimed()).filter((id) => finishedVia.get(id) === 'A').length}`)
    t.equal(claims.length, finished.size, `${finished.size} claims in all`)
    t.equal(new Set(claims).size, claims.length, 'no upload claimed twice, across the four workers and the two nodes')
    t.strictSame([...claims].sort(), [...finished.keys()].sort(), 'every finished upload claimed: none lost')
    for (const node of [A, B]) {
      t.ok(started.some((worker) => worker.node === node && worker.process.claimed().length > 0), `the workers on node ${node.name} claimed some`)
    }
    let intact = 0
    for (const worker of started) {
      t.strictSame([...worker.process.saved()].sort(), [...worker.process.claimed()].sort(), `worker ${worker.index} saved each claim`)
      for (const id of worker.process.saved()) {
        if (sha256(await readFile(path.join(worker.dest, id))) === finished.get(id)) intact++
      }
    }
    t.equal(intact, finished.size, 'every saved file is byte-identical to its upload')
    for (const node of [A, B]) t.strictSame(await readdir(node.completed), [], `completedDir is empty, through ${node.name}'s mount`)
    finished.clear()
  })

  await t.test('(6) the janitor on both nodes at once: every id reported once', { timeout: paced(45_000) }, async (t) => {
    const expected: Record<typeof CATEGORIES[number], string[]> = {
      finalized: [], stale: [], expired: [], orphanedMeta: [], orphanedData: [], oldCompleted: []
    }
    const zombies = new Map<string, Buffer>()
    for (let i = 0; i < 6; i++) {
      const node = i % 2 === 0 ? A : B
      const other = node === A ? B : A
      // Stale: no write for two days (the janitor's default staleUploadAge is one).
      const stale = idOf(await create(node.endpoint, { 'upload-length': '1000' }))
      await editRecord(other.uploads, stale, { lastWrite: isoAgo(2 * DAY) })
      expected.stale.push(stale)
      // Expired: its expiry is past.
      const expired = idOf(await create(node.endpoint, { 'upload-length': '1000' }))
      await editRecord(other.uploads, expired, { expiresAt: isoAgo(HOUR) })
      expected.expired.push(expired)
      // A zombie: every byte written and recorded, then a crash before the hand-over.
      const body = randomBytes(4 * KiB + i)
      const zombie = idOf(await create(node.endpoint, { 'upload-length': String(body.length) }))
      const handle = await open(path.join(other.uploads, zombie), 'r+')
      await handle.write(body, 0, body.length, 0)
      await handle.close()
      await editRecord(other.uploads, zombie, { offset: body.length })
      await backDate(path.join(other.uploads, zombie), 2 * HOUR)
      zombies.set(zombie, body)
      expected.finalized.push(zombie)
      // Finished long ago and never claimed.
      const old = await finishUpload(node.endpoint, randomBytes(2 * KiB))
      await editRecord(other.completed, old, { finishedAt: isoAgo(8 * DAY) })
      expected.oldCompleted.push(old)
      // A record without data and data without a record, an hour old, in either directory.
      const dir = i < 3 ? other.uploads : other.completed
      const lonelyRecord = randomUUID()
      await writeFile(path.join(dir, `${lonelyRecord}.meta`), JSON.stringify({ id: lonelyRecord }))
      await backDate(path.join(dir, `${lonelyRecord}.meta`), 2 * HOUR)
      expected.orphanedMeta.push(lonelyRecord)
      const lonelyData = randomUUID()
      await writeFile(path.join(dir, lonelyData), randomBytes(100))
      await backDate(path.join(dir, lonelyData), 2 * HOUR)
      expected.orphanedData.push(lonelyData)
    }

    const work = await tempDir(t, 'fastify-tus-janitor-')
    const script = path.join(work, 'janitor-node.js')
    await writeFile(script, JANITOR_NODE)
    const janitors = await Promise.all([cluster.m1, cluster.m2].map((mount) =>
      startNode(t, [script, ROOT, path.join(mount, 'uploads'), path.join(mount, 'completed')], /listening on (http:\/\/\S+)\n/, { timeout: paced(20_000) })))
    const origins = janitors.map((janitor) => janitor.match[1])

    const reports = await Promise.all(origins.map(runJanitor))
    t.comment(`reports: ${reports.map((report, i) => `${i === 0 ? 'A' : 'B'} ${CATEGORIES.map((c) => `${c}=${report[c].length}`).join(' ')}`).join('; ')}`)
    reports.forEach((report, i) => t.strictSame(report.errors, [], `janitor on node ${i === 0 ? 'A' : 'B'} met no error`))
    const all = reports.flatMap((report) => CATEGORIES.flatMap((category) => report[category]))
    const twice = all.filter((id, i) => all.indexOf(id) !== i)
    t.strictSame(twice, [], 'no id reported twice across the two reports')
    for (const category of CATEGORIES) {
      t.strictSame(reports.flatMap((report) => report[category]).sort(), [...expected[category]].sort(), `${category}: each reported once, by one node`)
    }

    // What the passes left, seen through both mounts: the zombies handed over, whole, and nothing else.
    for (const node of [A, B]) {
      t.strictSame(uuids(await readdir(node.uploads)).concat(records(await readdir(node.uploads))), [], `nothing left in progress (through ${node.name}'s mount)`)
      t.strictSame(records(await readdir(node.completed)), [...zombies.keys()].sort(), `only the zombies' records in completedDir (through ${node.name}'s mount)`)
      t.strictSame(uuids(await readdir(node.completed)), [...zombies.keys()].sort(), `and their data (through ${node.name}'s mount)`)
    }
    for (const [id, body] of zombies) await assertFinishedOnBoth(t, [A, B], id, sha256(body), body.length)

    const again = await Promise.all(origins.map(runJanitor))
    t.strictSame(again.flatMap((report) => [...CATEGORIES.flatMap((category) => report[category]), ...report.errors]), [], 'a second pass on both nodes finds nothing to do')
  })

  t.comment(`across the nodes: ${describeTally(tally)}; ${claimed} claims`)
  for (const node of [A, B]) t.strictSame(loggedErrors(node), [], `node ${node.name} logged no error`)
  lap('scenarios')
})

// Power cuts beyond PATCH: the power goes while uploads finish (in a PATCH and
// in a creation request), while final uploads are assembled from their
// partials (at creation, and when the last partial finishes), while uploads are
// terminated, while the janitor hands over uploads a crash left complete and
// deletes stale ones, and while a worker claims finished uploads. The server,
// the worker and the test's own planting run on powercutfs; each cut stops
// them all first. After the cut a fresh server (whose janitor pass completes
// what was interrupted) and a fresh worker take over, and: every acknowledged
// byte is there, every upload acknowledged as finished is delivered exactly
// once with its bytes, a terminated one never comes back, and no record is torn.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, writeSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { TUS, patch, send } from '../helpers'
import { waitFor } from '../interop-helpers'
import { missingPrerequisite, mountPowercutfs, powerCut, readPrefix, type Mount } from '../powercut-helpers'
import { between, bytesOf, random } from '../random-helpers'
import { startServerProcess, type ServerProcess } from '../server-process-helpers'
import { startWorker, type Worker } from '../worker-helpers'
import type { ReportedPass } from '../fixtures/tus-server'

const KiB = 1024
const ROUNDS = 4
const SEED = Number(process.env.POWERCUT_SEED ?? Math.floor(Math.random() * 2 ** 31))
const DAY = 24 * 3600_000

type Flow = 'patch-finish' | 'post-finish' | 'concat-at-creation' | 'concat-unfinished' | 'terminate-in-progress' | 'terminate-finished' | 'janitor-finalize' | 'janitor-stale'
const FLOWS: Flow[] = ['patch-finish', 'post-finish', 'concat-at-creation', 'concat-unfinished', 'terminate-in-progress', 'terminate-finished', 'janitor-finalize', 'janitor-stale']

interface Upload {
  name: string
  data: Buffer
  id?: string
  /** Highest offset acknowledged; -1 before the creation was. */
  acked: number
  /** Acknowledged as finished (a 201/204 at its end, or HEAD showing it whole). */
  finished: boolean
  /** A request that may finish it was sent: it may be delivered even if no answer said so. */
  mayFinish: boolean
  deleteSent: boolean
  terminated: boolean
  /** A partial upload: never delivered on its own. */
  partial: boolean
  /** Planted as stale: the janitor may delete it. */
  stale: boolean
}

const idOfLocation = (location: unknown): string => String(location).slice(String(location).lastIndexOf('/') + 1)

/** Replaces a record as the store does (temporary file, fsync, rename, directory fsync), playing the passing of time or a crash. */
function replaceRecordDurably (dir: string, id: string, change: Record<string, unknown>): void {
  const file = path.join(dir, `${id}.meta`)
  const record = { ...JSON.parse(readFileSync(file, 'utf8')), ...change }
  const temporary = path.join(dir, `.planted-${id}.tmp`)
  const fd = openSync(temporary, 'w')
  writeSync(fd, JSON.stringify(record))
  fsyncSync(fd)
  closeSync(fd)
  renameSync(temporary, file)
  const dirFd = openSync(dir, 'r')
  fsyncSync(dirFd)
  closeSync(dirFd)
}

class Traffic {
  acks = 0
  stopping = false
  readonly problems: string[] = []
  readonly reached: Promise<void>
  private onReached = (): void => {}

  constructor (private readonly endpoint: string, private readonly mount: Mount, private readonly cutAfter: number) {
    this.reached = new Promise((resolve) => { this.onReached = resolve })
  }

  private ack (u: Upload, offset: number): void {
    u.acked = Math.max(u.acked, offset)
    if (offset === u.data.length && !u.partial) u.finished = true
    if (++this.acks >= this.cutAfter) this.onReached()
  }

  // A request whose failure after the cut is expected, and before it a problem.
  private async call<T> (what: string, request: () => Promise<T>): Promise<T | undefined> {
    if (this.stopping) return undefined
    try {
      return await request()
    } catch (error) {
      if (!this.stopping) this.problems.push(`${what}: ${(error as Error).message}`)
      return undefined
    }
  }

  private async create (u: Upload, headers: Record<string, string>, body?: Buffer): Promise<boolean> {
    const response = await this.call(`${u.name} POST`, () => send(this.endpoint, 'POST', { ...TUS, ...headers }, body))
    if (response === undefined) return false
    if (response.statusCode !== 201) {
      this.problems.push(`${u.name} POST: ${response.statusCode} ${response.text}`)
      return false
    }
    u.id = idOfLocation(response.headers.location)
    this.ack(u, body?.length ?? 0)
    return true
  }

  private async patchFrom (u: Upload, start: number, end = u.data.length): Promise<boolean> {
    if (end === u.data.length) u.mayFinish = true
    let response = await this.call(`${u.name} PATCH`, () => patch(`${this.endpoint}/${u.id!}`, start, u.data.subarray(start, end)))
    // 423: a janitor pass looks at the upload right now; a client retries.
    for (let retry = 0; retry < 100 && response?.statusCode === 423; retry++) {
      response = await this.call(`${u.name} PATCH`, () => patch(`${this.endpoint}/${u.id!}`, start, u.data.subarray(start, end)))
    }
    if (response === undefined) return false
    if (response.statusCode !== 204 || Number(response.headers['upload-offset']) !== end) {
      this.problems.push(`${u.name} PATCH at ${start}: ${response.statusCode} ${String(response.headers['upload-offset'])} ${response.text}`)
      return false
    }
    this.ack(u, end)
    return true
  }

  /** A final upload shows Upload-Offset only once assembled. */
  private async headFinal (u: Upload): Promise<void> {
    const response = await this.call(`${u.name} HEAD`, () => send(`${this.endpoint}/${u.id!}`, 'HEAD', TUS))
    if (response?.statusCode === 200 && response.headers['upload-offset'] === String(u.data.length)) this.ack(u, u.data.length)
  }

  private async remove (u: Upload): Promise<void> {
    u.deleteSent = true
    const response = await this.call(`${u.name} DELETE`, () => send(`${this.endpoint}/${u.id!}`, 'DELETE', TUS))
    if (response === undefined) return
    // A finished upload may be claimed (423) or delivered already (404).
    if (response.statusCode === 204) {
      u.terminated = true
      if (++this.acks >= this.cutAfter) this.onReached()
    } else if (!(u.finished && (response.statusCode === 423 || response.statusCode === 404))) {
      this.problems.push(`${u.name} DELETE: ${response.statusCode} ${response.text}`)
    }
  }

  // Makes an acknowledged upload look like one a crash left behind, durably: complete but never
  // handed over, or without a write for two days. The janitor passes running beside take it up.
  private plant (u: Upload, kind: 'complete' | 'stale'): void {
    if (this.stopping) return
    if (kind === 'complete') {
      const fd = openSync(path.join(this.mount.uploads, u.id!), 'r+')
      writeSync(fd, u.data, u.data.length - 1, 1, u.data.length - 1)
      fsyncSync(fd)
      closeSync(fd)
      u.mayFinish = true
      replaceRecordDurably(this.mount.uploads, u.id!, { offset: u.data.length })
      if (!this.stopping) this.ack(u, u.data.length) // the janitor owes it a hand-over now
    } else {
      u.stale = true
      const old = new Date(Date.now() - 2 * DAY).toISOString()
      replaceRecordDurably(this.mount.uploads, u.id!, { lastWrite: old, createdAt: old })
    }
  }

  async drive (flow: Flow, group: Upload[]): Promise<void> {
    const [u, a, b] = group
    const length = (x: Upload): Record<string, string> => ({ 'upload-length': String(x.data.length) })
    const octet = { 'content-type': 'application/offset+octet-stream' }
    switch (flow) {
      case 'patch-finish':
        if (await this.create(u, length(u))) await this.patchFrom(u, 0)
        return
      case 'post-finish':
        u.mayFinish = true
        await this.create(u, { ...length(u), ...octet }, u.data)
        return
      case 'concat-at-creation':
      case 'concat-unfinished': {
        const partials = [a, b]
        for (const p of partials) if (!await this.create(p, { ...length(p), 'upload-concat': 'partial' })) return
        if (flow === 'concat-at-creation') for (const p of partials) if (!await this.patchFrom(p, 0)) return
        u.mayFinish = flow === 'concat-at-creation'
        if (!await this.create(u, { 'upload-concat': `final;${partials.map((p) => `/files/${p.id!}`).join(' ')}` })) return
        if (flow === 'concat-unfinished') {
          u.mayFinish = true
          for (const p of partials) if (!await this.patchFrom(p, 0)) return
        }
        await this.headFinal(u)
        return
      }
      case 'terminate-in-progress':
        if (await this.create(u, length(u)) && await this.patchFrom(u, 0, u.data.length >> 1)) await this.remove(u)
        return
      case 'terminate-finished':
        u.mayFinish = true
        if (await this.create(u, { ...length(u), ...octet }, u.data)) await this.remove(u)
        return
      case 'janitor-finalize':
      case 'janitor-stale':
        if (await this.create(u, length(u)) && await this.patchFrom(u, 0, u.data.length - 1)) this.plant(u, flow === 'janitor-finalize' ? 'complete' : 'stale')
    }
  }
}

function freshGroups (round: number, rand: () => number): Array<{ flow: Flow, group: Upload[] }> {
  const upload = (name: string, partial = false): Upload => ({
    name, data: bytesOf(`${SEED}/${name}`, between(rand, 16, 256) * KiB), acked: -1, finished: false, mayFinish: false, deleteSent: false, terminated: false, partial, stale: false
  })
  return FLOWS.flatMap((flow) => [0, 1].map((copy) => {
    const name = `r${round}-${flow}-${copy}`
    if (!flow.startsWith('concat')) return { flow, group: [upload(name)] }
    const parts = [upload(`${name}-a`, true), upload(`${name}-b`, true)]
    const final = upload(name)
    final.data = Buffer.concat(parts.map((p) => p.data))
    return { flow, group: [final, ...parts] }
  }))
}

interface Verdict { problems: string[], notes: string[] }

/** Every record on disk is whole JSON: none is torn by a cut. */
function tornRecords (mount: Mount): string[] {
  const torn: string[] = []
  for (const dir of [mount.uploads, mount.completed]) {
    for (const name of readdirSync(dir).filter((entry) => entry.endsWith('.meta'))) {
      try {
        JSON.parse(readFileSync(path.join(dir, name), 'utf8'))
      } catch {
        torn.push(`${path.relative(mount.mnt, path.join(dir, name))} is torn`)
      }
    }
  }
  return torn
}

/** After the restart and its janitor pass: what each acknowledgment promised. */
async function verify (mount: Mount, endpoint: string, uploads: Upload[], savedBefore: Set<string>): Promise<Verdict> {
  const problems = tornRecords(mount)
  const notes: string[] = []
  for (const u of uploads) {
    if (u.acked < 0 || u.id === undefined) continue
    const what = `${u.name} (${u.id}, acknowledged ${u.acked}${u.finished ? ', finished' : ''}${u.terminated ? ', terminated' : ''})`
    const head = await send(`${endpoint}/${u.id}`, 'HEAD', TUS)
    const inCompleted = existsSync(path.join(mount.completed, `${u.id}.meta`)) && existsSync(path.join(mount.completed, u.id))
    if (u.terminated) {
      if (head.statusCode !== 404 || inCompleted) problems.push(`${what}: came back (HEAD ${head.statusCode})`)
      continue
    }
    if (u.finished) {
      // Delivered before the cut, or waiting in completedDir for the next worker; never both.
      if (savedBefore.has(u.id) && inCompleted) problems.push(`${what}: saved by a worker before the cut, and in completedDir again`)
      // (A DELETE sent without an answer may have removed it.)
      const somewhere = savedBefore.has(u.id) || inCompleted || existsSync(path.join(mount.mnt, 'dest', u.id))
      if (!somewhere && !u.deleteSent) problems.push(`${what}: lost (HEAD ${head.statusCode})`)
      continue
    }
    if (head.statusCode === 404) {
      // Allowed only when something may have removed it: a DELETE, a finish (then delivered), the stale sweep, a final's assembly.
      if (!(u.deleteSent || u.mayFinish || u.stale || u.partial)) problems.push(`${what}: HEAD 404`)
      continue
    }
    if (head.statusCode !== 200) {
      problems.push(`${what}: HEAD ${head.statusCode}`)
      continue
    }
    const offset = head.headers['upload-offset'] === undefined ? 0 : Number(head.headers['upload-offset'])
    if (offset < u.acked) problems.push(`${what}: HEAD offset ${offset}`)
    // Where its bytes are now: a finish the cut left unanswered may have been handed over since, and a worker may have saved it.
    const data = offset > 0 ? readPrefix([path.join(mount.uploads, u.id), path.join(mount.completed, u.id), path.join(mount.mnt, 'dest', u.id)], offset) : undefined
    if (offset > 0 && data === undefined) problems.push(`${what}: HEAD offset ${offset}, but no data file`)
    else if (data !== undefined && !data.bytes.equals(u.data.subarray(0, offset))) problems.push(`${what}: bytes before ${offset} differ (${path.relative(mount.mnt, data.file)})`)
    notes.push(`${u.name}: resumable at ${offset}`)
  }
  return { problems, notes }
}

interface Generation { server: ServerProcess, worker: Worker }

async function startGeneration (t: Test, mount: Mount, janitorEvery?: number): Promise<Generation> {
  const server = await startServerProcess(t, mount.uploads, mount.completed, janitorEvery === undefined ? {} : { janitorEvery })
  const worker = startWorker(t, mount.completed, path.join(mount.mnt, 'dest'), 'loop', 600_000, { pollInterval: 50 })
  await worker.next('ready')
  return { server, worker }
}

/** One janitor pass now; the first after a start takes over the start-up pass's report when it is still running. */
async function janitorPass (server: ServerProcess): Promise<ReportedPass> {
  const after = server.messages.length
  server.child.send('janitor')
  return (await server.next('janitor-run', after)).report
}

// Five generations of server and worker processes, each started with the TypeScript loader.
t.setTimeout(300_000)

t.test('power cuts while uploads finish, assemble, terminate, and while the janitor and a worker work', async (t) => {
  const missing = missingPrerequisite()
  if (missing !== undefined) {
    t.fail(missing)
    return
  }
  t.comment(`seed ${SEED} (POWERCUT_SEED=${SEED} replays sizes and cut points, timing aside)`)
  const rand = random(SEED)
  const mount = await mountPowercutfs(t)
  // The workers' destination, durable before anything is saved into it.
  mkdirSync(path.join(mount.mnt, 'dest'))
  const mntFd = openSync(mount.mnt, 'r')
  fsyncSync(mntFd)
  closeSync(mntFd)
  const uploads: Upload[] = []
  // Every id a worker reported saved (after its save and release were durable), over all generations.
  const saves: string[] = []
  let generation = await startGeneration(t, mount, 5)
  for (let round = 0; round < ROUNDS; round++) {
    const groups = freshGroups(round, rand)
    uploads.push(...groups.flatMap(({ group }) => group))
    const planned = groups.reduce((sum, { group }) => sum + group.length * 2, 0)
    const traffic = new Traffic(generation.server.endpoint, mount, between(rand, Math.ceil(planned * 0.2), Math.floor(planned * 0.6)))
    const all = Promise.all(groups.map(({ flow, group }) => traffic.drive(flow, group)))
    const outcome = await Promise.race([
      traffic.reached.then(() => 'cut'),
      all.then(() => 'traffic ended before the cut'),
      sleep(60_000, 'traffic stuck for 60 s', { ref: false })
    ])
    if (outcome === 'traffic stuck for 60 s') t.fail(`round ${round}: ${outcome} after ${traffic.acks} acknowledgments:\n${generation.server.stderr()}`)
    if (outcome !== 'cut') t.comment(`round ${round}: ${outcome} (${traffic.acks} acknowledgments)`)
    traffic.stopping = true
    await powerCut(mount, [generation.server.child, generation.worker.child])
    await all
    t.same(traffic.problems, [], `round ${round}: every answer before the cut was a success`)
    const savedBefore = new Set(saves)
    for (const id of generation.worker.saved()) {
      if (savedBefore.has(id)) t.fail(`${id} saved twice`)
      saves.push(id)
    }

    generation = await startGeneration(t, mount, round === ROUNDS - 1 ? undefined : 5)
    const pass = await janitorPass(generation.server)
    t.same(pass.errors, [], `round ${round}: the janitor pass after the restart met no error`)
    const { problems, notes } = await verify(mount, generation.server.endpoint, uploads, new Set(saves))
    t.same(problems, [], `round ${round}: cut after ${traffic.acks} acknowledgments on ${groups.length} flows; the janitor then finalized ${pass.finalized.length}, deleted ${pass.stale.length} stale`)
    if (problems.length > 0) {
      for (const note of notes) t.comment(note)
      return
    }
  }

  // No more cuts: everything resumable finishes (partials first, which assembles their finals);
  // the worker delivers it all, exactly once.
  const { server, worker } = generation
  const resumable = uploads.filter((x) => x.acked >= 0 && !x.finished && !x.deleteSent && !x.stale && x.id !== undefined)
  for (const u of [...resumable.filter((x) => x.partial), ...resumable.filter((x) => !x.partial)]) {
    const head = await send(`${server.endpoint}/${u.id!}`, 'HEAD', TUS)
    if (head.statusCode !== 200) continue // a partial already assembled into its final
    if (String(head.headers['upload-concat']).startsWith('final')) {
      if (head.headers['upload-offset'] === String(u.data.length)) u.finished = true
      continue
    }
    const offset = Number(head.headers['upload-offset'])
    const answer = await patch(`${server.endpoint}/${u.id!}`, offset, u.data.subarray(offset))
    if (answer.statusCode !== 204) t.fail(`${u.name}: resumed at ${offset}: ${answer.statusCode} ${answer.text}\n${server.stderr()}`)
    else if (!u.partial) u.finished = true
  }
  const owed = uploads.filter((u) => u.finished && !u.deleteSent)
  const dest = path.join(mount.mnt, 'dest')
  // Delivered: in the destination, and no finished upload with data left in completedDir.
  await waitFor('the worker to deliver every finished upload', async () =>
    owed.every((u) => existsSync(path.join(dest, u.id!))) &&
    readdirSync(mount.completed).filter((name) => name.endsWith('.meta')).every((name) => !existsSync(path.join(mount.completed, name.slice(0, -'.meta'.length))))
      ? true
      : undefined, 120_000)
  worker.stop()
  await worker.exit
  saves.push(...worker.saved())
  const counts = new Map<string, number>()
  for (const id of saves) counts.set(id, (counts.get(id) ?? 0) + 1)
  t.same([...counts].filter(([, count]) => count > 1), [], `no upload delivered twice (${saves.length} saves over ${ROUNDS + 1} workers)`)
  const wrong = owed.filter((u) => !existsSync(path.join(dest, u.id!)) || !readFileSync(path.join(dest, u.id!)).equals(u.data)).map((u) => u.name)
  t.same(wrong, [], `${owed.length} uploads acknowledged as finished, each delivered with its bytes`)
  const leaked = uploads.filter((u) => (u.partial || u.terminated) && u.id !== undefined && existsSync(path.join(dest, u.id))).map((u) => u.name)
  t.same(leaked, [], 'no partial and no terminated upload was delivered')
  t.same(tornRecords(mount), [], 'no torn record at the end')
  await server.stop()
})

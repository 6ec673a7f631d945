// Power-cut durability: every offset the server acknowledged (201/204) must
// survive a power loss, with its bytes, and every upload acknowledged as
// finished must be handed over whole. A SIGKILL alone proves nothing (the page
// cache outlives the process), so the server runs on powercutfs
// (test/powercut/powercutfs.py), a FUSE filesystem that forgets every change
// not made durable by fsync of the file or of its directory when we cut.
import t from 'tap'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { TUS, idOf, patch, send, tempDir, type Response } from '../helpers'
import { missingPrerequisite, mountPowercutfs, powerCut, readPrefix, type Mount } from '../powercut-helpers'
import { CLI, ensureFreshBuild, startNode } from '../process-helpers'
import { between, bytesOf, random } from '../random-helpers'

const KiB = 1024
const MiB = 1024 * KiB
const ROUNDS = 6
// Printed, and settable, so that a failing run's sizes and cut points can be replayed (timing aside).
const SEED = Number(process.env.POWERCUT_SEED ?? Math.floor(Math.random() * 2 ** 31))

type Teardown = Parameters<typeof tempDir>[0]

// ---------------------------------------------------------------- the server process

interface ServerProcess {
  child: ChildProcess
  endpoint: string
  output: () => string
}

async function serve (t: Teardown, mount: Mount, fsync: boolean): Promise<ServerProcess> {
  const args = [CLI, 'serve', '--port', '0', '--directory', mount.uploads, '--completed-dir', mount.completed, '--log-level', 'warn']
  if (!fsync) args.push('--no-fsync')
  const started = await startNode(t, args, /fastify-tus listening on (http:\/\/\S+)/, { timeout: 60_000 })
  return { child: started.child, endpoint: started.match[1], output: () => started.stdout() + started.stderr() }
}

// ---------------------------------------------------------------- uploads and traffic

type Kind = 'length' | 'with-upload' | 'deferred' | 'single' | 'whole-in-post'

interface Upload {
  name: string
  kind: Kind
  data: Buffer
  rand: () => number
  id: string | undefined
  /** Highest offset the server acknowledged; -1 until the creation was acknowledged. */
  acked: number
  /** The server acknowledged the last byte (or a restarted server showed it handed over). */
  finished: boolean
  /** The server knows Upload-Length (false for a deferred upload until a PATCH declaring it succeeded). */
  lengthDeclared: boolean
  /** Where the client's next request starts. */
  next: number
}

// Each round adds one of each: several PATCHes of 64 KiB - 2 MiB, creation-with-upload,
// deferred length, and small ones that finish early in the round.
const FRESH: Array<{ kind: Kind, min: number, max: number }> = [
  { kind: 'length', min: 3 * MiB, max: 6 * MiB },
  { kind: 'length', min: 2 * MiB, max: 4 * MiB },
  { kind: 'length', min: 1 * MiB, max: 3 * MiB },
  { kind: 'with-upload', min: 2 * MiB, max: 4 * MiB },
  { kind: 'with-upload', min: 1 * MiB, max: 2 * MiB },
  { kind: 'deferred', min: 2 * MiB, max: 4 * MiB },
  { kind: 'single', min: 64 * KiB, max: 512 * KiB },
  { kind: 'whole-in-post', min: 64 * KiB, max: 1 * MiB }
]

function freshUploads (round: number): Upload[] {
  return FRESH.map(({ kind, min, max }, index) => {
    const name = `r${round}u${index}-${kind}`
    const rand = random(SEED ^ (round * 7919 + index * 104729))
    return {
      name,
      kind,
      data: bytesOf(`${SEED}/${name}`, between(rand, min, max)),
      rand,
      id: undefined,
      acked: -1,
      finished: false,
      lengthDeclared: kind !== 'deferred',
      next: 0
    }
  })
}

/** Body sizes of the requests that take the upload from u.next to its end (the POST's body first, if any). */
function planOf (u: Upload): number[] {
  const length = u.data.length
  if (u.next === length) return [0] // all bytes durable but not handed over: an empty PATCH finishes it
  if (u.kind === 'single' || u.kind === 'whole-in-post') return [length - u.next]
  const plan: number[] = []
  for (let at = u.next; at < length;) {
    const size = Math.min(between(u.rand, 64 * KiB, 2 * MiB), length - at)
    plan.push(size)
    at += size
  }
  return plan
}

const carriesDataInPost = (u: Upload): boolean => u.id === undefined && (u.kind === 'with-upload' || u.kind === 'whole-in-post')

/** Drives uploads, records every acknowledgment, and says when `cutAfter` of them arrived. */
class Traffic {
  stopping = false
  acks = 0
  readonly problems: string[] = []
  readonly reached: Promise<void>
  private onReached: () => void = () => {}

  constructor (private readonly endpoint: string, private readonly cutAfter: number) {
    this.reached = new Promise((resolve) => { this.onReached = resolve })
  }

  /** Sends the planned requests (body sizes from planOf) until done, refused or cut. */
  async drive (u: Upload, plan: number[]): Promise<void> {
    let index = 0
    if (u.id === undefined) {
      const headers: Record<string, string> = { ...TUS }
      if (u.lengthDeclared) headers['upload-length'] = String(u.data.length)
      else headers['upload-defer-length'] = '1'
      let body: Buffer | undefined
      if (carriesDataInPost(u)) {
        body = u.data.subarray(0, plan[index++])
        headers['content-type'] = 'application/offset+octet-stream'
      }
      const response = await this.request(u, 'POST', () => send(this.endpoint, 'POST', headers, body))
      if (response === undefined) return
      const offset = response.headers['upload-offset'] === undefined ? 0 : Number(response.headers['upload-offset'])
      if (response.statusCode !== 201 || offset !== (body?.length ?? 0)) return this.unexpected(u, 'POST', response)
      u.id = idOf(String(response.headers.location))
      this.acknowledge(u, offset)
    }
    for (; index < plan.length && !this.stopping; index++) {
      const start = u.next
      const end = start + plan[index]
      // A deferred upload declares its length with its last chunk.
      const declares = !u.lengthDeclared && end === u.data.length
      const response = await this.request(u, `PATCH at ${start}`, () =>
        patch(`${this.endpoint}/${u.id!}`, start, u.data.subarray(start, end), declares ? { 'upload-length': String(end) } : {}))
      if (response === undefined) return
      if (response.statusCode !== 204 || Number(response.headers['upload-offset']) !== end) return this.unexpected(u, `PATCH at ${start}`, response)
      if (declares) u.lengthDeclared = true
      this.acknowledge(u, end)
    }
  }

  private async request (u: Upload, what: string, call: () => Promise<Response>): Promise<Response | undefined> {
    if (this.stopping) return undefined
    try {
      return await call()
    } catch (error) {
      // After the cut every pending request dies with its server; before it, nothing may fail.
      if (!this.stopping) this.problems.push(`${u.name} ${what}: ${(error as Error).message}`)
      return undefined
    }
  }

  private unexpected (u: Upload, what: string, response: Response): void {
    this.problems.push(`${u.name} ${what}: ${response.statusCode} offset=${String(response.headers['upload-offset'])} ${response.text}`)
  }

  // Answers that arrive after the cut began still count: the stopped server sent them before it.
  private acknowledge (u: Upload, offset: number): void {
    u.acked = Math.max(u.acked, offset)
    u.next = offset
    if (u.lengthDeclared && offset === u.data.length) u.finished = true
    if (++this.acks >= this.cutAfter) this.onReached()
  }
}

// ---------------------------------------------------------------- checking the state after a cut

interface StoredRecord { offset: number, length: number | null, finishedAt: string | null }

function readJson (file: string, problems: string[]): StoredRecord | undefined {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  try {
    return JSON.parse(text) as StoredRecord
  } catch {
    problems.push(`${file}: unreadable record ${JSON.stringify(text.slice(0, 80))}`)
    return undefined
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface Verdict {
  /** One line per broken promise. */
  problems: string[]
  /** States worth knowing when a later step fails. */
  notes: string[]
}

/**
 * Compares what a restarted server and the durable files say with every acknowledgment,
 * and prepares each unfinished upload to resume from the offset that survived.
 */
async function verify (mount: Mount, endpoint: string, uploads: Upload[]): Promise<Verdict> {
  const problems: string[] = []
  const notes: string[] = []
  for (const [dir, where] of [[mount.completed, 'completed'], [mount.uploads, 'uploads']] as const) {
    for (const name of fs.readdirSync(dir)) {
      const id = name.slice(0, -'.meta'.length)
      if (!name.endsWith('.meta') || !UUID.test(id)) continue
      const record = readJson(path.join(dir, name), problems)
      if (where === 'completed') {
        if (!fs.existsSync(path.join(dir, id))) problems.push(`completed/${name} has no data file completed/${id}`)
        if (record !== undefined && record.finishedAt === null) problems.push(`completed/${name} has no finishedAt`)
      } else if (!fs.existsSync(path.join(dir, id))) {
        // A hand-over cut short: not a broken promise by itself (the bytes are in completed/),
        // but it tells why a resume below may fail.
        const inCompleted = [id, `${id}.meta`].filter((file) => fs.existsSync(path.join(mount.completed, file)))
        notes.push(`uploads/${name} (offset ${record?.offset}, length ${record?.length}) survived without uploads/${id}; ` +
          `completed/ holds ${inCompleted.join(' and ') || 'neither its data nor its record'}`)
      }
    }
  }
  for (const u of uploads) {
    if (u.acked < 0) continue // creation never acknowledged: the client cannot know its URL
    const length = u.data.length
    const what = `${u.name} (${u.id!}), acknowledged offset ${u.acked}${u.finished ? ' and finished' : ''}`
    const head = await send(`${endpoint}/${u.id!}`, 'HEAD', TUS)
    if (head.statusCode !== 200 || head.headers['tus-resumable'] !== '1.0.0') {
      problems.push(`${what}: HEAD answered ${head.statusCode} (Tus-Resumable ${String(head.headers['tus-resumable'])})`)
      continue
    }
    const offset = Number(head.headers['upload-offset'])
    if (!(offset >= u.acked)) problems.push(`${what}: HEAD Upload-Offset ${String(head.headers['upload-offset'])} after the cut`)
    const declared = head.headers['upload-length']
    if (declared !== undefined ? Number(declared) !== length : u.lengthDeclared) {
      problems.push(`${what}: HEAD Upload-Length ${String(declared)}, Upload-Defer-Length ${String(head.headers['upload-defer-length'])}; length ${length}${u.lengthDeclared ? ' was acknowledged' : ''}`)
    }
    const inProgress = readJson(path.join(mount.uploads, `${u.id!}.meta`), problems)
    const completed = readJson(path.join(mount.completed, `${u.id!}.meta`), problems)
    // Handed over: the completed record exists, and an in-progress record that survived is
    // the committed one (finishedAt set: its removal need not be durable; the next PATCH or
    // the janitor clears it, and the server answers the same from either).
    const handedOver = completed !== undefined && (inProgress === undefined || (inProgress.finishedAt === completed.finishedAt && inProgress.offset === completed.offset))
    if (u.finished && !handedOver) {
      problems.push(`${what}: records after the cut: uploads ${JSON.stringify(inProgress)}, completed ${JSON.stringify(completed)}`)
    }
    const record = inProgress ?? completed
    if (record === undefined) {
      problems.push(`${what}: HEAD 200 but no record on disk`)
      continue
    }
    if (record.offset !== offset) problems.push(`${what}: HEAD offset ${offset}, record offset ${record.offset}`)
    if (handedOver && (completed.finishedAt === null || completed.offset !== length || completed.length !== length)) {
      problems.push(`${what}: completed record ${JSON.stringify(completed)}`)
    }
    // The bytes up to the surviving offset (all of them once handed over) are the ones sent.
    const expected = handedOver ? length : Math.min(record.offset, length)
    const data = readPrefix([path.join(mount.uploads, u.id!), path.join(mount.completed, u.id!)], expected)
    if (data === undefined) {
      problems.push(`${what}: no data file`)
    } else if (!data.bytes.equals(u.data.subarray(0, expected))) {
      const at = data.bytes.findIndex((byte, i) => byte !== u.data[i])
      problems.push(`${what}: data ${path.relative(mount.mnt, data.file)} differs from the bytes sent at ${at === -1 ? data.bytes.length : at} of ${expected}`)
    } else if (handedOver && data.size !== length) {
      problems.push(`${what}: completed data is ${data.size} bytes, not ${length}`)
    }
    // Resume from what survived.
    u.next = Math.min(offset, length)
    u.lengthDeclared = declared !== undefined
    u.finished = handedOver
  }
  return { problems, notes }
}

// ---------------------------------------------------------------- one round

interface RoundResult { acks: number, requests: number }

/** Drives the uploads and cuts the power after a random number of acknowledgments. */
async function trafficThenCut (mount: Mount, server: ServerProcess, active: Upload[], rand: () => number): Promise<RoundResult> {
  const plans = active.map(planOf)
  const requests = active.reduce((sum, u, i) => sum + plans[i].length + (u.id === undefined && !carriesDataInPost(u) ? 1 : 0), 0)
  const traffic = new Traffic(server.endpoint, between(rand, Math.ceil(requests * 0.25), Math.floor(requests * 0.75)))
  const all = Promise.all(active.map((u, i) => traffic.drive(u, plans[i])))
  const outcome = await Promise.race([
    traffic.reached.then(() => 'cut'),
    all.then(() => 'traffic ended before the cut'),
    sleep(60_000, 'no cut point within 60 s', { ref: false })
  ])
  if (outcome !== 'cut') throw new Error(`${outcome}: ${traffic.acks} of ${requests} acknowledged; ${traffic.problems.join('; ')}\n${server.output()}`)
  await sleep(between(rand, 0, 25)) // between two answers, or not
  traffic.stopping = true
  await powerCut(mount, [server.child])
  await all
  if (traffic.problems.length > 0) throw new Error(`unexpected answers before the cut:\n${traffic.problems.join('\n')}\n${server.output()}`)
  return { acks: traffic.acks, requests }
}

const acknowledged = (uploads: Upload[]): Upload[] => uploads.filter((u) => u.acked >= 0)

// ---------------------------------------------------------------- the tests

t.test('acknowledged offsets and finished uploads survive power cuts (fsync on)', async (t) => {
  const missing = missingPrerequisite()
  if (missing !== undefined) {
    t.fail(missing)
    return
  }
  ensureFreshBuild()
  t.comment(`seed ${SEED} (POWERCUT_SEED=${SEED} replays sizes and cut points, timing aside)`)
  const mount = await mountPowercutfs(t)
  const rand = random(SEED)
  const uploads: Upload[] = []
  let server = await serve(t, mount, true)
  for (let round = 0; round < ROUNDS; round++) {
    // This round's fresh uploads, and every earlier one the client can resume.
    const active = [...freshUploads(round), ...acknowledged(uploads).filter((u) => !u.finished)]
    uploads.push(...active.filter((u) => u.id === undefined))
    const result = await trafficThenCut(mount, server, active, rand)
    server = await serve(t, mount, true)
    const checked = acknowledged(uploads)
    const finished = checked.filter((u) => u.finished).length
    const { problems, notes } = await verify(mount, server.endpoint, uploads)
    for (const note of notes) t.comment(`round ${round}: ${note}`)
    t.same(problems, [], `round ${round}: cut after ${result.acks} acknowledgments (${result.requests} requests planned on ${active.length} uploads); ` +
      `${checked.length} acknowledged uploads checked, ${finished} acknowledged as finished`)
    t.ok(result.acks > 0 && checked.length > 0, `round ${round} checked something`)
    if (problems.length > 0) return // later rounds would only repeat it
  }
  // No more cuts: every acknowledged upload resumes from what survived and finishes whole.
  const known = acknowledged(uploads)
  const resumed = known.filter((u) => !u.finished)
  const traffic = new Traffic(server.endpoint, Infinity)
  await Promise.all(resumed.map((u) => traffic.drive(u, planOf(u))))
  t.same(traffic.problems, [], `${resumed.length} unfinished uploads resumed from their surviving offsets`)
  t.same(known.filter((u) => !u.finished).map((u) => u.name), [], 'every acknowledged upload finished')
  t.same((await verify(mount, server.endpoint, known)).problems, [], `${known.length} of ${uploads.length} uploads handed over with the bytes sent`)
})

t.test('control: with --no-fsync the same cut loses acknowledged uploads', async (t) => {
  const missing = missingPrerequisite()
  if (missing !== undefined) {
    t.fail(missing)
    return
  }
  ensureFreshBuild()
  const mount = await mountPowercutfs(t)
  const uploads = freshUploads(ROUNDS)
  const result = await trafficThenCut(mount, await serve(t, mount, false), uploads, random(SEED + 1))
  const server = await serve(t, mount, false)
  const { problems } = await verify(mount, server.endpoint, uploads)
  t.ok(result.acks > 0 && acknowledged(uploads).length > 0, `${result.acks} acknowledgments on ${acknowledged(uploads).length} uploads before the cut`)
  t.ok(problems.length > 0, `the same check sees the loss: ${problems.length} broken promises, first: ${problems[0]}`)
})

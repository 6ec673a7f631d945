// Races between processes: three server processes serve one directory, each
// running janitor passes back to back, while two worker processes claim
// finished uploads with waitForFile. Clients send PATCHes (two at once at the
// same offset, to different processes), HEADs and DELETEs for the same uploads
// to any process. Every answer must be one a client can act on (the allowed
// statuses per request kind are listed below), nothing may hang, and at the
// end each upload is delivered exactly once with its bytes, or terminated, or
// resumable at an offset whose bytes are on disk (and then resumed to its end).
// Some uploads are partials of final uploads created before them (concatenation-
// unfinished): the last partials of a final may finish at once in two processes,
// and the final is still assembled and delivered exactly once.
import { createHash, randomBytes } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { TUS, patch, send, tempDir, type Response } from '../helpers'
import { readRange, waitFor } from '../interop-helpers'
import { random } from '../random-helpers'
import { startServerProcess, type ServerProcess } from '../server-process-helpers'
import { startWorker } from '../worker-helpers'

const KiB = 1024
const SERVERS = 3
const WORKERS = 2
const UPLOADS = 24
const FINALS = 4 // each of two partial uploads, racing like the others
const STEPS = 30 // rounds of requests per upload, at most
const SEED = Number(process.env.RACES_SEED ?? Math.floor(Math.random() * 2 ** 31))

type Kind = 'PATCH' | 'HEAD' | 'DELETE'

// What each kind of request may answer while others race it, and why.
const ALLOWED: Record<Kind, Record<number, string[]>> = {
  // 204: its bytes were written; 409: another PATCH got there first (or stopped it, in the
  // same process); 423: another process (a writer, a janitor pass) holds the upload;
  // 404: the upload was terminated, or delivered and released by a worker.
  PATCH: { 204: [], 409: ['FST_TUS_OFFSET_MISMATCH', 'FST_TUS_SUPERSEDED'], 423: ['FST_TUS_UPLOAD_LOCKED'], 404: ['FST_TUS_UPLOAD_NOT_FOUND'] },
  // 200 with the offset; 404 once terminated or delivered.
  HEAD: { 200: [], 404: [] },
  // 204 once; 404 after that or once delivered; 423 while a writer of another process, a janitor
  // pass or a worker's claim holds the upload.
  DELETE: { 204: [], 404: ['FST_TUS_UPLOAD_NOT_FOUND'], 423: ['FST_TUS_UPLOAD_LOCKED'] }
}

interface Upload {
  index: number
  id: string
  data: Buffer
  /** The highest offset acknowledged (204 or HEAD). */
  acked: number
  finished: boolean
  terminated: boolean
  deleteSent: boolean
  /** A PATCH reaching the end was sent: from then on the upload may be handed over and released. */
  endSent: boolean
  /** Delete at this round (-1: never; past the last round: after it finished). */
  deleteAt: number
  /** A partial upload: removed once its final is assembled, never delivered itself. */
  partial: boolean
}

/** A final upload: the concatenation of its partials, delivered once they are all finished. */
interface Final { id: string, data: Buffer }

class Race {
  readonly problems: string[] = []
  readonly tally: Record<string, number> = {}

  constructor (private readonly servers: ServerProcess[], private readonly rand: () => number) {}

  private url (u: Upload): string {
    return `${this.servers[Math.floor(this.rand() * this.servers.length)].endpoint}/${u.id}`
  }

  // One request, its answer checked against ALLOWED; undefined when it got no answer.
  private async request (u: Upload, kind: Kind, call: (url: string) => Promise<Response>, raced: boolean): Promise<Response | undefined> {
    let response: Response
    try {
      response = await call(this.url(u))
    } catch (error) {
      // A PATCH stopped by another request for its upload (from any process) may lose its connection instead of an answer.
      if (kind === 'PATCH' && raced) {
        this.count(`${kind} cut off`)
        return undefined
      }
      this.problems.push(`upload ${u.index} ${kind}: ${(error as Error).message}`)
      return undefined
    }
    const { statusCode } = response
    this.count(`${kind} ${statusCode}`)
    const codes = ALLOWED[kind][statusCode]
    const code = kind === 'HEAD' || statusCode < 400 ? undefined : (JSON.parse(response.text) as { code?: string }).code
    if (codes === undefined || (code !== undefined && !codes.includes(code))) {
      this.problems.push(`upload ${u.index} ${kind}: ${statusCode} ${response.text}`)
    } else if (statusCode === 404 && !u.deleteSent && !u.endSent) {
      this.problems.push(`upload ${u.index} ${kind}: 404 though it was neither deleted nor finished`)
    }
    if (response.headers['tus-resumable'] !== '1.0.0') this.problems.push(`upload ${u.index} ${kind} ${statusCode}: no Tus-Resumable`)
    return response
  }

  private count (what: string): void {
    this.tally[what] = (this.tally[what] ?? 0) + 1
  }

  private headOffset (u: Upload, response: Response | undefined, ackedBefore: number): void {
    if (response?.statusCode !== 200) return
    const offset = Number(response.headers['upload-offset'])
    if (!(offset >= ackedBefore && offset <= u.data.length)) this.problems.push(`upload ${u.index} HEAD: offset ${offset}, acknowledged ${ackedBefore}`)
    else u.acked = Math.max(u.acked, offset)
  }

  /** Rounds of racing requests on one upload until it is finished and deleted (if it is to be), or the rounds run out. */
  async drive (u: Upload): Promise<void> {
    for (let round = 0; round < STEPS && !u.terminated; round++) {
      if (u.finished && u.deleteAt < 0) return
      const deleting = u.deleteAt >= 0 && (round >= u.deleteAt || u.finished)
      const start = u.acked
      const size = Math.min(u.data.length - start, (16 + Math.floor(this.rand() * 112)) * KiB)
      const patches = u.finished ? 0 : (this.rand() < 0.5 ? 2 : 1)
      if (start + size === u.data.length && patches > 0) u.endSent = true
      if (deleting) u.deleteSent = true
      const heading = this.rand() < 0.5
      // A HEAD stops a PATCH still streaming too (takeover), in any process.
      const raced = patches + (deleting ? 1 : 0) + (heading ? 1 : 0) > 1
      const body = u.data.subarray(start, start + size)
      const [head, deleted, ...patched] = await Promise.all([
        heading ? this.request(u, 'HEAD', (url) => send(url, 'HEAD', TUS), raced) : undefined,
        deleting ? this.request(u, 'DELETE', (url) => send(url, 'DELETE', TUS), raced) : undefined,
        ...Array.from({ length: patches }, () => this.request(u, 'PATCH', (url) => patch(url, start, body), raced))
      ])
      this.headOffset(u, head, start)
      if (deleted?.statusCode === 204) u.terminated = true
      // Delivered and released by a worker before the DELETE came: nothing left to race.
      if (deleted?.statusCode === 404 && u.finished) return
      const won = patched.filter((response) => response?.statusCode === 204)
      if (won.length > 1) this.problems.push(`upload ${u.index}: two PATCHes at ${start} both succeeded`)
      for (const response of won) {
        const offset = Number(response!.headers['upload-offset'])
        if (offset !== start + size) this.problems.push(`upload ${u.index} PATCH at ${start}: answered offset ${offset}, not ${start + size}`)
        u.acked = Math.max(u.acked, offset)
      }
      if (u.acked === u.data.length && won.length > 0) u.finished = true
      // Without a winner, the next round starts from what HEAD says.
      if (won.length === 0 && !u.terminated) this.headOffset(u, await this.request(u, 'HEAD', (url) => send(url, 'HEAD', TUS), false), start)
    }
  }
}

/** After the race: HEAD answers the offset whose bytes are on disk; the upload is then finished from there. */
async function resume (race: Race, u: Upload, directory: string, endpoint: string): Promise<void> {
  const url = `${endpoint}/${u.id}`
  for (let attempt = 0; attempt < 100; attempt++) {
    const head = await send(url, 'HEAD', TUS)
    if (head.statusCode !== 200) {
      race.problems.push(`upload ${u.index}, resumable: HEAD ${head.statusCode}`)
      return
    }
    const offset = Number(head.headers['upload-offset'])
    if (offset < u.acked) race.problems.push(`upload ${u.index}, resumable: HEAD ${offset} below the acknowledged ${u.acked}`)
    if (attempt === 0 && offset < u.data.length) {
      const bytes = await readRange(path.join(directory, u.id), 0, offset)
      if (!bytes.equals(u.data.subarray(0, offset))) race.problems.push(`upload ${u.index}, resumable: its data differs from the bytes sent before ${offset}`)
    }
    const answer = await patch(url, offset, u.data.subarray(offset))
    // 423: a janitor pass of another process looks at it right now.
    if (answer.statusCode === 423) continue
    if (answer.statusCode !== 204) race.problems.push(`upload ${u.index}, resumed at ${offset}: ${answer.statusCode} ${answer.text}`)
    else u.finished = true
    return
  }
  race.problems.push(`upload ${u.index}: still locked after 100 attempts`)
}

const digest = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

// Three servers and two workers started with the TypeScript loader take a while on a busy machine.
t.setTimeout(300_000)

t.test('PATCH, HEAD, DELETE, janitor passes and waitForFile racing on the same uploads from several processes', async (t) => {
  t.comment(`seed ${SEED} (RACES_SEED=${SEED} replays the requests, timing aside)`)
  const rand = random(SEED)
  const root = await tempDir(t, 'fastify-tus-races-')
  const directory = path.join(root, 'uploads')
  const completedDir = path.join(root, 'completed')
  const dest = path.join(root, 'dest')
  // The first process makes the directories; the others start on them.
  const servers = [await startServerProcess(t, directory, completedDir, { janitorEvery: 10 })]
  servers.push(...await Promise.all(Array.from({ length: SERVERS - 1 }, () => startServerProcess(t, directory, completedDir, { janitorEvery: 10 }))))
  const workers = Array.from({ length: WORKERS }, () => startWorker(t, completedDir, dest, 'loop', 600_000, { pollInterval: 50 }))
  await Promise.all(workers.map((worker) => worker.next('ready')))

  const uploads: Upload[] = []
  const create = async (index: number, headers: Record<string, string>): Promise<string> => {
    const created = await send(servers[index % SERVERS].endpoint, 'POST', { ...TUS, ...headers })
    if (created.statusCode !== 201) throw new Error(`creation failed: ${created.statusCode} ${created.text}`)
    const location = String(created.headers.location)
    return location.slice(location.lastIndexOf('/') + 1)
  }
  for (let index = 0; index < UPLOADS + 2 * FINALS; index++) {
    const data = randomBytes((64 + Math.floor(rand() * 448)) * KiB)
    const partial = index >= UPLOADS
    const id = await create(index, { 'upload-length': String(data.length), ...(partial ? { 'upload-concat': 'partial' } : {}) })
    // A third are deleted in the middle of their PATCHes, a sixth once finished (racing the workers); partials never.
    const deleteAt = partial ? -1 : index % 3 === 0 ? Math.floor(rand() * 4) : (index % 6 === 1 ? STEPS : -1)
    uploads.push({ index, id, data, acked: 0, finished: false, terminated: false, deleteSent: false, endSent: false, deleteAt, partial })
  }
  const finals: Final[] = []
  for (let index = 0; index < FINALS; index++) {
    const parts = uploads.slice(UPLOADS + 2 * index, UPLOADS + 2 * index + 2)
    const id = await create(index, { 'upload-concat': `final;${parts.map((p) => `/files/${p.id}`).join(' ')}` })
    finals.push({ id, data: Buffer.concat(parts.map((p) => p.data)) })
  }

  const race = new Race(servers, rand)
  await Promise.all(uploads.map((u) => race.drive(u)))
  t.comment(`answers: ${Object.entries(race.tally).sort().map(([what, count]) => `${what} ×${count}`).join(', ')}`)
  t.same(race.problems, [], 'every answer during the race was an allowed one, and never two winners at one offset')

  // Whatever the race left unfinished and not terminated is resumable at an offset whose bytes are on disk.
  const unfinished = uploads.filter((u) => !u.finished && !u.terminated)
  for (const u of unfinished) await resume(race, u, directory, servers[u.index % SERVERS].endpoint)
  t.same(race.problems, [], `${unfinished.length} uploads the race left unfinished resumed from HEAD's offset, bytes intact, and finished`)

  // Every finished upload that was not terminated reaches exactly one worker; a final in place of its partials.
  const delivered: Array<{ index: number | string, id: string, data: Buffer }> = [
    ...uploads.filter((u) => !u.terminated && !u.partial),
    ...finals.map((final, index) => ({ index: `final ${index}`, ...final }))
  ]
  const saved = (): string[] => workers.flatMap((worker) => worker.saved())
  await waitFor('the workers to save every delivered upload', async () => delivered.every((u) => saved().includes(u.id)) ? true : undefined, 120_000)
  for (const worker of workers) worker.stop()
  const exits = await Promise.all(workers.map((worker) => worker.exit))
  t.same(exits, workers.map(() => ({ code: 0, signal: null })), 'the workers stopped when told')
  t.same(workers.flatMap((worker) => worker.messages.filter((message) => message.event === 'error')), [], 'no worker met an error')
  const savedIds = saved()
  t.equal(new Set(savedIds).size, savedIds.length, `no upload saved twice (${savedIds.length} saves by ${WORKERS} workers)`)
  const terminated = uploads.filter((u) => u.terminated)
  t.same(terminated.filter((u) => savedIds.includes(u.id)).map((u) => u.index), [], `${terminated.length} terminated uploads: none delivered`)
  t.same(uploads.filter((u) => u.partial && savedIds.includes(u.id)).map((u) => u.index), [], `${2 * FINALS} partial uploads: none delivered itself`)
  const wrong: Array<number | string> = []
  for (const u of delivered) if (digest(await readFile(path.join(dest, u.id))) !== digest(u.data)) wrong.push(u.index)
  t.same(wrong, [], `${delivered.length} delivered uploads, each with the bytes sent`)

  const completedBy = new Map<string, number>()
  for (const id of servers.flatMap((server) => server.completed())) completedBy.set(id, (completedBy.get(id) ?? 0) + 1)
  t.same(delivered.filter((u) => completedBy.get(u.id) !== 1).map((u) => `${u.index}: ${completedBy.get(u.id) ?? 0}`), [], 'tus:completed once for each delivered upload, over all processes')
  t.same(terminated.filter((u) => (completedBy.get(u.id) ?? 0) > 1).map((u) => u.index), [], 'at most once for a terminated one')

  const janitorErrors = servers.flatMap((server) => server.messages.flatMap((message) =>
    message.event === 'janitor' ? message.report.errors.map((error) => `${error.id ?? '-'}: ${error.message}`) : message.event === 'error' ? [message.message] : []))
  t.same(janitorErrors, [], 'no janitor pass met an error')
  const exitsOfServers = await Promise.all(servers.map((server) => server.stop()))
  t.same(exitsOfServers, servers.map(() => ({ code: 0, signal: null })), 'every server process closed cleanly')
  t.same(await readdir(directory), [], 'nothing left in the uploads directory')
  t.same(await readdir(completedDir), [], 'nor in completedDir')
  t.same((await readdir(dest)).sort(), delivered.map((u) => u.id).sort(), 'the destination holds exactly the delivered uploads')
})

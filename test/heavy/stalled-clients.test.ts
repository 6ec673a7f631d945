// Stalled and slow clients against `fastify-tus serve` in its own process: a
// few hundred connections trickling their headers a byte at a time and a
// hundred PATCH bodies that stop arriving do not slow other clients' uploads
// down, the server's memory stays bounded, trickled headers are cut off by the
// headers timeout serve sets, and each stalled body is ended after idleTimeout
// with its bytes durable and its lock free, so that its client resumes through
// another process on the same directory.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { TUS, create, idOf, send, tempDir } from '../helpers'
import { PATCH_HEADERS, waitFor } from '../interop-helpers'
import { rawSend, streamRequest } from '../raw-client'
import { CLI, ensureFreshBuild, lockIsFree, startNode, type Started } from '../process-helpers'

ensureFreshBuild()

const MiB = 1024 * 1024
const LISTENING = /^fastify-tus listening on (http:\/\/127\.0\.0\.1:\d+\/files)$/m
const SLOW_HEADERS = 300
const STALLED_BODIES = 100
const STALLED_SENT = 64 * 1024
const STALLED_LENGTH = 256 * 1024
const IDLE_TIMEOUT = 6000
// Uploads of the honest clients, measured without and with the attack.
const HONEST = { uploads: 12, size: 4 * MiB, parallel: 3 }
// Generous: a shared 2-core machine makes timings move, but a server that lets
// stalled clients hold it up is slower by far more than this.
const SLOWDOWN_ALLOWED = 4
const RSS_GROWTH_ALLOWED = 96 * MiB

interface Server { started: Started, endpoint: string, pid: number }

async function serve (t: Test, directory: string, completedDir: string): Promise<Server> {
  const started = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', directory, '--completed-dir', completedDir,
    '--idle-timeout', String(IDLE_TIMEOUT), '--log-level', 'warn'], LISTENING)
  return { started, endpoint: started.match[1], pid: started.child.pid! }
}

const rssOf = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024

// The server's RSS, sampled until stopped; `peak` is the largest seen.
function sampleRss (pid: number): { stop: () => number } {
  let peak = rssOf(pid)
  const timer = setInterval(() => { peak = Math.max(peak, rssOf(pid)) }, 50)
  return { stop: () => { clearInterval(timer); return Math.max(peak, rssOf(pid)) } }
}

// Honest uploads: creation, then one PATCH with the whole body; resolves with the ms they took.
async function honestUploads (endpoint: string): Promise<number> {
  const body = randomBytes(HONEST.size)
  const started = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: HONEST.parallel }, async () => {
    while (next++ < HONEST.uploads) {
      const url = await create(endpoint, { 'upload-length': String(body.length) })
      const outcome = await rawSend(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(body.length) }, body)
      if (outcome.response?.statusCode !== 204) throw new Error(`an honest upload failed: ${outcome.response?.statusCode ?? String(outcome.error)}`)
    }
  }))
  return performance.now() - started
}

interface SlowHeaders {
  /** Connections the server has closed. */
  closedByServer: () => number
  open: () => number
  stop: () => void
}

// Connections that send their request's headers one byte at a time, never finishing them.
function trickleHeaders (endpoint: string, count: number): SlowHeaders {
  const { port } = new URL(endpoint)
  const sockets = new Set<net.Socket>()
  let closedByServer = 0
  let stopping = false
  const line = `PATCH /files/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ${'a'.repeat(4000)}`
  for (let i = 0; i < count; i++) {
    const socket = net.connect(Number(port), '127.0.0.1')
    const state = { sent: 0 }
    socket.on('error', () => {})
    socket.on('close', () => { sockets.delete(socket); if (!stopping) closedByServer++ })
    sockets.add(socket)
    Object.assign(socket, { trickle: state })
  }
  // One byte per connection every 200 ms, a slice of them per tick.
  let turn = 0
  const slices = 10
  const timer = setInterval(() => {
    let index = 0
    for (const socket of sockets) {
      if (index++ % slices !== turn % slices || socket.connecting) continue
      const state = (socket as net.Socket & { trickle: { sent: number } }).trickle
      if (state.sent < line.length) socket.write(line[state.sent++])
    }
    turn++
  }, 20)
  return {
    closedByServer: () => closedByServer,
    open: () => sockets.size,
    stop: () => {
      stopping = true
      clearInterval(timer)
      for (const socket of sockets) socket.destroy()
    }
  }
}

t.test('stalled and slow clients do not hold up other uploads, and stalled bodies resume elsewhere', { timeout: 240_000 }, async (t) => {
  const root = await tempDir(t)
  const directory = path.join(root, 'uploads')
  const completedDir = path.join(root, 'completed')
  const a = await serve(t, directory, completedDir)
  const b = await serve(t, directory, completedDir)

  await honestUploads(a.endpoint) // warms the server up
  const baselineBefore = await honestUploads(a.endpoint)
  const rssBefore = rssOf(a.pid)

  const rss = sampleRss(a.pid)
  const slow = trickleHeaders(a.endpoint, SLOW_HEADERS)
  t.teardown(() => slow.stop())
  const stalledBody = randomBytes(STALLED_LENGTH)
  const stalled = await Promise.all(Array.from({ length: STALLED_BODIES }, async () => {
    const url = await create(a.endpoint, { 'upload-length': String(STALLED_LENGTH) })
    const request = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(STALLED_LENGTH) })
    await request.write(stalledBody.subarray(0, STALLED_SENT))
    const entry = { url, request, sentAt: Date.now(), ended: false }
    void request.settled.then(() => { entry.ended = true })
    return entry
  }))
  t.equal(slow.open(), SLOW_HEADERS, 'every trickling connection is open while the honest clients upload')

  const underAttack = await honestUploads(a.endpoint)
  const rssPeak = rss.stop()
  t.equal(slow.closedByServer(), 0, 'every trickling connection was still open when the honest uploads ended')
  t.equal(stalled.filter(({ ended }) => ended).length, 0, 'every stalled body was still open when the honest uploads ended')

  // The stalled bodies end, each after idleTimeout without a byte.
  const outcomes = await Promise.all(stalled.map(async ({ request, sentAt }) => ({ outcome: await request.settled, silence: Date.now() - sentAt })))
  t.ok(outcomes.every(({ silence }) => silence >= IDLE_TIMEOUT - 500), 'no stalled body was ended before idleTimeout')
  const baselineAfter = await honestUploads(a.endpoint)
  const baseline = Math.max(baselineBefore, baselineAfter)
  t.comment(`honest uploads (${HONEST.uploads} × ${HONEST.size / MiB} MiB, ${HONEST.parallel} at once): ${Math.round(baselineBefore)} ms and ${Math.round(baselineAfter)} ms alone, ${Math.round(underAttack)} ms beside ${SLOW_HEADERS} trickling connections and ${STALLED_BODIES} stalled bodies`)
  t.ok(underAttack <= baseline * SLOWDOWN_ALLOWED, `uploads under attack take at most ${SLOWDOWN_ALLOWED}× as long (${(underAttack / baseline).toFixed(2)}×)`)
  t.comment(`server RSS: ${(rssBefore / MiB).toFixed(1)} MiB before, peak ${(rssPeak / MiB).toFixed(1)} MiB under attack`)
  t.ok(rssPeak - rssBefore < RSS_GROWTH_ALLOWED, `the server's RSS grew by less than ${RSS_GROWTH_ALLOWED / MiB} MiB (${((rssPeak - rssBefore) / MiB).toFixed(1)} MiB)`)

  // Each stalled upload: its bytes recorded, its lock free, resumed through the other process.
  let resumed = 0
  for (const { url } of stalled) {
    const id = idOf(url)
    const offset = await waitFor(`the offset of ${id}`, async () => {
      const head = await send(`${b.endpoint}/${id}`, 'HEAD', TUS)
      return head.headers['upload-offset'] === String(STALLED_SENT) ? STALLED_SENT : undefined
    }, 10_000)
    if (!lockIsFree(path.join(directory, id))) t.fail(`the lock of ${id} is still held`)
    const rest = await rawSend(`${b.endpoint}/${id}`, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': String(offset), 'content-length': String(STALLED_LENGTH - offset) }, stalledBody.subarray(offset))
    if (rest.response?.statusCode === 204 && (await readFile(path.join(completedDir, id))).equals(stalledBody)) resumed++
  }
  t.equal(resumed, STALLED_BODIES, 'every stalled upload kept its bytes, let go of its lock and was finished through another process')

  // serve's headers timeout (10 s, checked every second) cuts the trickling connections off.
  await waitFor('the server to close every trickling connection', async () => slow.open() === 0 ? true : undefined, 60_000)
  t.equal(slow.closedByServer(), SLOW_HEADERS, 'the server closed every connection that never finished its headers')
  t.equal(a.started.child.exitCode, null, 'the server is still running')
})

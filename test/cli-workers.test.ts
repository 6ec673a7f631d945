// `fastify-tus serve --workers N`: node:cluster workers on one port, in real
// processes. Chunks of one upload land on different workers; a worker killed
// mid-upload is replaced and the upload resumes; SIGTERM stops them all.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { TUS, create, idOf, send, tempDir } from './helpers'
import { PATCH_HEADERS, sha256, waitFor } from './interop-helpers'
import { rawSend, streamRequest } from './raw-client'
import { CLI, ensureFreshBuild, exitWithin, runNode, startNode, type Started } from './process-helpers'

ensureFreshBuild()

const LISTENING = /^fastify-tus listening on (http:\/\/127\.0\.0\.1:\d+\/files) \((\d+) workers\)$/m
const KiB = 1024

interface Cluster { server: Started, endpoint: string, directory: string, completedDir: string }

async function serveWorkers (t: tap.Test, workers: string, logLevel = 'debug'): Promise<Cluster> {
  const root = await tempDir(t)
  const directory = path.join(root, 'uploads')
  const completedDir = path.join(root, 'completed')
  const server = await startNode(t, [CLI, 'serve', '--port', '0', '--workers', workers, '--directory', directory, '--completed-dir', completedDir, '--log-level', logLevel], LISTENING, { cwd: root, timeout: 60_000 })
  return { server, endpoint: server.match[1], directory, completedDir }
}

/** The worker pid that logged each request for `url` with `method`, in order (pino lines on stdout; serve logs requests at debug). */
function handlers (server: Started, method: string, url: string): number[] {
  const pathname = new URL(url).pathname
  return server.stdout().split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return []
    const entry = JSON.parse(line) as { pid: number, msg?: string, req?: { method: string, url: string } }
    return entry.msg === 'incoming request' && entry.req?.method === method && entry.req.url === pathname ? [entry.pid] : []
  })
}

async function headOffset (url: string): Promise<number> {
  const head = await send(url, 'HEAD', TUS)
  if (head.statusCode !== 200) throw new Error(`HEAD ${head.statusCode}`)
  return Number(head.headers['upload-offset'])
}

t.test('--workers 2: one port, the chunks of one upload on both workers, SIGTERM stops all', async (t) => {
  const { server, endpoint, completedDir } = await serveWorkers(t, '2')
  t.equal(server.match[2], '2', 'two workers announced')
  const body = randomBytes(64 * KiB)
  const url = await create(endpoint, { 'upload-length': String(body.length) })
  // A connection of its own per chunk: the primary hands connections to the workers in turn.
  for (let offset = 0; offset < body.length; offset += 8 * KiB) {
    const outcome = await rawSend(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': String(offset) }, body.subarray(offset, offset + 8 * KiB))
    t.equal(outcome.response?.statusCode, 204, `chunk at ${offset}`)
  }
  const pids = await waitFor('the log lines of eight PATCHes', async () => {
    const seen = handlers(server, 'PATCH', url)
    return seen.length === 8 ? seen : undefined
  })
  const distinct = new Set(pids)
  t.comment(`PATCHes per worker: ${[...distinct].map((pid) => pids.filter((each) => each === pid).length).join(', ')}`)
  t.equal(distinct.size, 2, 'the chunks were served by two worker processes')
  t.notOk(distinct.has(server.child.pid!), 'none by the primary')
  t.equal(sha256(await readFile(path.join(completedDir, idOf(url)))), sha256(body), 'the upload is whole')

  server.child.kill('SIGTERM')
  const exit = await exitWithin(server, 10_000)
  t.strictSame(exit, { code: 0, signal: null }, 'SIGTERM: the primary and its workers stop with code 0')
  for (const pid of distinct) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`)
})

t.test('a worker SIGKILLed mid-upload is replaced; the client resumes from HEAD and finishes', async (t) => {
  const { server, endpoint, completedDir } = await serveWorkers(t, '2')
  const body = randomBytes(512 * KiB)
  const url = await create(endpoint, { 'upload-length': String(body.length) })
  const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0' })
  await raw.write(body.subarray(0, 128 * KiB))
  const [victim] = await waitFor('the PATCH in a worker\'s log', async () => {
    const seen = handlers(server, 'PATCH', url)
    return seen.length === 1 ? seen : undefined
  })
  process.kill(victim, 'SIGKILL')
  t.ok((await raw.settled).error !== undefined, 'the client\'s connection dies with its worker')
  await waitFor('a replacement worker', async () => /fastify-tus worker \d+ listening/.test(server.stdout()) ? true : undefined, 20_000)
  t.match(server.stderr(), new RegExp(`worker ${victim} died \\(SIGKILL\\); starting another`), 'the primary says what happened')

  // The dead worker's lock died with it: the upload answers, at what was recorded.
  const offset = await headOffset(url)
  t.ok(offset >= 0 && offset <= 128 * KiB, `HEAD after the kill: ${offset}`)
  const rest = await rawSend(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': String(offset) }, body.subarray(offset))
  t.equal(rest.response?.statusCode, 204, 'the rest is accepted')
  t.equal(sha256(await readFile(path.join(completedDir, idOf(url)))), sha256(body), 'and the upload is byte-identical')
  t.equal(server.child.exitCode, null, 'the primary lives on')
})

t.test('--workers 0 starts one per CPU', async (t) => {
  const { server } = await serveWorkers(t, '0', 'warn')
  t.equal(Number(server.match[2]), availableParallelism(), `${availableParallelism()} workers`)
  server.child.kill('SIGTERM')
  t.strictSame(await exitWithin(server, 10_000), { code: 0, signal: null })
})

t.test('workers that cannot start are not restarted in a loop: the primary exits 1', async (t) => {
  const root = await tempDir(t)
  const ran = await runNode([CLI, 'serve', '--port', '0', '--workers', '2', '--extensions', 'nonsense', '--directory', path.join(root, 'u'), '--completed-dir', path.join(root, 'c')], { cwd: root, timeout: 30_000 })
  t.equal(ran.code, 1, 'exit code 1')
  t.match(ran.stderr, /FST_TUS_INVALID_OPTION|extensions/, 'the worker\'s error is shown')
  t.match(ran.stderr, /exited \(code 1\) before it listened; stopping/, 'and why the primary stopped')
  t.notMatch(ran.stdout, /listening on/, 'nothing listened')
})

t.test('--workers needs a number', async (t) => {
  const ran = await runNode([CLI, 'serve', '--workers', 'many'], { cwd: await tempDir(t) })
  t.equal(ran.code, 1)
  t.match(ran.stderr, '--workers needs a non-negative integer, got "many"')
})

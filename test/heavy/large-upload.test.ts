// One PATCH of 1 GiB to `fastify-tus serve` running as its own process: the
// file arrives intact, and the server's memory does not grow with the size of
// the body (the body is a stream from socket to file, never buffered).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createCipheriv, createHash, type Hash } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { create, idOf, tempDir } from '../helpers'
import { PATCH_HEADERS, assertCompleted, waitFor } from '../interop-helpers'
import { streamRequest } from '../raw-client'

const MiB = 1024 * 1024
const root = path.join(__dirname, '..', '..')
const cli = path.join(root, 'dist', 'cli', 'index.js')

function ensureBuilt (): void {
  if (existsSync(cli)) return
  const build = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  if (build.status !== 0) throw new Error(`the build failed (${build.status})`)
}

interface CliServer { endpoint: string, pid: number, directory: string, completedDir: string }

async function startCliServer (t: Test): Promise<CliServer> {
  const temp = await tempDir(t)
  const directory = path.join(temp, 'uploads')
  const completedDir = path.join(temp, 'completed')
  const child: ChildProcess = spawn(process.execPath, [
    cli, 'serve', '--port', '0', '--directory', directory, '--completed-dir', completedDir, '--log-level', 'warn'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  })
  // Logs are kept for the failure message; both pipes are always drained.
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const endpoint = await waitFor('the server to listen', async () => {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}: ${output}`)
    return /fastify-tus listening on (http:\/\/127\.0\.0\.1:\d+\/files)\n/.exec(output)?.[1]
  }, 15_000)
  return { endpoint, pid: child.pid!, directory, completedDir }
}

// The server's memory, from the kernel: current RSS, and the high-water mark since the last reset.
function memory (pid: number): { rss: number, hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kB = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)![1]) * 1024
  return { rss: kB('VmRSS'), hwm: kB('VmHWM') }
}

// Writing 5 to clear_refs resets VmHWM (Linux 4.0+), so each upload gets its own peak.
function resetPeak (pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

// Deterministic pseudo-random bytes in 1 MiB blocks (AES-CTR keystream), hashed as they go out.
function generated (size: number, hash: Hash): Readable {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, size % 251))
  const zeros = Buffer.alloc(MiB)
  return Readable.from((function * () {
    for (let sent = 0; sent < size; sent += MiB) {
      const block = cipher.update(sent + MiB <= size ? zeros : zeros.subarray(0, size - sent))
      hash.update(block)
      yield block
    }
  })(), { objectMode: false, highWaterMark: MiB })
}

interface Measured { peak: number, seconds: number, mibPerSecond: number }

async function uploadInOnePatch (t: Test, server: CliServer, size: number): Promise<Measured> {
  const url = await create(server.endpoint, { 'upload-length': String(size) })
  const hash = createHash('sha256')
  const resetOk = resetPeak(server.pid)
  let sampled = memory(server.pid).rss
  const sampler = setInterval(() => { sampled = Math.max(sampled, memory(server.pid).rss) }, 20)
  const started = process.hrtime.bigint()
  const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(size) })
  generated(size, hash).pipe(raw.request)
  const outcome = await raw.settled
  if (outcome.error !== undefined) throw outcome.error
  const answer = outcome.response
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearInterval(sampler)
  const { rss, hwm } = memory(server.pid)
  const peak = Math.max(sampled, rss, resetOk ? hwm : 0)
  t.equal(answer.statusCode, 204, `the ${size / MiB} MiB PATCH succeeds`)
  t.equal(answer.headers['upload-offset'], String(size), 'and reports the full length')
  t.equal(answer.headers['tus-resumable'], '1.0.0')
  await assertCompleted(t, server, { id: idOf(url), sha256: hash.digest('hex'), length: size })
  const mibPerSecond = size / MiB / seconds
  t.comment(`${size / MiB} MiB in one PATCH: ${seconds.toFixed(1)} s, ${mibPerSecond.toFixed(0)} MiB/s; ` +
    `server RSS peak ${(peak / MiB).toFixed(1)} MiB (sampled max ${(sampled / MiB).toFixed(1)}, VmHWM ${(hwm / MiB).toFixed(1)}${resetOk ? ', reset before the upload' : ', not resettable'})`)
  return { peak, seconds, mibPerSecond }
}

t.test('1 GiB in one PATCH to a separate server process, in bounded memory', async (t) => {
  ensureBuilt()
  const server = await startCliServer(t)
  t.comment(`server RSS at rest: ${(memory(server.pid).rss / MiB).toFixed(1)} MiB`)
  const small = await uploadInOnePatch(t, server, 64 * MiB)
  const large = await uploadInOnePatch(t, server, 1024 * MiB)
  t.ok(large.peak < 150 * MiB, `peak RSS during 1 GiB under 150 MiB (${(large.peak / MiB).toFixed(1)} MiB)`)
  t.ok(large.peak - small.peak <= 40 * MiB,
    `peak RSS does not grow with the body: 1 GiB ${(large.peak / MiB).toFixed(1)} MiB vs 64 MiB ${(small.peak / MiB).toFixed(1)} MiB`)
})

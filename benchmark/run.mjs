#!/usr/bin/env node
// fastify-tus against @tus/server (and two ceilings) in one run: each server in
// its own fresh process and temporary directory per run, rounds interleaved
// (A, B, A, B ...), medians reported with ratios to @tus/server.
// `node benchmark/run.mjs --help` for the options; benchmark/README.md for the columns.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  GiB, KiB, MiB, TusClient, chunkedPatches, expectedBytes, headSetup, heads, parallelUploads, percentile, singlePatch, smallUploads
} from './load.mjs'
import { cpuTimes, machine, memory, resetPeak, sampleRss } from './proc.mjs'
import { summarise } from './profile-summary.mjs'
import { readmeTable, writeReadmeTable } from './readme-table.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.join(here, '..')

const HELP = `Usage: node benchmark/run.mjs [options]   (npm run bench -- [options] builds dist first)

  --scale X          size and count factor; 0.05 for a quick check (env BENCH_SCALE, default 1)
  --rounds N         runs per server per scenario, interleaved (env BENCH_ROUNDS, default 5)
  --memory-rounds N  runs per server of the memory scenario (env BENCH_MEMORY_ROUNDS, default 3)
  --servers LIST     comma-separated keys: fastify-tus,fastify-tus-nofsync,fastify-tus-logger,
                     fastify-tus-serve,fastify-tus-serve-2,tus-server,fsync-sink,sink,fastify-sink
                     (env BENCH_SERVERS, default all)
  --scenarios LIST   comma-separated ids: 1,2,3,4,5,6,7 (env BENCH_SCENARIOS, default all)
  --profile DIR      run the fastify-tus servers under node --cpu-prof, profiles in DIR, and
                     print their top self-time functions (slows them down: not for figures)
  --json FILE        also write every run's raw figures as JSON
  --write            also write the report to benchmark/results.md and its table into README.md
  -h, --help         this help
`

process.on('uncaughtException', (error) => {
  // A bad option or a broken harness: say what, without a trace for the former.
  process.stderr.write(`${String(error.code).startsWith('ERR_PARSE_ARGS') || error.usage === true ? error.message : error.stack}\n`)
  process.exit(2)
})

const { values: flags } = parseArgs({
  strict: true,
  options: {
    scale: { type: 'string', default: process.env.BENCH_SCALE ?? '1' },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '5' },
    'memory-rounds': { type: 'string', default: process.env.BENCH_MEMORY_ROUNDS ?? '3' },
    servers: { type: 'string', default: process.env.BENCH_SERVERS ?? '' },
    scenarios: { type: 'string', default: process.env.BENCH_SCENARIOS ?? '' },
    profile: { type: 'string', default: process.env.BENCH_PROFILE },
    json: { type: 'string' },
    write: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (flags.help) {
  process.stdout.write(HELP)
  process.exit(0)
}

const scale = positive('--scale', flags.scale)
const rounds = Math.round(positive('--rounds', flags.rounds))
const memoryRounds = Math.round(positive('--memory-rounds', flags['memory-rounds']))

function positive (name, text) {
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) throw usage(`${name} needs a positive number, got "${text}"`)
  return value
}

// A size scaled down for quick runs, in whole 64 KiB blocks.
const scaled = (bytes, least = 64 * KiB) => Math.max(least, Math.round((bytes * scale) / (64 * KiB)) * 64 * KiB)

const SERVERS = [
  { key: 'fastify-tus', label: 'fastify-tus (fsync)', script: 'fastify-tus.mjs', args: ['--fsync', 'on'], dataDir: 'completed', profiled: true },
  { key: 'fastify-tus-nofsync', label: 'fastify-tus (no fsync)', script: 'fastify-tus.mjs', args: ['--fsync', 'off'], dataDir: 'completed', profiled: true },
  // What users run: an app with Fastify's logger at info (pino to stdout), and `fastify-tus serve` with
  // its defaults (logger, under-pressure, janitor), so that each layer's cost shows beside the bare app.
  { key: 'fastify-tus-logger', label: 'fastify-tus, logger: info', script: 'fastify-tus.mjs', args: ['--fsync', 'on', '--logger', 'info'], dataDir: 'completed', profiled: true },
  {
    key: 'fastify-tus-serve',
    label: 'fastify-tus serve (defaults)',
    argv: (dir) => [path.join(root, 'dist', 'cli', 'index.js'), 'serve', '--port', '0', '--directory', path.join(dir, 'uploads'), '--completed-dir', path.join(dir, 'completed')],
    dataDir: 'completed',
    profiled: true
  },
  // The same with two node:cluster workers (CPU and RSS summed over the processes). Not profiled:
  // the workers would inherit the primary's --cpu-prof and its file name.
  {
    key: 'fastify-tus-serve-2',
    label: 'fastify-tus serve --workers 2',
    argv: (dir) => [path.join(root, 'dist', 'cli', 'index.js'), 'serve', '--workers', '2', '--port', '0', '--directory', path.join(dir, 'uploads'), '--completed-dir', path.join(dir, 'completed')],
    dataDir: 'completed'
  },
  { key: 'tus-server', label: '@tus/server', script: 'tus-server.mjs', args: [], dataDir: 'files' },
  { key: 'fsync-sink', label: 'fsync-sink (disk ceiling)', script: 'fsync-sink.mjs', args: [], dataDir: 'files', ceiling: true },
  // Keeps nothing: its uploads are checked by HEAD.
  { key: 'sink', label: 'sink (HTTP ceiling)', script: 'sink.mjs', args: [], dataDir: null, ceiling: true },
  { key: 'fastify-sink', label: 'fastify-sink (Fastify ceiling)', script: 'fastify-sink.mjs', args: [], dataDir: null, ceiling: true }
]
const BASELINE = 'tus-server'
// Share of one core the client may use before its figures are flagged as possibly client-bound.
const CLIENT_BOUND = 0.8
const RUN_TIMEOUT = Number(process.env.BENCH_RUN_TIMEOUT ?? 300)

const size1 = scaled(GiB, MiB)
const chunk2 = 8 * MiB
const count3 = Math.max(64, Math.round(2000 * scale))
const small3 = 64 * KiB
const size4 = scaled(64 * MiB, 256 * KiB)
const headSeconds = Math.max(1, 10 * scale)
const mem6 = [scaled(256 * MiB, MiB), scaled(4 * GiB, 16 * MiB)]

const all = SERVERS.map((server) => server.key)
const protocolOnly = SERVERS.filter((server) => server.ceiling !== true).map((server) => server.key)
const SCENARIOS = [
  {
    id: '1', title: `${bytes(size1)} in one PATCH`, servers: all, connections: 1, unit: 'bytes',
    run: (client) => singlePatch(client, size1)
  },
  {
    id: '2', title: `${bytes(size1)} in ${bytes(chunk2)} PATCHes`, servers: all, connections: 1, unit: 'bytes',
    run: (client) => chunkedPatches(client, size1, chunk2)
  },
  {
    id: '3', title: `${count3} × ${bytes(small3)} creation-with-upload, concurrency 32`, servers: all, connections: 32, unit: 'uploads',
    run: (client) => smallUploads(client, count3, small3, 32),
    count: count3
  },
  {
    id: '4', title: `32 × ${bytes(size4)} in parallel`, servers: all, connections: 32, unit: 'bytes',
    run: (client) => parallelUploads(client, 32, size4)
  },
  {
    id: '5', title: `HEAD, concurrency 64, 100 uploads, ${headSeconds} s`, servers: [...protocolOnly, 'sink', 'fastify-sink'], connections: 64, unit: 'requests',
    setup: (client) => headSetup(client, 100, MiB),
    run: (client, state) => heads(client, state, headSeconds, 64)
  },
  ...mem6.map((size, index) => ({
    id: `6${'ab'[index]}`, title: `memory: ${bytes(size)} in one PATCH`, servers: ['fastify-tus', 'fastify-tus-serve', 'tus-server', 'fastify-sink'], connections: 1, unit: 'bytes',
    rounds: memoryRounds, memory: true,
    run: (client) => singlePatch(client, size)
  }))
]

const chosenServers = list(flags.servers, all, 'server')
const chosenScenarios = flags.scenarios === ''
  ? SCENARIOS
  : SCENARIOS.filter((scenario) => flags.scenarios.split(',').some((id) => id.trim() !== '' && scenario.id.startsWith(id.trim())))
// Scenario 7 (claims with a backlog) has no server and no rounds: benchmark/claims.mjs runs it in its own process.
const claimsChosen = flags.scenarios === '' || flags.scenarios.split(',').some((id) => id.trim() === '7')
const claimCounts = [1000, 10_000, 50_000].map((count) => Math.max(200, Math.round(count * scale)))
if (chosenScenarios.length === 0 && !claimsChosen) throw usage(`no scenario matches "${flags.scenarios}"`)

function list (text, known, what) {
  if (text === '') return known
  const names = text.split(',').map((name) => name.trim()).filter((name) => name !== '')
  for (const name of names) if (!known.includes(name)) throw usage(`unknown ${what} "${name}"; known: ${known.join(', ')}`)
  return names
}

function usage (message) {
  return Object.assign(new Error(message), { usage: true })
}

// ---------------------------------------------------------------- servers

async function startServer (server, dir, profile) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnServer(server, dir, profile)
    } catch (error) {
      // dist/ may be in the middle of a rebuild by someone else's `npm run build`.
      if (attempt === 3) throw error
      process.stderr.write(`  ${server.key} did not start (${error.message.split('\n')[0]}); retrying\n`)
      await sleep(2000)
    }
  }
}

function spawnServer (server, dir, profile) {
  const execArgv = profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile.dir, '--cpu-prof-name', profile.name]
  const argv = server.argv?.(dir) ?? [path.join(here, 'servers', server.script), '--dir', dir, ...server.args]
  // stdout goes to a file, as a server's log would: through a pipe, a harness busy with the load
  // would read it late and a logging server would block on a full pipe (pino writes synchronously).
  const stdoutFile = path.join(dir, 'stdout.log')
  const stdoutFd = openSync(stdoutFile, 'w')
  const child = spawn(process.execPath, [...execArgv, ...argv], {
    cwd: root,
    stdio: ['ignore', stdoutFd, 'pipe']
  })
  closeSync(stdoutFd)
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (text) => { stderr = (stderr + text).slice(-4000) })
  let exited = false
  const exit = once(child, 'exit').then(
    ([code, signal]) => { exited = true; return { code, signal } },
    (error) => { exited = true; return { code: error.message } } // could not be spawned at all
  )
  const handle = {
    pid: child.pid,
    stderr: () => stderr,
    alive: () => !exited,
    async stop () {
      if (exited) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exit
      clearTimeout(timer)
    }
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { void handle.stop(); reject(new Error(`${server.key}: no port after 30 s\n${stderr}`)) }, 30_000)
    // The ready line: a bare port (the benchmark's servers) or serve's "listening on http://host:port/...",
    // maybe after log lines (with --workers, the primary's, once all of them listen); looked for in the file until it is there.
    const poll = setInterval(() => {
      const port = /^(?:(\d+)|fastify-tus listening on http:\/\/[^\s/]*:(\d+)\S*(?: \(\d+ workers\))?)$/m.exec(readFileSync(stdoutFile, 'utf8'))
      if (port === null) return
      clearInterval(poll)
      clearTimeout(timer)
      handle.origin = `http://127.0.0.1:${Number(port[1] ?? port[2])}`
      resolve(handle)
    }, 20)
    exit.then(({ code, signal }) => {
      clearInterval(poll)
      clearTimeout(timer)
      reject(new Error(`${server.key} exited (${code ?? signal}) before it was ready\n${stderr}`))
    })
  })
}

// ---------------------------------------------------------------- one run

async function runOnce (server, scenario, round) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fastify-tus-bench-'))
  const profile = flags.profile !== undefined && server.profiled === true
    ? { dir: path.resolve(flags.profile), name: `${server.key}-s${scenario.id}-r${round}.cpuprofile` }
    : undefined
  let child
  let client
  try {
    child = await startServer(server, dir, profile)
    const { pid } = child
    client = new TusClient(child.origin, scenario.connections)
    // Warm-up, untimed: the first request compiles the hot paths of every server alike.
    const warm = await client.create(64 * KiB, 64 * KiB)
    await client.head(warm)
    const state = scenario.setup === undefined ? undefined : await scenario.setup(client)

    resetPeak(pid)
    const rssBefore = memory(pid).rss
    const clientCpu = process.cpuUsage()
    const cpuBefore = cpuTimes(pid)
    const stopSampling = sampleRss(pid)
    const start = performance.now()
    let result, wall, sampledPeak
    // A server that stops answering is killed, which fails the run instead of hanging the benchmark.
    let hung = false
    const watchdog = setTimeout(() => { hung = true; void child.stop() }, RUN_TIMEOUT * 1000)
    try {
      result = await scenario.run(client, state)
    } catch (error) {
      if (hung) error.message = `no answer within ${RUN_TIMEOUT} s (BENCH_RUN_TIMEOUT): ${error.message}`
      throw error
    } finally {
      clearTimeout(watchdog)
      wall = (performance.now() - start) / 1000
      sampledPeak = stopSampling()
    }
    const cpuAfter = cpuTimes(pid)
    const cpuUser = cpuAfter.user - cpuBefore.user
    const cpuSystem = cpuAfter.system - cpuBefore.system
    const { hwm } = memory(pid)
    const clientSeconds = cpuUsageSeconds(process.cpuUsage(clientCpu))

    await verify(server, dir, client, result, scenario)
    return {
      wall,
      cpu: cpuUser + cpuSystem,
      cpuSystem,
      clientCpu: clientSeconds,
      bytes: result.bytes,
      ops: result.ops,
      rssBefore,
      peakRss: Math.max(hwm, sampledPeak),
      sampledPeakRss: sampledPeak,
      p50: percentile(result.latencies, 50),
      p99: percentile(result.latencies, 99)
    }
  } catch (error) {
    if (child !== undefined && child.stderr() !== '') error.message += `\n  server stderr: ${child.stderr().trim()}`
    throw error
  } finally {
    await client?.close().catch(() => {})
    await child?.stop()
    retire(dir)
    // The next run starts with no dirty pages of this one waiting for writeback.
    execFileSync('sync')
  }
}

// A run's files are emptied now and deleted when the benchmark ends. On ext4
// without a journal, a new inode is never one freed in the last minute (six
// while its inode table block is dirty): the allocator checks each in turn, so
// a run right after the deletion of the last run's thousands of files spent
// most of its system time there (1.5 ms more per upload of scenario 3,
// measured), a cost of the harness, not of the server under test.
const retired = []
function retire (dir) {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) truncateSync(path.join(entry.parentPath, entry.name))
  }
  retired.push(dir)
}
process.on('exit', () => {
  for (const dir of retired) rmSync(dir, { recursive: true, force: true })
})

const cpuUsageSeconds = ({ user, system }) => (user + system) / 1e6

// Outside the timed path: the sample upload holds the bytes that were sent, at
// its start and at its end (a preallocated file has the right size either way).
async function verify (server, dir, client, result, scenario) {
  const { sample } = result
  if (sample === null) return // checked answer by answer during the run
  if (server.dataDir === null) {
    const headers = await client.head(sample.path)
    if (headers['upload-offset'] !== String(sample.size)) throw new Error(`verify: server holds ${headers['upload-offset']} of ${sample.size} bytes`)
    return
  }
  const dataDir = path.join(dir, server.dataDir)
  const file = path.join(dataDir, sample.path.split('/').pop())
  const { size } = statSync(file)
  if (size !== sample.size) throw new Error(`verify: ${path.basename(file)} has ${size} bytes, expected ${sample.size}`)
  const probe = Math.min(64 * KiB, sample.size)
  for (const start of new Set([0, sample.size - probe])) {
    const actual = Buffer.alloc(probe)
    const fd = openSync(file, 'r')
    try {
      readSync(fd, actual, 0, probe, start)
    } finally {
      closeSync(fd)
    }
    if (!actual.equals(expectedBytes(start, probe))) throw new Error(`verify: ${path.basename(file)} differs from what was sent at ${start}`)
  }
  if (scenario.count !== undefined) {
    // Every upload landed: data files are the entries without a dot (records have one).
    const files = readdirSync(dataDir).filter((name) => !name.includes('.')).length
    if (files < scenario.count) throw new Error(`verify: ${files} data files for ${scenario.count} uploads`)
  }
}

// ---------------------------------------------------------------- the report

const median = (values) => {
  const sorted = values.filter((value) => value !== undefined).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

const UNITS = {
  bytes: { rate: 'MiB/s', per: 's/GiB', amount: (run) => run.bytes / MiB, cpuBase: (run) => run.bytes / GiB },
  uploads: { rate: 'uploads/s', per: 's/1k uploads', amount: (run) => run.ops, cpuBase: (run) => run.ops / 1000 },
  requests: { rate: 'req/s', per: 's/1k req', amount: (run) => run.ops, cpuBase: (run) => run.ops / 1000 }
}

function figures (scenario, runs) {
  const ok = runs.filter((run) => run.error === undefined)
  if (ok.length === 0) return undefined
  const unit = UNITS[scenario.unit]
  const rates = ok.map((run) => unit.amount(run) / run.wall)
  const rate = median(rates)
  return {
    runs: ok.length,
    failed: runs.length - ok.length,
    rate,
    spread: ok.length > 1 ? (Math.max(...rates) - Math.min(...rates)) / rate : 0,
    wall: median(ok.map((run) => run.wall)),
    cpu: median(ok.map((run) => run.cpu / unit.cpuBase(run))),
    system: median(ok.map((run) => run.cpu === 0 ? 0 : run.cpuSystem / run.cpu)),
    clientCpu: median(ok.map((run) => run.clientCpu / unit.cpuBase(run))),
    clientBusy: median(ok.map((run) => run.clientCpu / run.wall)),
    rss: median(ok.map((run) => run.peakRss)) / MiB,
    idle: median(ok.map((run) => run.rssBefore)) / MiB,
    p50: median(ok.map((run) => run.p50)),
    p99: median(ok.map((run) => run.p99))
  }
}

function number (value, digits) {
  if (value === undefined || !Number.isFinite(value)) return '–'
  if (digits !== undefined) return value.toFixed(digits)
  const magnitude = Math.abs(value)
  return value.toFixed(magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3)
}

const ratio = (value, base) => value === undefined || base === undefined || base === 0 ? '–' : `${number(value / base, 2)}×`

function report (results, info, elapsed) {
  const lines = []
  lines.push('# fastify-tus benchmark', '')
  lines.push(`Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${(elapsed / 60).toFixed(1)} min; scale ${scale}; rounds per server: ${rounds} (memory: ${memoryRounds}); medians; ` +
    'each run on a fresh server process and temporary directory.', '')
  lines.push('| machine | |', '| --- | --- |')
  for (const [key, value] of Object.entries(info)) lines.push(`| ${key} | ${value} |`)
  lines.push('')
  lines.push('Ratios are to @tus/server in the same scenario: above 1× is faster for throughput, below 1× is cheaper for CPU and RSS. ' +
    '± is the spread of the throughput (max − min) / median; † marks a figure whose client used over 80% of a core, so it may be the client\'s limit. CPU is the server process\'s user + system time (all threads) over the timed part, with the share of system time.', '')
  lines.push('Scenarios:', '')
  for (const { scenario } of results) lines.push(`- **${scenario.id}**: ${scenario.title}`)
  lines.push('')
  lines.push('| # | server | throughput | ×tus | wall s | server CPU | ×tus | peak RSS MiB | ×tus | p50 / p99 ms |')
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const { scenario, byServer } of results) {
    const unit = UNITS[scenario.unit]
    const base = byServer.get(BASELINE)?.figures
    for (const [key, { figures: f, runs }] of byServer) {
      const label = SERVERS.find((server) => server.key === key).label
      if (f === undefined) {
        lines.push(`| ${scenario.id} | ${label} | failed (${runs.length} of ${runs.length}) | | | | | | | |`)
        continue
      }
      // The client used most of a core: the figure may be the client's limit, not the server's.
      const clientBound = f.clientBusy >= CLIENT_BOUND ? ' †' : ''
      const throughput = `${number(f.rate)} ${unit.rate}${clientBound}${f.runs > 1 ? ` ±${number(100 * f.spread, 0)}%` : ''}${f.failed > 0 ? ` (${f.failed} failed)` : ''}`
      const latency = f.p50 === undefined ? '' : `${number(f.p50)} / ${number(f.p99)}`
      lines.push(`| ${scenario.id} | ${label} | ${throughput} | ${ratio(f.rate, base?.rate)} | ${number(f.wall)} | ${number(f.cpu)} ${unit.per} (${number(100 * f.system, 0)}% sys) | ` +
        `${ratio(f.cpu, base?.cpu)} | ${number(f.rss, 0)} | ${ratio(f.rss, base?.rss)} | ${latency} |`)
    }
  }
  const memoryRows = memoryTable(results)
  if (memoryRows.length > 0) {
    lines.push('', 'Memory (scenario 6): peak RSS of the server process during one upload in one PATCH; ' +
      'idle is its RSS just before the upload. A server that streams stays flat as the upload grows.', '')
    lines.push(`| server | idle | ${bytes(mem6[0])} | ${bytes(mem6[1])} | growth |`, '| --- | --- | --- | --- | --- |')
    lines.push(...memoryRows)
  }
  return lines.join('\n') + '\n'
}

function memoryTable (results) {
  const [small, big] = ['6a', '6b'].map((id) => results.find((entry) => entry.scenario.id === id))
  if (small === undefined || big === undefined) return []
  const rows = []
  for (const [key, { figures: f }] of big.byServer) {
    const g = small.byServer.get(key)?.figures
    const label = SERVERS.find((server) => server.key === key).label
    rows.push(`| ${label} | ${number(g?.idle, 0)} MiB | ${number(g?.rss, 0)} MiB | ${number(f?.rss, 0)} MiB | ${g && f ? `${number(f.rss - g.rss, 0)} MiB` : '–'} |`)
  }
  return rows
}

function bytes (value) {
  if (value >= GiB) return `${+(value / GiB).toFixed(2)} GiB`
  if (value >= MiB) return `${+(value / MiB).toFixed(1)} MiB`
  return `${+(value / KiB).toFixed(0)} KiB`
}

function versionOf (name) {
  try {
    return JSON.parse(readFileSync(path.join(root, 'node_modules', ...name.split('/'), 'package.json'), 'utf8')).version
  } catch {
    return '?'
  }
}

// ---------------------------------------------------------------- main

const info = {
  ...machine(),
  versions: `fastify-tus ${JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version}, fastify ${versionOf('fastify')}, ` +
    `@tus/server ${versionOf('@tus/server')}, @tus/file-store ${versionOf('@tus/file-store')}, undici ${versionOf('undici')}`
}
if (flags.profile !== undefined) mkdirSync(flags.profile, { recursive: true })

const started = performance.now()
const results = []
const plan = chosenScenarios.map((scenario) => ({
  scenario,
  servers: scenario.servers.filter((key) => chosenServers.includes(key)).map((key) => SERVERS.find((server) => server.key === key))
})).filter(({ servers }) => servers.length > 0)
const total = plan.reduce((sum, { scenario, servers }) => sum + servers.length * (scenario.rounds ?? rounds), 0)
let done = 0
let failures = 0
process.stderr.write(`fastify-tus benchmark: ${total} runs, scale ${scale}, tmpdir ${os.tmpdir()}\n`)

for (const { scenario, servers } of plan) {
  const byServer = new Map(servers.map((server) => [server.key, { runs: [] }]))
  for (let round = 1; round <= (scenario.rounds ?? rounds); round++) {
    for (const server of servers) {
      done++
      const tag = `[${done}/${total}] ${scenario.id}. ${scenario.title} · ${server.label} · round ${round}`
      let run
      try {
        run = await runOnce(server, scenario, round)
        const unit = UNITS[scenario.unit]
        process.stderr.write(`${tag}: ${number(unit.amount(run) / run.wall)} ${unit.rate}, ${number(run.wall)} s, ` +
          `server CPU ${number(run.cpu)} s (sys ${number(run.cpuSystem)}), client CPU ${number(run.clientCpu)} s, peak RSS ${number(run.peakRss / MiB, 0)} MiB` +
          `${run.p99 === undefined ? '' : `, p50 ${number(run.p50)} ms, p99 ${number(run.p99)} ms`}\n`)
      } catch (error) {
        failures++
        run = { error: error.message }
        const where = String(error.stack).split('\n').filter((line) => line.trimStart().startsWith('at ')).slice(0, 3)
        process.stderr.write(`${tag}: FAILED ${error.message}\n${where.join('\n')}\n`)
      }
      byServer.get(server.key).runs.push(run)
    }
  }
  for (const entry of byServer.values()) entry.figures = figures(scenario, entry.runs)
  results.push({ scenario, byServer })
}

let markdown = report(results, info, (performance.now() - started) / 1000)
if (claimsChosen) {
  process.stderr.write(`7. claims with ${claimCounts.join(', ')} uploads waiting\n`)
  markdown += execFileSync(process.execPath, [path.join(here, 'claims.mjs'), '--counts', claimCounts.join(',')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
}
process.stdout.write(`\n${markdown}`)
if (flags.write) {
  writeFileSync(path.join(here, 'results.md'), markdown)
  const format = (scenario, f) => `${number(f.rate)} ${UNITS[scenario.unit].rate}`
  writeReadmeTable(path.join(root, 'README.md'), readmeTable(results, { format, ratio, number, unitOf: (scenario) => UNITS[scenario.unit].per }))
  process.stderr.write('written to benchmark/results.md and the table in README.md\n')
}
if (flags.json !== undefined) {
  const raw = results.map(({ scenario, byServer }) => ({
    scenario: scenario.id,
    title: scenario.title,
    servers: Object.fromEntries([...byServer].map(([key, entry]) => [key, entry]))
  }))
  writeFileSync(flags.json, JSON.stringify({ info, scale, rounds, memoryRounds, results: raw }, null, 2))
}
if (flags.profile !== undefined) {
  for (const file of readdirSync(flags.profile).filter((name) => name.endsWith('.cpuprofile')).sort()) {
    process.stdout.write(`\n${summarise(path.join(flags.profile, file), 15)}\n`)
  }
}
if (failures > 0) {
  process.stderr.write(`${failures} run(s) failed\n`)
  process.exitCode = 1
}

// `fastify-tus upload` across runs: a client killed mid-upload, run again,
// continues from the server's offset; the URL store under concurrent writers;
// the progress bars on a terminal.
import { spawn } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { waitFor } from './interop-helpers'
import { CLI, ROOT, ensureFreshBuild, runNode, type Exit } from './process-helpers'
import { finished, loggingServer, scratch, startUpload, upload, urlOf, writeRandom, type Running, type Scratch } from './cli-upload-helpers'

ensureFreshBuild()

interface Teardown { teardown (fn: () => unknown): void }

const CHUNK = 256 * 1024

/** How a first run is cut off: killed, interrupted (Ctrl-C), or its connection dropped (a network loss). */
type Cut = 'SIGKILL' | 'SIGINT' | 'drop'

interface CutState {
  victim?: Running
  after: number
  cut: Cut
  done: boolean
  /** Awaited before cutting: what the client must have done first. */
  before?: () => Promise<void>
}

/**
 * A server that, when `victim` sends a PATCH from an offset past `after`
 * (so the server has recorded at least that much), cuts the client off and
 * answers that request without reading it: the server's offset stays where it was.
 */
function cutOnPatch (state: CutState) {
  return (app: FastifyInstance): void => {
    app.addHook('onRequest', async (request, reply) => {
      const victim = state.victim
      if (victim === undefined || state.done || request.method !== 'PATCH' || Number(request.headers['upload-offset']) < state.after) return
      state.done = true
      await state.before?.()
      if (state.cut === 'drop') {
        reply.hijack()
        request.raw.socket.destroy()
        return
      }
      victim.child.kill(state.cut)
      await victim.exit
      return await reply.code(503).header('connection', 'close').send()
    })
  }
}

interface Killed {
  server: Awaited<ReturnType<typeof loggingServer>>
  where: Scratch
  file: string
  bytes: Buffer
  /** The command both runs share. */
  args: string[]
  exit: Exit
  stderr: string
}

/** A first run of `upload FILE --chunk-size CHUNK ...flags`, cut off once the server holds `after` bytes of it. */
async function killedRun (t: Teardown, size: number, after: number, flags: (where: Scratch) => string[], cut: Cut = 'SIGKILL', before?: (where: Scratch) => Promise<void>): Promise<Killed> {
  const state: CutState = { after, cut, done: false }
  const server = await loggingServer(t, {}, cutOnPatch(state))
  const where = await scratch(t)
  const { file, bytes } = await writeRandom(where.dir, 'upload.webm', size)
  const args = [file, '--endpoint', server.endpoint, '--chunk-size', String(CHUNK), ...flags(where)]
  state.before = before === undefined ? undefined : async () => { await before(where) }
  state.victim = startUpload(t, where, args)
  const exit = await state.victim.exit
  return { server, where, file, bytes, args, exit, stderr: state.victim.stderr() }
}

function storePath (where: Scratch): string {
  return path.join(where.env.XDG_CONFIG_HOME as string, 'fastify-tus', 'uploads.json')
}

t.test('killed mid-upload, the same command continues from the server\'s offset: same URL, HEAD then PATCH, same bytes', async (t) => {
  // No --store: the default, under $XDG_CONFIG_HOME/fastify-tus/.
  const { server, where, file, bytes, args, exit: killed } = await killedRun(t, 6 * CHUNK + 1000, 2 * CHUNK, () => [])
  t.same(killed, { code: null, signal: 'SIGKILL' }, 'the first run was killed')
  const created = server.seen.filter((entry) => entry.method === 'POST' && entry.status === 201)
  t.equal(created.length, 1, 'the first run created one upload')
  const ids = (await readdirIds(server.directory))
  t.equal(ids.length, 1)
  const url = `${server.endpoint}/${ids[0]}`
  const record = JSON.parse(await readFile(path.join(server.directory, `${ids[0]}.meta`), 'utf8'))
  t.equal(record.offset, 2 * CHUNK, 'the server holds two chunks')
  const remembered = JSON.parse(await readFile(storePath(where), 'utf8'))
  t.same(Object.values(remembered.uploads).map((entry: any) => entry.uploadUrl), [url], 'the store remembers the upload URL')

  server.seen.length = 0
  const ran = await upload(where, args)
  t.equal(ran.code, 0, ran.stderr)
  t.equal(urlOf(ran.stdout, file), url, 'the second run reports the same URL')
  t.match(ran.stdout, `resumed at byte ${2 * CHUNK})`)
  const asked = server.seen.map((entry) => [entry.method, entry.url.slice(entry.url.lastIndexOf('/') + 1), entry.offset])
  t.same(asked.slice(0, 2), [['HEAD', ids[0], undefined], ['PATCH', ids[0], String(2 * CHUNK)]], 'it asked the offset, then sent from there')
  t.notOk(server.seen.some((entry) => entry.method === 'POST'), 'no new upload')
  t.equal(server.seen.filter((entry) => entry.method === 'PATCH').length, 5, 'only the chunks the server lacked')
  t.ok((await finished(server, url)).data.equals(bytes), 'the bytes are the file\'s')
  t.same(JSON.parse(await readFile(storePath(where), 'utf8')).uploads, {}, 'and the store forgets it')
})

for (const cut of ['SIGINT', 'drop'] as const) {
  t.test(`cut off by ${cut === 'drop' ? 'a lost connection' : 'Ctrl-C'}, it says so, and the next run resumes`, async (t) => {
    const { server, where, file, bytes, args, exit, stderr } = await killedRun(t, 4 * CHUNK, CHUNK, (where) => ['--store', where.store, '--retries', '0'], cut)
    if (cut === 'SIGINT') {
      t.same(exit, { code: 130, signal: null }, 'Ctrl-C: exit 130')
      t.match(stderr, 'fastify-tus upload: interrupted by SIGINT: run the same command again to resume')
    } else {
      t.same(exit, { code: 1, signal: null }, 'a lost connection without retries: exit 1')
      t.match(stderr, `${file}: no answer to PATCH ${server.endpoint}/`)
      t.match(stderr, 'after 0 retries (')
    }
    const [id] = await readdirIds(server.directory)
    server.seen.length = 0
    const ran = await upload(where, args)
    t.equal(ran.code, 0, ran.stderr)
    t.equal(urlOf(ran.stdout, file), `${server.endpoint}/${id}`, 'the same upload')
    t.match(ran.stdout, `resumed at byte ${CHUNK})`)
    t.same(server.seen.slice(0, 2).map((entry) => [entry.method, entry.offset]), [['HEAD', undefined], ['PATCH', String(CHUNK)]])
    t.ok((await finished(server, `${server.endpoint}/${id}`)).data.equals(bytes))
  })
}

t.test('--parallel killed mid-upload resumes its partial uploads and joins them', async (t) => {
  // tus-js-client remembers a parallel upload once every part has its URL, while the parts already send: wait for that.
  const remembered = async (where: Scratch): Promise<void> => {
    await waitFor('the parallel upload to be remembered', async () => {
      const text = await readFile(where.store, 'utf8').catch(() => '{"uploads":{}}')
      const entries = Object.values(JSON.parse(text).uploads) as Array<{ parallelUploadUrls?: string[] }>
      return entries.some((entry) => entry.parallelUploadUrls?.length === 2) ? true : undefined
    })
  }
  const { server, where, file, bytes, args } = await killedRun(t, 8 * CHUNK, CHUNK, (where) => ['--store', where.store, '--parallel', '2'], 'SIGKILL', remembered)
  const partials = server.seen.filter((entry) => entry.method === 'POST' && entry.status === 201).length
  t.equal(partials, 2, 'the first run created the two partial uploads')

  server.seen.length = 0
  const ran = await upload(where, args)
  t.equal(ran.code, 0, ran.stderr)
  const posts = server.seen.filter((entry) => entry.method === 'POST')
  t.same(posts.map((entry) => entry.concat?.split(';')[0]), ['final'], 'the second run created only the final upload')
  t.equal(server.seen.filter((entry) => entry.method === 'HEAD').length, 2, 'after asking both partials\' offsets')
  t.match(ran.stdout, /resumed at byte [1-9][0-9]*\)/)
  t.ok((await finished(server, urlOf(ran.stdout, file)!)).data.equals(bytes))
})

t.test('--no-resume starts a new upload instead', async (t) => {
  const { server, where, file, bytes, args } = await killedRun(t, 4 * CHUNK, CHUNK, (where) => ['--store', where.store])
  const [first] = await readdirIds(server.directory)

  server.seen.length = 0
  const ran = await upload(where, [...args, '--no-resume'])
  t.equal(ran.code, 0, ran.stderr)
  t.same(server.seen.map((entry) => entry.method), ['POST', 'PATCH', 'PATCH', 'PATCH', 'PATCH'], 'a new upload, from byte 0')
  t.not(urlOf(ran.stdout, file), `${server.endpoint}/${first}`)
  t.notMatch(ran.stdout, 'resumed')
  t.ok((await finished(server, urlOf(ran.stdout, file)!)).data.equals(bytes))
  t.same(await readdirIds(server.directory), [first], 'the old upload is left alone')
})

t.test('a remembered upload the server no longer has: a new one is made', async (t) => {
  const { server, where, file, bytes, args } = await killedRun(t, 3 * CHUNK, CHUNK, (where) => ['--store', where.store])
  const [first] = await readdirIds(server.directory)
  await server.app.tus.store.terminate(first)

  server.seen.length = 0
  const ran = await upload(where, args)
  t.equal(ran.code, 0, ran.stderr)
  t.same(server.seen.slice(0, 2).map((entry) => [entry.method, entry.status]), [['HEAD', 404], ['POST', 201]])
  t.ok((await finished(server, urlOf(ran.stdout, file)!)).data.equals(bytes))
})

async function readdirIds (dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => /^[0-9a-f-]{36}$/.test(name))
}

t.test('the URL store: processes writing at once lose nothing', async (t) => {
  const where = await scratch(t)
  const module = path.join(ROOT, 'dist', 'cli', 'upload-store.js')
  // Each writer adds its entries one by one, and removes every other one.
  const writer = (name: string): string => `
    const { UploadStore } = require(${JSON.stringify(module)})
    const store = new UploadStore(${JSON.stringify(where.store)})
    ;(async () => {
      for (let i = 0; i < 15; i++) {
        await store.addUpload('${name}-' + i, { size: i, metadata: {}, creationTime: '', uploadUrl: 'http://x/' + i, parallelUploadUrls: null })
        if (i % 2 === 1) await store.removeUpload('${name}-' + i)
      }
    })().catch((error) => { console.error(error); process.exit(1) })`
  const names = ['a', 'b', 'c', 'd', 'e', 'f']
  const runs = await Promise.all(names.map((name) => runNode(['-e', writer(name)])))
  t.same(runs.map((run) => run.code), names.map(() => 0), runs.map((run) => run.stderr).join(''))
  const stored = JSON.parse(await readFile(where.store, 'utf8'))
  const expected = names.flatMap((name) => Array.from({ length: 15 }, (_, i) => i).filter((i) => i % 2 === 0).map((i) => `${name}-${i}`))
  t.same(Object.keys(stored.uploads).sort(), expected.sort(), 'every entry added and not removed is there')
  t.same((await readdir(where.dir)).sort(), ['store.json', 'store.json.lock'], 'no temporary file left')
})

t.test('on a terminal: a progress bar with bytes, rate and ETA, then the result line', async (t) => {
  const server = await loggingServer(t)
  const where = await scratch(t)
  const { file, bytes } = await writeRandom(where.dir, 'bar.bin', 16 * CHUNK)
  const command = [process.execPath, CLI, 'upload', file, '--endpoint', server.endpoint, '--store', where.store, '--chunk-size', String(CHUNK)]
  // script(1) runs the command on a pseudo-terminal and copies what it prints.
  const child = spawn('script', ['-qfec', command.join(' '), '/dev/null'], { cwd: where.dir, env: { ...where.env, COLUMNS: '120' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let screen = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { screen += text })
  const code = await new Promise((resolve) => child.once('close', resolve))
  t.equal(code, 0, 'exit 0')
  t.match(screen, /bar\.bin \|[=-]+\| \d+% [0-9.]+ (B|KiB|MiB)\/4\.0 MiB /, 'a bar with bytes sent of the total')
  t.match(screen, /bar\.bin \|=+\| 100% 4\.0 MiB\/4\.0 MiB [0-9.]+ (B|KiB|MiB|GiB)\/s ETA/, 'at the end full, with a rate and an ETA')
  t.match(screen, '\u001b[', 'drawn with terminal control sequences')
  const url = urlOf(screen.replace(/\r/g, '').split('\n').map((line) => line.replace(/^.*\u001b\[1G/, '')).join('\n'), file)
  t.ok(url?.startsWith(`${server.endpoint}/`), 'the result line follows')
  t.ok((await finished(server, url!)).data.equals(bytes))
})

// `fastify-tus` on the command line: the built CLI in real processes, driven
// over HTTP on loopback.
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { TUS, create, idOf, patch, send, tempDir } from './helpers'
import { CLI, ensureBuilt, exitWithin, runNode, startNode, type Started } from './process-helpers'

ensureBuilt()

const LISTENING = /^fastify-tus listening on (http:\/\/127\.0\.0\.1:\d+\/files)$/m
// How long a signalled server may take to close with idle connections open: generous for a
// busy machine, and still far below the 72 s keep-alive timeout it would wait for otherwise.
const PROMPT_MS = 30_000

interface Served {
  server: Started
  endpoint: string
  directory: string
  completedDir: string
}

async function serve (t: tap.Test, flags: string[] = []): Promise<Served> {
  const root = await tempDir(t)
  const directory = path.join(root, 'uploads')
  const completedDir = path.join(root, 'completed')
  const server = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', directory, '--completed-dir', completedDir, '--log-level', 'warn', ...flags], LISTENING, { cwd: root })
  return { server, endpoint: server.match[1], directory, completedDir }
}

/** Sends `signal` and asserts the server exits 0 within PROMPT_MS. */
async function stops (t: tap.Test, server: Started, signal: NodeJS.Signals): Promise<void> {
  const started = Date.now()
  server.child.kill(signal)
  const exit = await exitWithin(server, PROMPT_MS)
  t.same(exit, { code: 0, signal: null }, `${signal} ends the server with code 0 within ${PROMPT_MS} ms (took ${Date.now() - started} ms)`)
}

/** Runs the CLI to its end in a scratch directory, so defaults like ./uploads land nowhere that matters. */
async function cli (t: tap.Test, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await runNode([CLI, ...args], { cwd: await tempDir(t) })
}

t.test('serve: limits from the flags, a full upload, SIGTERM', async (t) => {
  const { server, endpoint, completedDir } = await serve(t, ['--max-size', '100', '--max-chunk-size', '10'])

  const options = await send(endpoint, 'OPTIONS')
  t.equal(options.statusCode, 204)
  t.equal(options.headers['tus-version'], '1.0.0')
  t.equal(options.headers['tus-max-size'], '100', 'Tus-Max-Size is --max-size')

  const tooBig = await send(endpoint, 'POST', { ...TUS, 'upload-length': '101' })
  t.equal(tooBig.statusCode, 413)
  t.equal(tooBig.json().code, 'FST_TUS_MAX_SIZE_EXCEEDED')
  t.equal(tooBig.headers['tus-resumable'], '1.0.0')

  const url = await create(endpoint, { 'upload-length': '15', 'upload-metadata': `filename ${Buffer.from('a.txt').toString('base64')}` })
  t.match(url, `${endpoint}/`)
  const chunk = await patch(url, 0, 'x'.repeat(11))
  t.equal(chunk.statusCode, 413, 'a body over --max-chunk-size is refused')
  t.equal(chunk.json().code, 'FST_TUS_CHUNK_TOO_LARGE')
  t.equal(chunk.headers['tus-resumable'], '1.0.0')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-offset'], '0', 'nothing of the refused chunk was kept')

  const first = await patch(url, 0, '0123456789')
  t.equal(first.statusCode, 204)
  t.equal(first.headers['upload-offset'], '10')
  const last = await patch(url, 10, 'abcde')
  t.equal(last.statusCode, 204)
  t.equal(last.headers['upload-offset'], '15')
  t.equal(await readFile(path.join(completedDir, idOf(url)), 'utf8'), '0123456789abcde', 'the finished file is in --completed-dir')
  const record = JSON.parse(await readFile(path.join(completedDir, `${idOf(url)}.meta`), 'utf8'))
  t.match(record, { id: idOf(url), length: 15, offset: 15, metadata: { filename: 'a.txt' }, finishedAt: String })

  // --log-level warn: none of the info lines above (requests, 413s, completion) were printed.
  t.same(server.stdout().trim().split('\n'), [server.match[0], server.match[0].replace(/^fastify-tus listening on (.*)\/files$/, 'upload page: $1/')], 'stdout holds only the listening lines')
  // The client's keep-alive connection is still open: closing must not wait for it.
  await stops(t, server, 'SIGTERM')
})

t.test('serve logs uploads at info and every request only at debug', async (t) => {
  type Line = { msg: string, reqId?: string, uploadId?: string }
  const lines = async (level: string): Promise<Line[]> => {
    const { server, endpoint } = await serve(t, ['--log-level', level])
    const url = await create(endpoint, { 'upload-length': '5' })
    t.equal((await patch(url, 0, 'hello')).statusCode, 204)
    // A probe's route logs at warn at most, whatever the server's level.
    t.equal((await send(endpoint.replace(/\/files$/, '/health'), 'GET')).statusCode, 200)
    await stops(t, server, 'SIGTERM')
    return server.stdout().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
  }
  const [info, debug] = await Promise.all([lines('info'), lines('debug')])
  const messages = (entries: Line[]): string[] => entries.map((entry) => entry.msg)
  t.ok(messages(info).includes('upload created') && messages(info).includes('upload completed'), 'info: the upload\'s lifecycle')
  t.notOk(messages(info).some((msg) => msg === 'incoming request' || msg === 'request completed'), 'info: no line per request')
  t.equal(messages(debug).filter((msg) => msg === 'request completed').length, 2, 'debug: a line per request, none for the health probe')
  // Request loggers are made when first used: their lines still name the request and the upload.
  const created = info.find((line) => line.msg === 'upload created')
  const completed = info.find((line) => line.msg === 'upload completed')
  t.match(created, { reqId: /^req-/, uploadId: /^[0-9a-f-]{36}$/ }, 'info: the creation line names its request and upload')
  t.match(completed, { reqId: /^req-/, uploadId: created?.uploadId }, 'info: so does the completion line')
  t.not(created?.reqId, completed?.reqId, 'two requests, two ids')
  const requestIds = debug.filter((line) => line.msg === 'request completed').map((line) => line.reqId)
  t.equal(new Set(requestIds).size, 2, 'debug: each request line has its own request id')
  t.ok(requestIds.every((id) => typeof id === 'string' && id.startsWith('req-')), 'debug: request ids on every request line')
})

t.test('serve sizes libuv\'s thread pool for fsyncs, unless UV_THREADPOOL_SIZE says otherwise', async (t) => {
  // The pool starts, all its threads at once, with the first fsync: a finished upload has had some.
  const threadsAfterUpload = async (env: NodeJS.ProcessEnv): Promise<number> => {
    const root = await tempDir(t)
    // Without the test runner's coverage loader, which comes in NODE_OPTIONS and starts the pool before serve's first line.
    const launcher = ['/usr/bin/env', '-u', 'NODE_OPTIONS']
    const server = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', path.join(root, 'uploads'), '--completed-dir', path.join(root, 'completed'), '--log-level', 'warn'], LISTENING, { cwd: root, env, launcher })
    const url = await create(server.match[1], { 'upload-length': '5' })
    t.equal((await patch(url, 0, 'hello')).headers['upload-offset'], '5')
    const threads = (await readdir(`/proc/${server.child.pid!}/task`)).length
    await stops(t, server, 'SIGTERM')
    return threads
  }
  const { UV_THREADPOOL_SIZE: _unset, ...unset } = process.env
  t.ok(await threadsAfterUpload(unset) > 64, 'at least 64 pool threads by default')
  t.ok(await threadsAfterUpload({ ...unset, UV_THREADPOOL_SIZE: '2' }) < 32, 'the size set in the environment is kept')
})

t.test('serve --no-fsync, no limits, SIGINT', async (t) => {
  const { server, endpoint, completedDir } = await serve(t, ['--no-fsync'])
  const options = await send(endpoint, 'OPTIONS')
  t.equal(options.statusCode, 204)
  t.equal(options.headers['tus-max-size'], undefined, 'no Tus-Max-Size without --max-size')
  const url = await create(endpoint, { 'upload-length': '5' })
  const done = await patch(url, 0, 'hello')
  t.equal(done.statusCode, 204)
  t.equal(done.headers['upload-offset'], '5')
  t.equal(await readFile(path.join(completedDir, idOf(url)), 'utf8'), 'hello')
  await stops(t, server, 'SIGINT')
})

t.test('serve --help prints the flags and exits 0', async (t) => {
  const flags = ['--help', '-h']
  const runs = await Promise.all(flags.map((flag) => cli(t, ['serve', flag])))
  for (const [index, flag] of flags.entries()) {
    const ran = runs[index]
    t.equal(ran.code, 0, `serve ${flag} exits 0`)
    t.match(ran.stdout, /^Usage: fastify-tus serve/)
    for (const name of ['--port', '--host', '--directory', '--completed-dir', '--max-size', '--max-chunk-size', '--no-fsync', '--log-level', '--workers']) {
      t.match(ran.stdout, name, `the help names ${name}`)
    }
    t.equal(ran.stderr, '')
    t.notMatch(ran.stdout, /listening/, 'and starts no server')
  }
})

t.test('fastify-tus --help prints the commands and exits 0', async (t) => {
  const ran = await cli(t, ['--help'])
  t.equal(ran.code, 0)
  t.match(ran.stdout, /^Usage: fastify-tus <command>/)
  t.match(ran.stdout, /serve/)
  t.match(ran.stdout, /upload/)
  t.equal(ran.stderr, '')
})

t.test('no command prints the usage and exits 1', async (t) => {
  const ran = await cli(t, [])
  t.equal(ran.code, 1)
  t.match(ran.stdout + ran.stderr, /Usage: fastify-tus <command>/)
})

t.test('an unknown command exits 1 naming it', async (t) => {
  const ran = await cli(t, ['frobnicate'])
  t.equal(ran.code, 1)
  t.match(ran.stderr, /Unknown command "frobnicate"/)
  t.match(ran.stderr, /Usage: fastify-tus <command>/)
})

t.test('bad flags exit 1 with a message on stderr, before listening', async (t) => {
  const root = await tempDir(t)
  const dirs = ['--directory', path.join(root, 'u'), '--completed-dir', path.join(root, 'c')]
  const cases: Array<[string[], RegExp]> = [
    [['--port', 'x'], /--port/],
    [['--port', '-1'], /--port/],
    [['--port'], /--port/],
    [['--bogus'], /--bogus/],
    [['stray'], /stray/],
    [['--max-size', 'lots'], /--max-size/],
    [['--max-chunk-size', '1.5'], /--max-chunk-size/],
    // Values the flag parser lets through reach the plugin's own validation.
    [['--max-size', '0'], /maxSize/],
    [['--directory', path.join(root, 'same'), '--completed-dir', path.join(root, 'same')], /completedDir/]
  ]
  // Independent processes: run them side by side.
  const runs = await Promise.all(cases.map(([flags]) => cli(t, ['serve', '--port', '0', ...dirs, ...flags])))
  for (const [index, [flags, message]] of cases.entries()) {
    const ran = runs[index]
    t.equal(ran.code, 1, `serve ${flags.join(' ')} exits 1`)
    t.match(ran.stderr, message, `and says why: ${ran.stderr.trim().split('\n')[0]}`)
    t.notMatch(ran.stdout, /listening/)
  }
})

t.test('serve: --cors-origin, --expiration and --extensions', async (t) => {
  const { endpoint } = await serve(t, ['--cors-origin', 'https://a.example', '--cors-origin', 'https://b.example', '--expiration', '60000', '--extensions', 'creation,expiration,termination'])
  const options = await send(endpoint, 'OPTIONS')
  t.equal(options.headers['tus-extension'], 'creation,termination,expiration', 'only the listed extensions, in spec order')
  t.equal(options.headers['tus-checksum-algorithm'], undefined, 'no checksum offered')

  const before = Date.now()
  const allowed = await send(endpoint, 'POST', { ...TUS, 'upload-length': '5', origin: 'https://b.example' })
  const after = Date.now()
  t.equal(allowed.statusCode, 201)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://b.example', 'each --cors-origin is allowed')
  // An HTTP date has whole seconds: the creation's time plus --expiration, rounded down.
  const expires = Date.parse(String(allowed.headers['upload-expires']))
  t.ok(expires >= before + 60_000 - 1000 && expires <= after + 60_000, 'Upload-Expires is --expiration after the creation')
  const other = await send(endpoint, 'POST', { ...TUS, 'upload-length': '5', origin: 'https://c.example' })
  t.equal(other.headers['access-control-allow-origin'], undefined, 'other origins are not')
  const deferred = await send(endpoint, 'POST', { ...TUS, 'upload-defer-length': '1' })
  t.equal(deferred.statusCode, 400)
  t.equal(deferred.json().code, 'FST_TUS_EXTENSION_DISABLED', 'a left-out extension is refused')

  const any = await serve(t, ['--cors-origin', '*', '--expiration', '0'])
  const anyOrigin = await send(any.endpoint, 'POST', { ...TUS, 'upload-length': '5', origin: 'https://z.example' })
  t.equal(anyOrigin.headers['access-control-allow-origin'], '*', '--cors-origin * allows any origin')
  t.equal(anyOrigin.headers['upload-expires'], undefined, '--expiration 0: uploads never expire')

  const bad = await cli(t, ['serve', '--extensions', 'creation,teleport'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /extensions.*teleport/, 'an unknown extension is named')
})

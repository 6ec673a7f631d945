// `fastify-tus serve`: every flag of the table, what it sets, its effect on a
// real server process, its refusals; and the README true to both --help texts.
import { readFile, stat } from 'node:fs/promises'
import { connect } from 'node:net'
import path from 'node:path'
import t from 'tap'
import { parseServeArgs } from '../lib/cli/serve'
import { SERVE_FLAGS, serveHelp } from '../lib/cli/serve-flags'
import { UPLOAD_FLAGS, uploadHelp } from '../lib/cli/upload-flags'
import { TUS, create, send, tempDir } from './helpers'
import { waitFor } from './interop-helpers'
import { CLI, ROOT, ensureFreshBuild, runNode, startNode } from './process-helpers'

ensureFreshBuild()

const LISTENING = /^fastify-tus listening on (http:\/\/127\.0\.0\.1:\d+(\/[^\s]*))$/m

async function serve (t: { teardown (fn: () => unknown): void }, flags: string[] = []): Promise<{ endpoint: string, directory: string, completedDir: string }> {
  const root = await tempDir(t)
  const directory = path.join(root, 'uploads')
  const completedDir = path.join(root, 'completed')
  const server = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', directory, '--completed-dir', completedDir, '--log-level', 'warn', ...flags], LISTENING, { cwd: root })
  return { endpoint: server.match[1], directory, completedDir }
}

t.test('each flag sets its option', async (t) => {
  const cases: Array<[string[], (options: ReturnType<typeof parseServeArgs> & object) => unknown, unknown]> = [
    [['--prefix', '/up'], (o) => o.tus.prefix, '/up'],
    [['--directory-mode', '750'], (o) => o.tus.directoryMode, 0o750],
    [['--max-metadata-size', '99'], (o) => o.tus.maxMetadataSize, 99],
    [['--no-preallocate'], (o) => o.tus.preallocate, false],
    [['--idle-timeout', '0'], (o) => o.tus.idleTimeout, 0],
    [['--progress-interval', '250'], (o) => o.tus.progressInterval, 250],
    [['--max-reserved', '10%'], (o) => o.tus.maxReserved, '10%'],
    [['--max-reserved', '1048576'], (o) => o.tus.maxReserved, 1048576],
    [['--reservation-timeout', '0'], (o) => o.tus.reservationTimeout, 0],
    [['--janitor-interval', '0'], (o) => o.tus.janitor, false],
    [['--janitor-interval', '5000', '--stale-upload-age', '60000', '--completed-file-age', '120000'], (o) => o.tus.janitor, { interval: 5000, staleUploadAge: 60000, completedFileAge: 120000 }],
    [['--stale-upload-age', '7'], (o) => o.tus.janitor, { staleUploadAge: 7 }],
    [['--max-event-loop-delay', '0'], (o) => o.tus.underPressure, false],
    [['--max-event-loop-delay', '200'], (o) => o.tus.underPressure, { maxEventLoopDelay: 200 }],
    [['--max-heap-used', '4096'], (o) => o.tus.underPressure, { maxEventLoopDelay: 1000, maxHeapUsedBytes: 4096 }],
    [['--max-event-loop-delay', '0', '--max-heap-used', '4096'], (o) => o.tus.underPressure, { maxHeapUsedBytes: 4096 }],
    [['--min-free-space', '1048576'], (o) => o.tus.minFreeSpace, 1048576],
    [['--metrics', '--shutdown-timeout', '2500'], (o) => [o.metrics, o.shutdownTimeout], [true, 2500]],
    [[], (o) => [o.metrics, o.shutdownTimeout], [false, 10000]],
    [['--trust-proxy', 'true'], (o) => o.trustProxy, true],
    [['--trust-proxy', '127.0.0.1, 10.0.0.0/8,::1,fd00::/8,loopback'], (o) => o.trustProxy, ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8', 'loopback']],
    [[], (o) => [o.trustProxy, o.tus.janitor, o.tus.preallocate], [false, undefined, undefined]]
  ]
  for (const [args, pick, expected] of cases) {
    t.same(pick(parseServeArgs(args)!), expected, args.join(' ') || 'no flags')
  }
})

t.test('bad values exit 1 with a message naming the flag', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--trust-proxy', '1'], /--trust-proxy takes no hop count/],
    [['--trust-proxy', '10.0.0.0/33'], /--trust-proxy: "10.0.0.0\/33" is not an address/],
    [['--trust-proxy', 'proxy.example'], /--trust-proxy: "proxy.example"/],
    [['--trust-proxy'], /--trust-proxy/],
    [['--janitor-interval', 'soon'], /--janitor-interval needs a non-negative integer/],
    [['--stale-upload-age', '60000', '--janitor-interval', '0'], /no effect with --janitor-interval 0/],
    [['--stale-upload-age', '0'], /--stale-upload-age needs a positive integer/],
    [['--completed-file-age', 'x'], /--completed-file-age/],
    [['--progress-interval', '1e3'], /--progress-interval needs a non-negative integer/],
    [['--idle-timeout', '-5'], /--idle-timeout/],
    [['--max-metadata-size', 'big'], /--max-metadata-size/],
    [['--max-event-loop-delay', '1.5'], /--max-event-loop-delay/],
    [['--directory-mode', '999'], /--directory-mode needs an octal mode/],
    [['--prefix', 'files'], /prefix/],
    [['--no-preallocate', 'yes'], /yes/],
    [['--download-everything'], /--download-everything/]
  ]
  // The table's parsers run in this process; the plugin's own checks (--prefix) at register, in a real one.
  for (const [flags, message] of cases.filter(([flags]) => flags[0] !== '--prefix')) {
    t.throws(() => parseServeArgs(flags), { message }, flags.join(' '))
  }
  const root = await tempDir(t)
  const dirs = ['--directory', path.join(root, 'u'), '--completed-dir', path.join(root, 'c')]
  const processes: Array<[string[], RegExp]> = [[['--prefix', 'files'], /prefix/], [['--trust-proxy', '10.0.0.0/33'], /--trust-proxy/]]
  const runs = await Promise.all(processes.map(([flags]) => runNode([CLI, 'serve', '--port', '0', ...dirs, ...flags], { cwd: root })))
  for (const [index, [flags, message]] of processes.entries()) {
    t.equal(runs[index].code, 1, `serve ${flags.join(' ')} exits 1`)
    t.match(runs[index].stderr, message, runs[index].stderr.trim().split('\n')[0])
    t.notMatch(runs[index].stdout, /listening/)
  }
})

t.test('--prefix, --directory-mode, --no-preallocate and --max-metadata-size on a running server', async (t) => {
  const custom = await serve(t, ['--prefix', '/up/load', '--directory-mode', '700', '--no-preallocate', '--max-metadata-size', '20'])
  t.match(custom.endpoint, /\/up\/load$/, 'it listens under --prefix')
  const url = await create(custom.endpoint, { 'upload-length': '100000' })
  t.match(url, `${custom.endpoint}/`)
  t.equal((await stat(custom.directory)).mode & 0o777, 0o700, 'its directories have --directory-mode')
  t.equal((await stat(path.join(custom.directory, url.slice(url.lastIndexOf('/') + 1)))).size, 0, '--no-preallocate: nothing reserved')
  const tooLong = await send(custom.endpoint, 'POST', { ...TUS, 'upload-length': '1', 'upload-metadata': `filename ${Buffer.from('a-rather-long-name.txt').toString('base64')}` })
  t.equal(tooLong.statusCode, 400)
  t.equal(tooLong.json().code, 'FST_TUS_METADATA_TOO_LARGE', 'metadata over --max-metadata-size is refused')

  const plain = await serve(t)
  const reserved = await create(plain.endpoint, { 'upload-length': '100000' })
  t.equal((await stat(path.join(plain.directory, reserved.slice(reserved.lastIndexOf('/') + 1)))).size, 100000, 'by default Upload-Length is reserved')
})

t.test('--trust-proxy: X-Forwarded-* decide the Location only from trusted proxies', async (t) => {
  const forwarded = { ...TUS, 'upload-length': '1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'uploads.example' }
  const trusting = ['127.0.0.1', '10.0.0.0/8,127.0.0.0/8', 'true', 'loopback'].map((value) => ['--trust-proxy', value])
  const distrusting = [[], ['--trust-proxy', '10.0.0.0/8']]
  // Independent servers: started side by side.
  const servers = await Promise.all([...trusting, ...distrusting].map((flags) => serve(t, flags)))
  for (const [index, flags] of trusting.entries()) {
    t.match(await create(servers[index].endpoint, forwarded), /^https:\/\/uploads\.example\/files\//, `${flags.join(' ')}: believed`)
  }
  for (const [index, flags] of distrusting.entries()) {
    t.match(await create(servers[trusting.length + index].endpoint, forwarded), /^http:\/\/127\.0\.0\.1:\d+\/files\//, `${flags.join(' ') || 'no flag'}: not believed`)
  }
})

t.test('--idle-timeout ends a silent body, keeping its bytes', async (t) => {
  const { endpoint } = await serve(t, ['--idle-timeout', '300'])
  const url = new URL(await create(endpoint, { 'upload-length': '10' }))
  const socket = connect(Number(url.port), url.hostname)
  const started = Date.now()
  socket.write(`PATCH ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 10\r\n\r\nhello`)
  socket.resume()
  await new Promise((resolve) => socket.once('close', resolve))
  t.ok(Date.now() - started >= 300, 'the server waited --idle-timeout before ending it')
  // The server records after it hung up: wait for the record.
  const kept = async (): Promise<true | undefined> => (await send(url.href, 'HEAD', TUS)).headers['upload-offset'] === '5' ? true : undefined
  t.ok(await waitFor('the record of the 5 bytes that came', kept), 'the bytes that came are kept')
})

t.test('--janitor-interval with --stale-upload-age: the janitor runs on schedule', async (t) => {
  const { endpoint } = await serve(t, ['--janitor-interval', '200', '--stale-upload-age', '1'])
  const url = await create(endpoint, { 'upload-length': '10' })
  // The janitor is due every 200 ms: wait for its run to remove the upload.
  const removed = async (): Promise<true | undefined> => (await send(url, 'HEAD', TUS)).statusCode === 404 ? true : undefined
  t.ok(await waitFor('a scheduled janitor run to remove the stale upload', removed), 'the stale upload was removed by a scheduled run')
})

/** The README's fenced block that begins with `first` (a help text's first line), after `heading`. */
function blockAfter (readme: string, heading: string, first: string): string {
  const start = readme.indexOf(heading)
  const open = readme.indexOf(`\n\`\`\`\n${first}`, start)
  if (start === -1 || open === -1) return ''
  return readme.slice(open + 5, readme.indexOf('\n```', open + 5) + 1)
}

t.test('the README shows both --help texts as they are and names every flag', async (t) => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
  t.equal(blockAfter(readme, '## Demo server', 'Usage: fastify-tus serve'), serveHelp(), 'Demo server: the text of fastify-tus serve --help')
  t.equal(blockAfter(readme, '## Command-line client', 'Usage: fastify-tus upload'), uploadHelp(), 'Command-line client: the text of fastify-tus upload --help')
  for (const flag of [...SERVE_FLAGS, ...UPLOAD_FLAGS]) t.match(readme, `--${flag.name}`, `the README names --${flag.name}`)
  const [served, uploaded] = await Promise.all([runNode([CLI, 'serve', '--help']), runNode([CLI, 'upload', '--help'])])
  t.equal(served.stdout, serveHelp(), 'the built CLI prints the same serve --help')
  t.equal(uploaded.stdout, uploadHelp(), 'and the same upload --help')
})

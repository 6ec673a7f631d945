// The README's nginx and Caddy configurations, as written there, in front of a
// real server: a real proxy (Debian's) on an ephemeral loopback port, uploads
// through it with tus-js-client, bodies streamed through unbuffered, and
// Location built from the forwarded headers the server trusts.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import t from 'tap'
import * as tus from 'tus-js-client'
import { TUS, create, idOf, send, startServer, tempDir } from './helpers'
import { PATCH_HEADERS, assertCompleted, sha256, waitFor, waitForBytesOnDisk } from './interop-helpers'
import { streamRequest } from './raw-client'
import { ROOT } from './process-helpers'

const NGINX = '/usr/sbin/nginx'
const CADDY = '/usr/bin/caddy'
const MiB = 1024 * 1024

interface Teardown { teardown (fn: () => unknown): void }

type Proxy = 'nginx' | 'caddy'

/** The proxy's block of the README's proxy section, exactly as shown there. */
async function readmeBlock (proxy: Proxy): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf(proxy === 'nginx' ? '#### nginx' : '#### Caddy'))
  const block = new RegExp(`\`\`\`${proxy}\n([\\s\\S]*?)\`\`\``).exec(section)
  if (block === null) throw new Error(`the README has no ${proxy} block`)
  return block[1]
}

/** A port free right now (nginx cannot be asked which port 0 gave it). */
function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/** nginx in the foreground with the README block around it, on `port`. */
async function nginxCommand (prefix: string, port: number, backendPort: number): Promise<string[]> {
  const block = await readmeBlock('nginx')
  if (!block.includes('listen 80;') || !block.includes('server 127.0.0.1:1080;')) throw new Error('the README block lost its listen or upstream line')
  // Only the addresses change: the README's port 80 and its upstream port.
  const server = block.replace('listen 80;', `listen 127.0.0.1:${port};`).replace('server 127.0.0.1:1080;', `server 127.0.0.1:${backendPort};`)
  const conf = path.join(prefix, 'nginx.conf')
  await mkdir(path.join(prefix, 'logs'), { recursive: true })
  await writeFile(conf, `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log ${prefix}/logs/access.log;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${server}
}
`)
  execFileSync(NGINX, ['-t', '-p', prefix, '-c', conf], { stdio: 'pipe' })
  return [NGINX, '-p', prefix, '-c', conf]
}

/** Caddy in the foreground with the README block, its site address made a loopback port; no admin API, no HTTPS. */
async function caddyCommand (prefix: string, port: number, backendPort: number): Promise<string[]> {
  const block = await readmeBlock('caddy')
  if (!block.includes('uploads.example.com {') || !block.includes('127.0.0.1:1080')) throw new Error('the README block lost its site or upstream')
  const site = block.replace('uploads.example.com {', `http://127.0.0.1:${port} {`).replace('127.0.0.1:1080', `127.0.0.1:${backendPort}`)
  const conf = path.join(prefix, 'Caddyfile')
  await writeFile(conf, `{\n\tadmin off\n\tauto_https off\n\tstorage file_system ${prefix}/data\n}\n\n${site}`)
  return [CADDY, 'run', '--config', conf, '--adapter', 'caddyfile']
}

/** Starts the proxy with the README block, pointed at the backend; resolves with its origin. */
async function startProxy (t: Teardown, proxy: Proxy, backendPort: number): Promise<string> {
  const prefix = await tempDir(t, `fastify-tus-${proxy}-`)
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const [command, ...args] = await (proxy === 'nginx' ? nginxCommand : caddyCommand)(prefix, port, backendPort)
    // Caddy keeps its state under HOME and XDG_*: all in the temp dir.
    const env = { ...process.env, HOME: prefix, XDG_DATA_HOME: prefix, XDG_CONFIG_HOME: prefix }
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    t.teardown(async () => { if (child.exitCode === null) child.kill(proxy === 'nginx' ? 'SIGQUIT' : 'SIGTERM'); await exited })
    const origin = `http://127.0.0.1:${port}`
    const up = await waitFor(`${proxy} to answer`, async () => {
      if (child.exitCode !== null) return false
      return await send(`${origin}/files`, 'OPTIONS').then(() => true, () => undefined)
    }, 10_000)
    if (up) return origin
    if (!/address already in use/i.test(stderr)) throw new Error(`${proxy} did not start: ${stderr}`)
  }
  throw new Error(`no free port for ${proxy} after 5 tries`)
}

function uploadThrough (endpoint: string, file: Buffer, options: Partial<tus.UploadOptions> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, { endpoint, metadata: { filename: 'through-nginx.bin' }, ...options, onSuccess: () => resolve(upload.url!), onError: reject })
    upload.start()
  })
}

for (const proxy of ['nginx', 'caddy'] as const) {
  t.test(`uploads through ${proxy} with the README configuration`, async (t) => {
    const server = await startServer(t, {}, { trustProxy: '127.0.0.1' })
    const { port } = server.app.server.address() as { port: number }
    const origin = await startProxy(t, proxy, port)
    const endpoint = `${origin}/files`

    // 3 MiB in one PATCH: past nginx's default 1 MiB body cap, which its block lifts.
    const whole = randomBytes(3 * MiB)
    const url = await uploadThrough(endpoint, whole)
    t.match(url, new RegExp(`^${origin}/files/[0-9a-f-]{36}$`), 'Location names the proxy, from the forwarded headers')
    await assertCompleted(t, server, { id: idOf(url), sha256: sha256(whole), length: whole.length, metadata: { filename: 'through-nginx.bin' } })

    const chunked = randomBytes(MiB + 17)
    const chunkedUrl = await uploadThrough(endpoint, chunked, { chunkSize: 256 * 1024 })
    await assertCompleted(t, server, { id: idOf(chunkedUrl), sha256: sha256(chunked), length: chunked.length, metadata: { filename: 'through-nginx.bin' } })

    const created = await send(endpoint, 'POST', { ...TUS, 'upload-length': '5' })
    t.equal(created.statusCode, 201)
    t.equal(created.headers['tus-resumable'], '1.0.0', 'tus headers come through')
    t.match(String(created.headers.location), new RegExp(`^${origin}/files/`))
    const head = await send(String(created.headers.location), 'HEAD', TUS)
    t.equal(head.headers['upload-offset'], '0', 'HEAD through the proxy')
    t.equal((await send(String(created.headers.location), 'DELETE', TUS)).statusCode, 204, 'DELETE through the proxy')
  })

  t.test(`${proxy} streams a body through instead of buffering it`, async (t) => {
    const server = await startServer(t, {}, { trustProxy: '127.0.0.1' })
    const origin = await startProxy(t, proxy, (server.app.server.address() as { port: number }).port)
    const url = await create(`${origin}/files`, { 'upload-length': String(2 * MiB) })
    const first = randomBytes(MiB)
    const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(2 * MiB) })
    await raw.write(first)
    // Half the body is on the server's disk while the client still holds the rest.
    await waitForBytesOnDisk(path.join(server.directory, idOf(url)), 0, first, 10_000)
    t.pass('the first half arrived before the body was complete')
    raw.end(randomBytes(MiB))
    const { response } = await raw.settled
    t.equal(response?.statusCode, 204)
    t.equal(response?.headers['upload-offset'], String(2 * MiB))
  })
}

// Every app in examples/ starts as it is (on port 0, in a fresh directory) and
// answers one real request or upload; the suite's type check covers them too.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import { TUS, send, tempDir } from './helpers'
import { waitFor } from './interop-helpers'
import { ROOT, ensureFreshBuild, exitWithin, startNode, type Started } from './process-helpers'

ensureFreshBuild()

interface Teardown { teardown (fn: () => unknown): void }

// The examples are TypeScript: run with the loader this test runs under.
const LOADER = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))

async function startExample (t: Teardown, name: string, cwd: string, ready = /listening on (http:\/\/\S+)\/files/): Promise<Started> {
  return await startNode(t, [...LOADER, path.join(ROOT, 'examples', `${name}.ts`)], ready, { cwd, env: { ...process.env, PORT: '0' }, timeout: 60_000 })
}

function upload (endpoint: string, file: Buffer, options: Partial<tus.UploadOptions> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const instance = new tus.Upload(file, { endpoint, metadata: { filename: 'example.bin' }, ...options, onSuccess: () => resolve(instance.url!), onError: reject })
    instance.start()
  })
}

async function stops (t: Test, started: Started): Promise<void> {
  started.child.kill('SIGTERM')
  const exit = await exitWithin(started, 20_000)
  t.equal(exit?.code, 0, 'stops cleanly on SIGTERM')
}

t.test('basic: an upload with tus-js-client lands in ./completed', async (t) => {
  const cwd = await tempDir(t)
  const server = await startExample(t, 'basic', cwd)
  const file = randomBytes(64 * 1024)
  const url = await upload(`${server.match[1]}/files`, file)
  t.same(await readFile(path.join(cwd, 'completed', url.slice(url.lastIndexOf('/') + 1))), file)
  await stops(t, server)
})

t.test('auth: a token is needed, and only its owner touches an upload', async (t) => {
  const cwd = await tempDir(t)
  const server = await startExample(t, 'auth', cwd)
  const endpoint = `${server.match[1]}/files`
  t.equal((await send(endpoint, 'POST', { ...TUS, 'upload-length': '3' })).statusCode, 401, 'no token')
  const url = await upload(endpoint, Buffer.from('mine'), { headers: { authorization: 'Bearer alice-token' } })
  t.equal((await send(url, 'HEAD', { ...TUS, authorization: 'Bearer alice-token' })).statusCode, 200, 'the owner')
  t.equal((await send(url, 'HEAD', { ...TUS, authorization: 'Bearer bob-token' })).statusCode, 403, 'someone else')
  await stops(t, server)
})

t.test('worker: a separate process saves each finished upload under its name', async (t) => {
  const cwd = await tempDir(t)
  const server = await startExample(t, 'basic', cwd)
  const worker = await startExample(t, 'worker', cwd, /worker waiting on/)
  await upload(`${server.match[1]}/files`, Buffer.from('for the worker'))
  await waitFor('the worker to save it', async () => /saved \S+ as dest\/example\.bin/.test(worker.stdout()) ? true : undefined, 20_000)
  t.equal(await readFile(path.join(cwd, 'dest', 'example.bin'), 'utf8'), 'for the worker')
  await stops(t, worker)
  await stops(t, server)
})

t.test('uppy: the page, its assets from the uppy package, and tus behind it', async (t) => {
  const cwd = await tempDir(t)
  const server = await startExample(t, 'uppy', cwd)
  const origin = server.match[1]
  const page = await send(`${origin}/`, 'GET')
  t.equal(page.statusCode, 200)
  t.match(page.text, /import \{ Uppy, Dashboard, Tus \} from '\/assets\/uppy\.min\.mjs'/)
  const script = await send(`${origin}/assets/uppy.min.mjs`, 'GET')
  t.equal(script.statusCode, 200)
  t.match(script.headers['content-type'], /^text\/javascript/)
  t.ok(script.text.length > 100_000, 'the Uppy bundle')
  t.equal((await send(`${origin}/assets/..%2fpackage.json`, 'GET')).statusCode, 404, 'nothing else is served')
  await upload(`${origin}/files`, Buffer.from('from the page'))
  await stops(t, server)
})

t.test('metrics: /metrics counts the upload, /health answers', async (t) => {
  const cwd = await tempDir(t)
  const server = await startExample(t, 'metrics', cwd)
  const origin = server.match[1]
  await upload(`${origin}/files`, Buffer.from('counted'))
  const metrics = await send(`${origin}/metrics`, 'GET')
  t.match(metrics.text, /^tus_uploads_finished_total 1$/m)
  t.match(metrics.text, /^tus_bytes_received_total 7$/m)
  const health = await send(`${origin}/health`, 'GET')
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  await stops(t, server)
})

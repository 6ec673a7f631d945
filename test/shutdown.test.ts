// Graceful shutdown: on SIGTERM or SIGINT `fastify-tus serve` stops accepting,
// ends the bodies still streaming (their bytes durable and recorded), lets the
// answers go out and exits 0; the plugin does the same on app.close(). The
// client resumes on the next server from the recorded offset.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import { TUS, create, idOf, send, startServer, tempDir } from './helpers'
import { PATCH_HEADERS, sha256, waitForBytesOnDisk, waitForStreamingCreation } from './interop-helpers'
import { streamRequest } from './raw-client'
import { CLI, ensureFreshBuild, exitWithin, startNode, type Started } from './process-helpers'

ensureFreshBuild()

const MiB = 1024 * 1024
const LISTENING = /listening on (http:\/\/\S+)/

async function serve (t: Test, root: string, flags: string[] = []): Promise<{ server: Started, endpoint: string }> {
  const server = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', path.join(root, 'uploads'), '--completed-dir', path.join(root, 'completed'), '--log-level', 'info', ...flags], LISTENING, { cwd: root })
  return { server, endpoint: server.match[1] }
}

function resumeWithClient (url: string, file: Buffer): Promise<{ url: string, offsets: number[] }> {
  const offsets: number[] = []
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, {
      uploadUrl: url,
      onBeforeRequest: (request) => { if (request.getMethod() === 'PATCH') offsets.push(Number(request.getHeader('Upload-Offset'))) },
      onSuccess: () => resolve({ url: upload.url!, offsets }),
      onError: reject
    })
    upload.start()
  })
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: a PATCH in flight is answered, its bytes kept, and the next server resumes it`, async (t) => {
    const root = await tempDir(t)
    const first = await serve(t, root)
    const file = randomBytes(2 * MiB)
    const url = await create(first.endpoint, { 'upload-length': String(file.length) })
    const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(file.length) })
    const sent = file.subarray(0, 1536 * 1024)
    await raw.write(sent)
    await waitForBytesOnDisk(path.join(root, 'uploads', idOf(url)), 0, sent, 10_000)

    const signalled = Date.now()
    first.server.child.kill(signal)
    const { response, error } = await raw.settled
    t.notOk(error, 'the client got an answer, not a reset')
    t.equal(response?.statusCode, 503, '503: come back later')
    t.equal(response?.json().code, 'FST_TUS_SHUTTING_DOWN')
    t.ok(Number(response?.headers['retry-after']) > 0, 'with Retry-After')
    t.equal(response?.headers['tus-resumable'], '1.0.0')
    t.equal(response?.headers.connection, 'close', 'the rest of the body is not waited for')
    const exit = await exitWithin(first.server, 20_000)
    t.same(exit, { code: 0, signal: null }, `exit 0, ${Date.now() - signalled} ms after the signal`)
    t.match(first.server.stdout(), /fastify-tus stopped/)
    t.match(first.server.stderr() + first.server.stdout(), /"msg":"shutting down"/)

    const second = await serve(t, root)
    const resumed = url.replace(first.endpoint, second.endpoint)
    const head = await send(resumed, 'HEAD', TUS)
    t.equal(head.headers['upload-offset'], String(sent.length), 'every byte that arrived was recorded')
    const client = await resumeWithClient(resumed, file)
    t.same(client.offsets, [sent.length], 'tus-js-client resumes from the recorded offset')
    t.equal(sha256(await readFile(path.join(root, 'completed', idOf(url)))), sha256(file), 'the file is whole')
    second.server.child.kill('SIGTERM')
    t.equal((await exitWithin(second.server, 20_000))?.code, 0)
  })
}

t.test('idle connections do not hold the shutdown; a server with nothing in flight exits at once', async (t) => {
  const root = await tempDir(t)
  const { server, endpoint } = await serve(t, root, ['--shutdown-timeout', '30000'])
  // A keep-alive connection left open by a finished request.
  t.equal((await send(endpoint, 'OPTIONS')).statusCode, 204)
  const signalled = Date.now()
  server.child.kill('SIGTERM')
  const exit = await exitWithin(server, 20_000)
  t.equal(exit?.code, 0)
  t.ok(Date.now() - signalled < 15_000, 'well before the shutdown timeout')
})

t.test('app.close() ends a body in flight the same way', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': String(MiB) })
  const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(MiB) })
  const sent = randomBytes(300 * 1024)
  await raw.write(sent)
  const data = path.join(server.directory, idOf(url))
  await waitForBytesOnDisk(data, 0, sent)
  await server.app.close()
  const { response } = await raw.settled
  t.equal(response?.statusCode, 503)
  t.equal(response?.json().code, 'FST_TUS_SHUTTING_DOWN')
  const record = JSON.parse(await readFile(`${data}.meta`, 'utf8'))
  t.equal(record.offset, sent.length, 'the record holds every byte that arrived')
})

t.test('a creation streaming its whole upload is ended too, and becomes resumable', async (t) => {
  const server = await startServer(t)
  const raw = streamRequest(server.endpoint, 'POST', { ...PATCH_HEADERS, 'upload-length': String(MiB), 'content-length': String(MiB) })
  const sent = randomBytes(200 * 1024)
  await raw.write(sent)
  const id = await waitForStreamingCreation(server.completedDir)
  await waitForBytesOnDisk(path.join(server.completedDir, `.${id}.data.tmp`), 0, sent)
  const closed = server.app.close()
  const { response } = await raw.settled
  await closed
  t.equal(response?.statusCode, 503)
  const location = String(response?.headers.location)
  t.match(location, /\/files\/[0-9a-f-]{36}$/, 'the answer names the upload, so it can be resumed')
  const record = JSON.parse(await readFile(path.join(server.directory, `${idOf(location)}.meta`), 'utf8'))
  t.equal(idOf(location), id)
  t.equal(record.offset, sent.length, 'every byte that arrived is recorded')
})

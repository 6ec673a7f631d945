// `fastify-tus serve` (the built CLI, in its own process) speaks the IETF draft:
// tus-js-client in both IETF modes uploads and resumes against it, URLSession's
// optimistic upload gets its 104, and --no-ietf turns the draft off.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import * as tus from 'tus-js-client'
import { send, tempDir } from './helpers'
import { waitFor } from './interop-helpers'
import { CLI, ensureBuilt, runNode, startNode } from './process-helpers'
import { exchange } from './raw-socket'

ensureBuilt()

const LISTENING = /^fastify-tus listening on (http:\/\/127\.0\.0\.1:\d+\/files)$/m
const KiB = 1024

async function serve (t: { teardown (fn: () => unknown): void }, flags: string[] = []): Promise<{ endpoint: string, completedDir: string }> {
  const root = await tempDir(t)
  const completedDir = path.join(root, 'completed')
  const server = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', path.join(root, 'uploads'), '--completed-dir', completedDir, '--log-level', 'warn', ...flags], LISTENING, { cwd: root })
  return { endpoint: server.match[1], completedDir }
}

// tus-js-client 4 has the option, its types do not yet.
type IetfUploadOptions = tus.UploadOptions & { protocol: 'ietf-draft-03' | 'ietf-draft-05' }

function run (source: Buffer, options: IetfUploadOptions): { done: Promise<string>, upload: tus.Upload } {
  let upload!: tus.Upload
  const done = new Promise<string>((resolve, reject) => {
    upload = new tus.Upload(source, { ...options, onSuccess: () => resolve(upload.url!), onError: reject })
  })
  upload.start()
  return { done, upload }
}

for (const [protocol, version] of [['ietf-draft-03', '5'], ['ietf-draft-05', '6']] as const) {
  t.test(`tus-js-client ${protocol} uploads, is aborted and resumes against fastify-tus serve`, async (t) => {
    const { endpoint, completedDir } = await serve(t)
    const source = randomBytes(600 * KiB)
    const chunkSize = 128 * KiB
    let abort!: () => void
    const aborted = new Promise<void>((resolve) => { abort = resolve })
    const first = run(source, { endpoint, protocol, chunkSize, onChunkComplete: (_size, accepted) => { if (accepted >= 2 * chunkSize) abort() } })
    await Promise.race([aborted, first.done.then(() => { throw new Error('finished before it could be aborted') })])
    await first.upload.abort()
    const url = first.upload.url!
    const recorded = await waitFor('the offset after the abort', async () => {
      const response = await send(url, 'HEAD', { 'upload-draft-interop-version': version })
      return response.statusCode === 204 ? Number(response.headers['upload-offset']) : undefined
    })
    t.ok(recorded >= 2 * chunkSize && recorded < source.length, `stopped part way (${recorded} bytes)`)
    const resumed = run(source, { uploadUrl: url, protocol, chunkSize })
    t.equal(await resumed.done, url, 'the same upload was finished')
    t.ok((await readFile(path.join(completedDir, path.basename(url)))).equals(source), 'the finished file is the source')
  })
}

t.test('an optimistic upload gets its 104 from fastify-tus serve; --no-ietf turns the draft off', async (t) => {
  const body = randomBytes(10 * KiB)
  const headers = { 'upload-draft-interop-version': 8, 'upload-complete': '?1', 'content-length': body.length }
  const { endpoint } = await serve(t)
  const responses = await exchange(new URL(endpoint).origin, 'POST /files HTTP/1.1', headers, body)
  t.same(responses.map((response) => response.status), [104, 201], '104, then 201')
  t.match(responses[0].headers['upload-limit'], /^max-age=86[34][0-9][0-9]$/, 'the default limits: the lifetime left, about a day')

  const off = await serve(t, ['--no-ietf'])
  const refused = await exchange(new URL(off.endpoint).origin, 'POST /files HTTP/1.1', headers, body)
  t.same(refused.map((response) => response.status), [412], 'only tus 1.0, which wants Tus-Resumable')

  const help = await runNode([CLI, 'serve', '--help'], { cwd: await tempDir(t) })
  t.match(help.stdout, /--no-ietf +serve tus 1\.0 only/, '--help names the flag')
})

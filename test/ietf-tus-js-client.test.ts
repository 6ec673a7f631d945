// tus-js-client in both of its IETF modes ('ietf-draft-03' sends interop
// version 5, 'ietf-draft-05' version 6) against the real plugin: one request,
// chunks, data in the creation request, a stream of unknown length, and an
// upload aborted mid-chunk then resumed. Every upload is checked on disk.
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import type { UploadRecord } from '../types/index'
import { idOf, startServer, type TestServer } from './helpers'
import { assertCompleted, sha256, waitFor } from './interop-helpers'
import { send } from './helpers'

const KiB = 1024
const MiB = 1024 * KiB
const METADATA = { filename: 'résumé 2026.pdf', filetype: 'application/pdf' }
const MODES = [{ protocol: 'ietf-draft-03', version: '5' }, { protocol: 'ietf-draft-05', version: '6' }] as const

interface Exchange { method: string, offset: string | undefined, complete: string | undefined, version: string | undefined, tus: string | undefined, status?: number, answeredOffset?: string | undefined }

function upload (file: Buffer | Readable, options: tus.UploadOptions): { done: Promise<string>, upload: tus.Upload, exchanges: Exchange[] } {
  const exchanges: Exchange[] = []
  let resolveDone!: (url: string) => void
  let rejectDone!: (error: Error) => void
  const done = new Promise<string>((resolve, reject) => { resolveDone = resolve; rejectDone = reject })
  const instance = new tus.Upload(file, {
    ...options,
    onBeforeRequest: (request) => {
      exchanges.push({
        method: request.getMethod(),
        offset: request.getHeader('Upload-Offset'),
        complete: request.getHeader('Upload-Complete'),
        version: request.getHeader('Upload-Draft-Interop-Version'),
        tus: request.getHeader('Tus-Resumable')
      })
    },
    onAfterResponse: (request, response) => {
      const exchange = [...exchanges].reverse().find((entry) => entry.method === request.getMethod() && entry.status === undefined)!
      exchange.status = response.getStatus()
      exchange.answeredOffset = response.getHeader('Upload-Offset')
    },
    onSuccess: () => { resolveDone(instance.url!) },
    onError: (error) => { rejectDone(error) }
  })
  return { done, upload: instance, exchanges }
}

async function checkFinished (t: Test, server: TestServer, url: string, source: Buffer): Promise<void> {
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length, metadata: METADATA })
}

const methods = (exchanges: Exchange[]): string[] => exchanges.map((exchange) => exchange.method)

for (const { protocol, version } of MODES) {
  t.test(`${protocol} (interop version ${version})`, async (t) => {
    const options = { protocol, metadata: METADATA } as const

    t.test('a small upload: careful creation, then one append that completes it', async (t) => {
      const completed: UploadRecord[] = []
      const server = await startServer(t, { hooks: { 'tus:completed': (record) => { completed.push(record) } } })
      const source = randomBytes(5 * KiB + 7)
      const run = upload(source, { ...options, endpoint: server.endpoint })
      run.upload.start()
      const url = await run.done
      t.same(methods(run.exchanges), ['POST', 'PATCH'])
      t.ok(run.exchanges.every((exchange) => exchange.version === version && exchange.tus === undefined), `every request speaks interop version ${version}, none tus 1.0`)
      t.same(run.exchanges.map((exchange) => [exchange.complete, exchange.status]), [['?0', 201], ['?1', 204]], 'created incomplete; the append completes it')
      t.equal(run.exchanges[1].answeredOffset, String(source.length), 'the last answer carries the final offset')
      await checkFinished(t, server, url, source)
      t.same(completed.map((record) => record.id), [idOf(url)], 'tus:completed once, as for a tus upload')
    })

    t.test('a chunked upload', async (t) => {
      const server = await startServer(t)
      const chunkSize = 256 * KiB
      const source = randomBytes(MiB + 123)
      const run = upload(source, { ...options, endpoint: server.endpoint, chunkSize })
      run.upload.start()
      const url = await run.done
      const patches = run.exchanges.filter((exchange) => exchange.method === 'PATCH')
      t.equal(patches.length, Math.ceil(source.length / chunkSize), 'one append per chunk')
      t.same(patches.map((exchange) => Number(exchange.offset)), patches.map((_, index) => index * chunkSize), 'each at the previous answer\'s offset')
      t.same(patches.map((exchange) => exchange.complete), patches.map((_, index) => index === patches.length - 1 ? '?1' : '?0'), 'only the last one completes')
      await checkFinished(t, server, url, source)
    })

    t.test('the first chunk in the creation request (uploadDataDuringCreation)', async (t) => {
      const server = await startServer(t)
      const chunkSize = 512 * KiB
      const source = randomBytes(MiB + 100)
      const run = upload(source, { ...options, endpoint: server.endpoint, chunkSize, uploadDataDuringCreation: true })
      run.upload.start()
      const url = await run.done
      t.same(methods(run.exchanges), ['POST', 'PATCH', 'PATCH'])
      t.equal(run.exchanges[0].answeredOffset, String(chunkSize), 'the creation answer carries the offset it took')
      await checkFinished(t, server, url, source)
    })

    t.test('a stream of unknown length', async (t) => {
      const server = await startServer(t)
      const source = randomBytes(MiB + 1234)
      const pieces = function * (): Generator<Buffer> {
        for (let start = 0; start < source.length; start += 10_007) yield source.subarray(start, start + 10_007)
      }
      const run = upload(Readable.from(pieces()), { ...options, endpoint: server.endpoint, chunkSize: 256 * KiB, uploadLengthDeferred: true })
      run.upload.start()
      const url = await run.done
      t.equal(run.exchanges[run.exchanges.length - 1].complete, '?1', 'the last append says complete: its end sets the length')
      await checkFinished(t, server, url, source)
    })

    t.test('an upload aborted mid-chunk, then resumed with HEAD', async (t) => {
      const server = await startServer(t)
      const chunkSize = 256 * KiB
      const source = randomBytes(2 * MiB)
      const abortAfter = 3 * chunkSize + 100 * KiB
      let abort!: () => void
      const aborted = new Promise<void>((resolve) => { abort = resolve })
      const first = upload(source, { ...options, endpoint: server.endpoint, chunkSize, onProgress: (sent) => { if (sent >= abortAfter) abort() } })
      first.upload.start()
      await Promise.race([aborted, first.done.then(() => { throw new Error('finished before it could be aborted') })])
      await first.upload.abort()
      const url = first.upload.url!
      const headers = { 'upload-draft-interop-version': version }
      const recorded = await waitFor('the aborted append recorded', async () => {
        const response = await send(url, 'HEAD', headers)
        const offset = Number(response.headers['upload-offset'])
        return response.statusCode === 204 && offset >= 3 * chunkSize ? offset : undefined
      })
      t.ok(recorded < source.length, `stopped short (${recorded} of ${source.length})`)
      const resumed = upload(source, { ...options, uploadUrl: url, chunkSize, retryDelays: [0, 100, 200, 500] })
      resumed.upload.start()
      t.equal(await resumed.done, url, 'the same upload was finished')
      t.equal(resumed.exchanges[0].method, 'HEAD', 'resuming starts with HEAD')
      const head = resumed.exchanges[0]
      t.ok(Number(head.answeredOffset) >= recorded, 'HEAD gives at least the recorded offset')
      t.equal(resumed.exchanges[1].offset, head.answeredOffset, 'the first append continues there')
      await checkFinished(t, server, url, source)
    })
  })
}

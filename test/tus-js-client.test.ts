// The reference client, tus-js-client 4 (its Node build), against the real
// plugin: single request, chunks, creation-with-upload, abort and resume, and
// a stream of unknown length. Every upload is checked on disk afterwards.
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import { idOf, startServer, type TestServer } from './helpers'
import { assertCompleted, headOffset, sha256, waitForOffset } from './interop-helpers'

const KiB = 1024
const MiB = 1024 * KiB
const METADATA = { filename: 'résumé 2026.pdf', filetype: 'application/pdf' }
// A resumed client may meet the aborted request still recording its bytes (423): retries spread over seconds, for a busy machine.
const RETRY_DELAYS = [0, 200, 500, 1000, 2000, 5000]

interface Sent { method: string, offset: string | undefined, headers: Record<string, string | undefined> }
interface Received { method: string, status: number, offset: string | undefined }

// Runs one upload to its end, recording every request and answer it made.
function upload (file: Buffer | Readable, options: tus.UploadOptions): { done: Promise<string>, upload: tus.Upload, sent: Sent[], received: Received[] } {
  const sent: Sent[] = []
  const received: Received[] = []
  let resolveDone!: (url: string) => void
  let rejectDone!: (error: Error) => void
  const done = new Promise<string>((resolve, reject) => { resolveDone = resolve; rejectDone = reject })
  const instance = new tus.Upload(file, {
    ...options,
    onBeforeRequest: async (request) => {
      sent.push({
        method: request.getMethod(),
        offset: request.getHeader('Upload-Offset'),
        headers: {
          uploadLength: request.getHeader('Upload-Length'),
          deferLength: request.getHeader('Upload-Defer-Length')
        }
      })
      await options.onBeforeRequest?.(request)
    },
    onAfterResponse: async (request, response) => {
      received.push({ method: request.getMethod(), status: response.getStatus(), offset: response.getHeader('Upload-Offset') })
      await options.onAfterResponse?.(request, response)
    },
    onSuccess: () => { resolveDone(instance.url!) },
    onError: (error) => { rejectDone(error) }
  })
  return { done, upload: instance, sent, received }
}

async function checkFinished (t: Test, server: TestServer, url: string, source: Buffer, metadata: Record<string, string> = METADATA): Promise<void> {
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length, metadata })
}

const methods = (sent: Sent[]): string[] => sent.map((request) => request.method)

t.test('a small upload in one request, with UTF-8 metadata', async (t) => {
  const server = await startServer(t)
  const source = randomBytes(5 * KiB + 7)
  const run = upload(source, { endpoint: server.endpoint, metadata: METADATA })
  run.upload.start()
  const url = await run.done
  t.match(url, new RegExp(`^${server.endpoint}/[0-9a-f-]{36}$`), 'Location is an upload URL under the endpoint')
  t.same(methods(run.sent), ['POST', 'PATCH'], 'one creation, one PATCH')
  t.same(run.received.map((response) => response.status), [201, 204])
  t.equal(run.received[1].offset, String(source.length), 'the PATCH answer carries the final offset')
  await checkFinished(t, server, url, source)
})

t.test('a chunked upload', async (t) => {
  const server = await startServer(t)
  const chunkSize = 256 * KiB
  const source = randomBytes(2.5 * MiB + 123)
  const run = upload(source, { endpoint: server.endpoint, metadata: METADATA, chunkSize })
  run.upload.start()
  const url = await run.done
  const patches = run.sent.filter((request) => request.method === 'PATCH')
  t.equal(patches.length, Math.ceil(source.length / chunkSize), 'one PATCH per chunk')
  t.same(patches.map((request) => Number(request.offset)), patches.map((_, index) => index * chunkSize), 'each chunk at the previous answer\'s offset')
  t.ok(run.received.every((response) => response.status === 201 || response.status === 204), 'every answer a success')
  await checkFinished(t, server, url, source)
})

t.test('creation-with-upload (uploadDataDuringCreation)', async (t) => {
  const server = await startServer(t)
  const chunkSize = 512 * KiB
  const source = randomBytes(MiB + 100)
  const run = upload(source, { endpoint: server.endpoint, metadata: METADATA, chunkSize, uploadDataDuringCreation: true })
  run.upload.start()
  const url = await run.done
  t.same(methods(run.sent), ['POST', 'PATCH', 'PATCH'], 'the first chunk rides on the POST')
  t.equal(run.received[0].status, 201, 'created')
  t.equal(run.received[0].offset, String(chunkSize), 'the POST answer carries the offset of the data it took')
  t.equal(run.sent[1].offset, String(chunkSize), 'the first PATCH continues from there')
  await checkFinished(t, server, url, source)
})

t.test('creation-with-upload of a whole small file in the POST', async (t) => {
  const server = await startServer(t)
  const source = randomBytes(3 * KiB)
  const run = upload(source, { endpoint: server.endpoint, metadata: METADATA, uploadDataDuringCreation: true })
  run.upload.start()
  const url = await run.done
  t.same(methods(run.sent), ['POST'], 'one request in all')
  t.same(run.received, [{ method: 'POST', status: 201, offset: String(source.length) }])
  await checkFinished(t, server, url, source)
})

// A URL storage in memory: tus-js-client's own resume path (fingerprint,
// findPreviousUploads, resumeFromPreviousUpload) without a file on disk.
class MemoryUrlStorage {
  private readonly items = new Map<string, tus.PreviousUpload & { fingerprint: string }>()
  private next = 0
  async findAllUploads (): Promise<tus.PreviousUpload[]> { return [...this.items.values()] }
  async findUploadsByFingerprint (fingerprint: string): Promise<tus.PreviousUpload[]> {
    return [...this.items.values()].filter((item) => item.fingerprint === fingerprint)
  }

  async removeUpload (key: string): Promise<void> { this.items.delete(key) }
  async addUpload (fingerprint: string, upload: tus.PreviousUpload): Promise<string> {
    const key = `tus::${fingerprint}::${this.next++}`
    this.items.set(key, { ...upload, urlStorageKey: key, fingerprint })
    return key
  }
}

t.test('an upload aborted mid-chunk, then resumed', async (t) => {
  const chunkSize = 256 * KiB
  const source = randomBytes(3 * MiB)
  // Abort during the fourth chunk's request: three chunks acknowledged; how much
  // of the fourth reached the server before the socket died is up to timing.
  const abortAfter = 3 * chunkSize + 100 * KiB

  async function startAndAbort (t: Test, server: TestServer, options: tus.UploadOptions): Promise<{ url: string, recorded: number }> {
    let abort!: () => void
    const aborted = new Promise<void>((resolve) => { abort = resolve })
    const run = upload(source, {
      endpoint: server.endpoint,
      metadata: METADATA,
      chunkSize,
      ...options,
      onProgress: (bytesSent) => { if (bytesSent >= abortAfter) abort() }
    })
    run.upload.start()
    await Promise.race([
      aborted,
      run.done.then(() => { throw new Error('the upload finished before it could be aborted') })
    ])
    await run.upload.abort()
    const url = run.upload.url!
    // Bounded wait until the server has recorded what the aborted request carried.
    const recorded = await waitForOffset(url, (offset) => offset >= 3 * chunkSize)
    t.ok(recorded < source.length, `the aborted upload stopped short (${recorded} of ${source.length})`)
    t.comment(`aborted at ${recorded} bytes (${recorded - 3 * chunkSize} of the interrupted chunk kept)`)
    return { url, recorded }
  }

  // The resumed client continues where its own HEAD said, which is at least
  // what was recorded when we looked (the server may record the rest later).
  function assertResumedFrom (t: Test, resumed: ReturnType<typeof upload>, recorded: number): void {
    const head = resumed.received.find((response) => response.method === 'HEAD')
    const firstPatch = resumed.sent.find((request) => request.method === 'PATCH')
    t.ok(head !== undefined && Number(head.offset) >= recorded, 'HEAD gives at least the recorded offset')
    t.equal(firstPatch?.offset, head?.offset, 'the first PATCH continues at the offset HEAD gave, not at 0')
  }

  t.test('with the same uploadUrl', async (t) => {
    const server = await startServer(t)
    const { url, recorded } = await startAndAbort(t, server, {})
    const resumed = upload(source, { uploadUrl: url, chunkSize, retryDelays: RETRY_DELAYS })
    resumed.upload.start()
    t.equal(await resumed.done, url, 'the same upload was finished')
    t.equal(resumed.sent[0].method, 'HEAD', 'resuming starts with HEAD')
    assertResumedFrom(t, resumed, recorded)
    await checkFinished(t, server, url, source)
  })

  t.test('with findPreviousUploads and resumeFromPreviousUpload', async (t) => {
    const server = await startServer(t)
    const urlStorage = new MemoryUrlStorage()
    const { url, recorded } = await startAndAbort(t, server, { urlStorage })
    const resumed = upload(source, { endpoint: server.endpoint, metadata: METADATA, chunkSize, urlStorage, retryDelays: RETRY_DELAYS })
    const previous = await resumed.upload.findPreviousUploads()
    t.equal(previous.length, 1, 'the aborted upload was remembered')
    t.equal(previous[0].uploadUrl, url)
    resumed.upload.resumeFromPreviousUpload(previous[0])
    resumed.upload.start()
    t.equal(await resumed.done, url, 'the remembered upload was finished, no new one created')
    t.notOk(resumed.sent.some((request) => request.method === 'POST'), 'no creation request')
    assertResumedFrom(t, resumed, recorded)
    t.equal(await headOffset(t, url), source.length, 'HEAD of the finished upload gives its full length')
    await checkFinished(t, server, url, source)
  })
})

t.test('uploadLengthDeferred from a Node Readable', async (t) => {
  const chunkSize = 256 * KiB
  // A length that ends mid-chunk, and one that is an exact number of chunks
  // (the client then learns the end only after a full chunk: an empty PATCH sets the length).
  for (const size of [MiB + 1234, MiB]) {
    t.test(`${size} bytes`, async (t) => {
      const server = await startServer(t)
      const source = randomBytes(size)
      // Odd-sized pieces, so that chunk boundaries never line up with the stream's.
      const pieces = function * (): Generator<Buffer> {
        for (let start = 0; start < source.length; start += 10_007) yield source.subarray(start, start + 10_007)
      }
      const run = upload(Readable.from(pieces()), { endpoint: server.endpoint, metadata: METADATA, chunkSize, uploadLengthDeferred: true })
      run.upload.start()
      const url = await run.done
      t.equal(run.sent[0].method, 'POST')
      t.equal(run.sent[0].headers.deferLength, '1', 'created with Upload-Defer-Length: 1')
      t.equal(run.sent[0].headers.uploadLength, undefined, 'and no Upload-Length')
      const last = run.sent[run.sent.length - 1]
      t.equal(last.headers.uploadLength, String(size), 'the last PATCH declares the length')
      t.equal(run.received[run.received.length - 1].offset, String(size), 'and is answered with the final offset')
      await checkFinished(t, server, url, source)
    })
  }
})

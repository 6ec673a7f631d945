// A client that dies in the middle of a body: the server keeps and records the
// bytes that reached the disk, and the client resumes from the offset HEAD gives.
// Done for PATCH and for creation-with-upload POST, with and without Content-Length.
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import { TUS, create, idOf, patch, startServer } from './helpers'
import {
  PATCH_HEADERS,
  assertCompleted,
  readRange,
  sha256,
  waitForBytesOnDisk,
  waitForOffset,
  waitForStreamingCreation
} from './interop-helpers'
import { streamRequest, type RawRequest } from './raw-client'

const KiB = 1024
const LENGTH = 1024 * KiB
const PIECE = 16 * KiB
// Part A is waited for on disk before part B is sent; the socket dies right after B.
const PART_A = 256 * KiB
const PART_B = 96 * KiB
const METADATA = { filename: 'interrompu.bin' }
const ENCODED_METADATA = `filename ${Buffer.from(METADATA.filename).toString('base64')}`

async function writePieces (raw: RawRequest, data: Buffer): Promise<void> {
  for (let start = 0; start < data.length; start += PIECE) await raw.write(data.subarray(start, start + PIECE))
}

for (const method of ['PATCH', 'POST'] as const) {
  for (const framing of ['chunked', 'content-length'] as const) {
    t.test(`${method} aborted mid-body (${framing}), then resumed`, async (t) => {
      const server = await startServer(t)
      const source = randomBytes(LENGTH)
      const lengthHeader: Record<string, string> = framing === 'content-length' ? { 'content-length': String(LENGTH) } : {}

      let raw: RawRequest
      let id: string
      // Where the body's bytes go while it streams.
      let streamingPath: string
      if (method === 'PATCH') {
        const url = await create(server.endpoint, { 'upload-length': String(LENGTH), 'upload-metadata': ENCODED_METADATA })
        id = idOf(url)
        streamingPath = path.join(server.directory, id)
        raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', ...lengthHeader })
      } else {
        raw = streamRequest(server.endpoint, 'POST', {
          ...PATCH_HEADERS,
          'upload-length': String(LENGTH),
          'upload-metadata': ENCODED_METADATA,
          ...lengthHeader
        })
        // The answer (and its Location) would come only after the body: the upload is found on
        // disk, where a creation that may carry the whole upload streams (a hidden file in completedDir).
        id = await waitForStreamingCreation(server.completedDir)
        streamingPath = path.join(server.completedDir, `.${id}.data.tmp`)
      }
      const url = `${server.endpoint}/${id}`
      const dataPath = path.join(server.directory, id)

      await writePieces(raw, source.subarray(0, PART_A))
      await waitForBytesOnDisk(streamingPath, 0, source.subarray(0, PART_A))
      await writePieces(raw, source.subarray(PART_A, PART_A + PART_B))
      raw.abort()
      const outcome = await raw.settled
      t.ok(outcome.error !== undefined, 'the dead client got no answer')

      // Bounded wait: the server records the bytes once it has noticed the dead socket.
      const offset = await waitForOffset(url, (value) => value > 0)
      t.ok(offset > 0, `HEAD gives a non-zero offset (${offset})`)
      // Part B was in the kernel before the socket closed (FIN, not RST), so the
      // server read all of it: tus 1.0.0 says the server SHOULD store as much of
      // the received data as possible, and nothing stops it from storing all.
      t.equal(offset, PART_A + PART_B, 'every byte that reached the server is recorded')
      t.ok((await readRange(dataPath, 0, offset)).equals(source.subarray(0, offset)), 'the data on disk up to the offset is what was sent')

      const resumed = await patch(url, offset, source.subarray(offset))
      t.equal(resumed.statusCode, 204, 'the resuming PATCH succeeds')
      t.equal(resumed.headers['upload-offset'], String(LENGTH), 'and reaches the end')
      t.equal(resumed.headers['tus-resumable'], TUS['tus-resumable'])
      await assertCompleted(t, server, { id, sha256: sha256(source), length: LENGTH, metadata: METADATA })
    })
  }
}

t.test('a PATCH aborted before any body byte leaves the offset alone', async (t) => {
  const server = await startServer(t)
  const source = randomBytes(64 * KiB)
  const url = await create(server.endpoint, { 'upload-length': String(source.length) })
  const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(source.length) })
  // Headers only: wait until the server has them (it has taken the upload's lock), then die.
  await new Promise((resolve) => raw.request.once('socket', (socket) => socket.once('connect', resolve)))
  raw.abort()
  t.ok((await raw.settled).error !== undefined, 'no answer for the dead client')
  const response = await patch(url, 0, source)
  t.equal(response.statusCode, 204, 'the upload is still at 0 and takes the whole body')
  t.equal(response.headers['upload-offset'], String(source.length))
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
})

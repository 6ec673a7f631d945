// The checksum and checksum-trailer extensions: a body counts only when it
// matches its Upload-Checksum; a mismatch (460) or a body that cannot be
// verified leaves the upload exactly as it was, on disk byte for byte.
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import type { ChecksumAlgorithm } from '../types/index'
import { TUS, create, idOf, patch, send, startServer, type Response, type TestServer } from './helpers'
import { OCTET, assertError, names, patchChunked, patchHeaders, pathOf, readRecordFile } from './protocol-helpers'
import { PATCH_HEADERS, assertCompleted, sha256, waitForBytesOnDisk, waitForOffset } from './interop-helpers'
import { rawRequest, streamRequest } from './raw-client'

const ALGORITHMS: ChecksumAlgorithm[] = ['sha1', 'sha256', 'sha512', 'md5']
const KiB = 1024

/** An Upload-Checksum value: `<algorithm> <base64 digest of data>`. */
const checksum = (algorithm: ChecksumAlgorithm, data: Buffer | string): string =>
  `${algorithm} ${createHash(algorithm).update(data).digest('base64')}`

interface Snapshot { record: string, data: Buffer }

/** Everything an upload is on disk: its record's text and its whole data file (preallocated tail included). */
async function snapshot (server: TestServer, id: string): Promise<Snapshot> {
  return {
    record: await readFile(path.join(server.directory, `${id}.meta`), 'utf8'),
    data: await readFile(path.join(server.directory, id))
  }
}

/** The upload is on disk exactly as in `before`, and HEAD says the same offset. */
async function assertUnchanged (t: tap.Test, server: TestServer, url: string, before: Snapshot, what: string): Promise<void> {
  const after = await snapshot(server, idOf(url))
  t.equal(after.data.length, before.data.length, `${what}: the data file has the same size`)
  t.ok(after.data.equals(before.data), `${what}: the data file is byte-identical`)
  t.equal(after.record, before.record, `${what}: the record is unchanged`)
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-offset'], String(JSON.parse(before.record).offset), `${what}: HEAD shows the same offset`)
}

/** A chunked PATCH whose checksum comes as an HTTP trailer (announced, or not, by the caller's headers). */
async function patchWithTrailer (url: string, offset: number, body: Buffer, headers: Record<string, string>, trailer?: string): Promise<Response> {
  const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': String(offset), ...headers })
  for (let start = 0; start < body.length; start += 16 * KiB) await raw.write(body.subarray(start, start + 16 * KiB))
  if (trailer !== undefined) raw.request.addTrailers({ 'Upload-Checksum': trailer })
  raw.end()
  const outcome = await raw.settled
  if (outcome.response === undefined) throw outcome.error
  return outcome.response
}

t.test('sha1, sha256, sha512 and md5: a matching body is written and counted', async (t) => {
  const server = await startServer(t)
  const source = randomBytes(4 * 100 * KiB)
  const url = await create(server.endpoint, { 'upload-length': String(source.length) })
  for (const [i, algorithm] of ALGORITHMS.entries()) {
    const chunk = source.subarray(i * 100 * KiB, (i + 1) * 100 * KiB)
    const response = await patch(url, i * 100 * KiB, chunk, { 'upload-checksum': checksum(algorithm, chunk) })
    t.equal(response.statusCode, 204, `${algorithm}: 204`)
    t.equal(response.headers['tus-resumable'], '1.0.0')
    t.equal(response.headers['upload-offset'], String((i + 1) * 100 * KiB), `${algorithm}: the offset advances`)
  }
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
})

for (const preallocate of [true, false]) {
  t.test(`a mismatch (preallocate ${String(preallocate)}): 460, nothing changed, then a retry works`, async (t) => {
    const server = await startServer(t, { preallocate })
    const source = randomBytes(3 * 256 * KiB)
    const [first, second, third] = [0, 1, 2].map((i) => source.subarray(i * 256 * KiB, (i + 1) * 256 * KiB))
    const url = await create(server.endpoint, { 'upload-length': String(source.length) })
    t.equal((await patch(url, 0, first)).statusCode, 204)
    const before = await snapshot(server, idOf(url))
    t.equal(before.data.length, preallocate ? source.length : first.length, 'the data file before: preallocated or not')

    for (const algorithm of ALGORITHMS) {
      // The right length and algorithm, the digest of other bytes: every byte of the body reaches the disk first.
      const response = await patch(url, first.length, second, { 'upload-checksum': checksum(algorithm, third) })
      assertError(t, response, 460, 'FST_TUS_CHECKSUM_MISMATCH', `${algorithm} mismatch`)
      t.equal(response.json().error, 'Checksum Mismatch', 'the status is named as the spec does')
      await assertUnchanged(t, server, url, before, `after the ${algorithm} mismatch`)
    }

    const retry = await patch(url, first.length, second, { 'upload-checksum': checksum('sha256', second) })
    t.equal(retry.statusCode, 204, 'the retry with the right checksum: 204')
    t.equal(retry.headers['upload-offset'], String(2 * 256 * KiB))
    t.equal((await patch(url, 2 * 256 * KiB, third, { 'upload-checksum': checksum('md5', third) })).statusCode, 204)
    await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
  })
}

t.test('creation-with-upload: the POST body is checked too', async (t) => {
  const server = await startServer(t)
  const body = randomBytes(10 * KiB)
  const headers = { ...TUS, 'upload-length': String(2 * body.length), 'content-type': OCTET }

  const matching = await send(server.endpoint, 'POST', { ...headers, 'upload-checksum': checksum('sha1', body) }, body)
  t.equal(matching.statusCode, 201, 'match: 201')
  t.equal(matching.headers['upload-offset'], String(body.length), 'with the bytes counted')
  const matchingId = idOf(String(matching.headers.location))
  t.equal((await readRecordFile(server.directory, matchingId)).offset, body.length)

  const mismatching = await send(server.endpoint, 'POST', { ...headers, 'upload-checksum': checksum('sha1', 'other') }, body)
  assertError(t, mismatching, 460, 'FST_TUS_CHECKSUM_MISMATCH', 'POST mismatch')
  const id = (await names(server.directory)).find((name) => name.length === 36 && name !== matchingId)
  t.ok(id, 'the upload was created')
  const record = await readRecordFile(server.directory, id!)
  t.equal(record.offset, 0, 'at offset 0: none of the body counted')
  t.ok((await readFile(path.join(server.directory, id!))).equals(Buffer.alloc(2 * body.length)), 'its data file holds none of the body')
  t.equal(mismatching.headers.location, `${server.endpoint}/${id!}`, 'Location tells the client where to resume')
  const resumed = await patch(`${server.endpoint}/${id!}`, 0, body, { 'upload-checksum': checksum('sha1', body) })
  t.equal(resumed.statusCode, 204, 'and it can be resumed from 0')
  t.equal(resumed.headers['upload-offset'], String(body.length))
})

t.test('an unsupported algorithm: 400 FST_TUS_UNSUPPORTED_CHECKSUM_ALGORITHM; a malformed value: 400 FST_TUS_INVALID_CHECKSUM', async (t) => {
  const server = await startServer(t)
  const body = Buffer.from('hello')
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const before = await snapshot(server, idOf(url))
  const md5Digest = createHash('md5').update(body).digest('base64')
  const sha1Digest = createHash('sha1').update(body).digest('base64')

  for (const value of [`crc32 ${md5Digest}`, `sha3-256 ${sha1Digest}`, `SHA1 ${sha1Digest}`]) {
    assertError(t, await patch(url, 0, body, { 'upload-checksum': value }), 400, 'FST_TUS_UNSUPPORTED_CHECKSUM_ALGORITHM', JSON.stringify(value))
  }
  const malformed = ['sha1', 'sha1 !!!', `sha1 ${md5Digest}`, `sha1  ${sha1Digest}`, `sha1 ${sha1Digest} x`, '', `sha1 ${sha1Digest.replace(/=$/, '')}`]
  for (const value of malformed) {
    assertError(t, await patch(url, 0, body, { 'upload-checksum': value }), 400, 'FST_TUS_INVALID_CHECKSUM', JSON.stringify(value))
  }
  // Sent twice, even with the same value: which one counts is not guessed at.
  const twice = await rawRequest(server.origin, { method: 'PATCH', path: pathOf(url), headers: patchHeaders(0, { 'upload-checksum': [`sha1 ${sha1Digest}`, `sha1 ${sha1Digest}`] }), body })
  assertError(t, twice, 400, 'FST_TUS_INVALID_CHECKSUM', 'Upload-Checksum twice')
  await assertUnchanged(t, server, url, before, 'after the refused checksums')

  const created = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10', 'content-type': OCTET, 'upload-checksum': 'sha1 !!!' }, body)
  assertError(t, created, 400, 'FST_TUS_INVALID_CHECKSUM', 'a malformed checksum on creation-with-upload')
  t.strictSame(await names(server.directory), [idOf(url), `${idOf(url)}.meta`], 'no upload created by the refused POST')
})

t.test('an aborted body: with a checksum nothing counts; without one the delivered bytes do', async (t) => {
  const server = await startServer(t)
  const piece = randomBytes(64 * KiB)
  const length = 4 * piece.length

  // Sends one piece of a body announcing four, waits until the server wrote it, then dies.
  const abortAfterPiece = async (url: string, headers: Record<string, string>): Promise<void> => {
    const raw = streamRequest(url, 'PATCH', { ...PATCH_HEADERS, 'upload-offset': '0', 'content-length': String(length), ...headers })
    await raw.write(piece)
    await waitForBytesOnDisk(path.join(server.directory, idOf(url)), 0, piece)
    raw.abort()
    await raw.settled
  }

  const checked = await create(server.endpoint, { 'upload-length': String(length) })
  const before = await snapshot(server, idOf(checked))
  await abortAfterPiece(checked, { 'upload-checksum': checksum('sha256', randomBytes(length)) })
  // An empty PATCH at 0 waits for (or takes over from) the aborted one, and is accepted only if nothing counted.
  const probe = await patch(checked, 0, Buffer.alloc(0))
  t.equal(probe.statusCode, 204, `offset 0 is still right (got ${probe.statusCode} ${probe.text})`)
  t.equal(probe.headers['upload-offset'], '0')
  await assertUnchanged(t, server, checked, before, 'after the aborted checksummed PATCH')

  const unchecked = await create(server.endpoint, { 'upload-length': String(length) })
  await abortAfterPiece(unchecked, {})
  t.equal(await waitForOffset(unchecked, (offset) => offset > 0), piece.length, 'without a checksum, the delivered piece counts')
})

t.test('checksum-trailer: the checksum sent as an HTTP trailer', async (t) => {
  const server = await startServer(t)
  const source = randomBytes(3 * 48 * KiB)
  const [first, second, third] = [0, 1, 2].map((i) => source.subarray(i * 48 * KiB, (i + 1) * 48 * KiB))
  const url = await create(server.endpoint, { 'upload-length': String(source.length) })
  const announced = { trailer: 'Upload-Checksum' }

  const right = await patchWithTrailer(url, 0, first, announced, checksum('sha512', first))
  t.equal(right.statusCode, 204, 'a right trailer: 204')
  t.equal(right.headers['upload-offset'], String(first.length))
  const before = await snapshot(server, idOf(url))

  assertError(t, await patchWithTrailer(url, first.length, second, announced, checksum('sha512', third)), 460, 'FST_TUS_CHECKSUM_MISMATCH', 'a wrong trailer')
  await assertUnchanged(t, server, url, before, 'after the wrong trailer')
  assertError(t, await patchWithTrailer(url, first.length, second, announced), 400, 'FST_TUS_INVALID_CHECKSUM', 'an announced trailer that never came')
  await assertUnchanged(t, server, url, before, 'after the missing trailer')
  assertError(t, await patchWithTrailer(url, first.length, second, announced, 'crc32 AAAAAA=='), 400, 'FST_TUS_UNSUPPORTED_CHECKSUM_ALGORITHM', 'a trailer with an unknown algorithm')
  await assertUnchanged(t, server, url, before, 'after the unsupported trailer')
  const both = await patchChunked(url, first.length, [second], { ...announced, 'upload-checksum': checksum('sha1', second) })
  assertError(t, both, 400, 'FST_TUS_INVALID_CHECKSUM', 'a header and a trailer')
  await assertUnchanged(t, server, url, before, 'after header and trailer both')

  t.equal((await patchWithTrailer(url, first.length, second, announced, checksum('md5', second))).statusCode, 204, 'the retry: 204')
  const amongOthers = await patchWithTrailer(url, 2 * 48 * KiB, third, { trailer: 'Foo, Upload-Checksum' }, checksum('sha1', third))
  t.equal(amongOthers.statusCode, 204, 'announced among other trailers: 204')
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
})

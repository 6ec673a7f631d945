// Progress 104s on long IETF appends: while a body streams, each time its bytes
// are durable and recorded (every 64 MiB or so, the store's checkpoints) the client is
// told the offset it could resume from, in a 104 without Location.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { idOf, startServer } from '../helpers'
import { assertCompleted, sha256 } from '../interop-helpers'
import { exchange } from '../raw-socket'

const MiB = 1024 * 1024
const CHECKPOINT = 64 * MiB
// Past one checkpoint, short of two.
const source = Buffer.concat([randomBytes(MiB), Buffer.alloc(CHECKPOINT + 5 * MiB)])

t.test('an optimistic creation: the announcing 104, a progress 104, the 201', async (t) => {
  const server = await startServer(t, { expiration: false })
  const responses = await exchange(server.origin, 'POST /files HTTP/1.1', { 'upload-draft-interop-version': 9, 'upload-complete': '?1', 'content-length': source.length }, source)
  t.same(responses.map((response) => response.status), [104, 104, 201])
  const url = responses[0].headers.location
  const progress = Number(responses[1].headers['upload-offset'])
  t.ok(progress >= CHECKPOINT && progress < source.length, `the durable offset past the first checkpoint (${progress})`)
  t.equal(responses[1].head, `HTTP/1.1 104 Upload Resumption Supported\r\nUpload-Offset: ${progress}\r\nUpload-Draft-Interop-Version: 9\r\n\r\n`, 'the progress 104, byte for byte, without Location')
  t.equal(responses[2].headers['upload-complete'], '?1', 'complete')
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
})

for (const version of [8]) {
  t.test(`version ${version}: a long append gets a progress 104 before its answer`, async (t) => {
    const server = await startServer(t)
    const [created] = await exchange(server.origin, 'POST /files HTTP/1.1', { 'upload-draft-interop-version': version, 'upload-complete': '?0', 'content-length': 0 })
    const url = created.headers.location
    const responses = await exchange(server.origin, `PATCH ${new URL(url).pathname} HTTP/1.1`, {
      'upload-draft-interop-version': version, 'upload-complete': '?1', 'upload-offset': 0, 'content-type': 'application/partial-upload', 'content-length': source.length
    }, source)
    t.same(responses.map((response) => response.status), [104, 204])
    const progress = Number(responses[0].headers['upload-offset'])
    t.ok(progress >= CHECKPOINT && progress < source.length, `the durable offset past the first checkpoint (${progress})`)
    t.equal(responses[0].headers.location, undefined, 'no Location on a progress 104')
    await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
  })
}

t.test('versions before 6 get no progress 104s', async (t) => {
  const server = await startServer(t)
  const responses = await exchange(server.origin, 'POST /files HTTP/1.1', { 'upload-draft-interop-version': 5, 'upload-complete': '?1', 'content-length': source.length }, source)
  t.same(responses.map((response) => response.status), [104, 201], 'the announcing 104 only')
})

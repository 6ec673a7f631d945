// The concatenation and concatenation-unfinished extensions: partial uploads,
// a final upload made of them (by absolute URL or by path), assembled byte for
// byte and handed over once, even when its last two partials finish at the
// same moment in two server processes.
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import * as tus from 'tus-js-client'
import type { TusExtension, UploadRecord } from '../types/index'
import { EXTENSIONS } from '../lib/options'
import { TUS, create, idOf, patch, send, startServer, tempDir, type TestServer } from './helpers'
import { OCTET, assertError, listTree, names, readRecordFile } from './protocol-helpers'
import { assertCompleted, sha256, sha256File, waitFor } from './interop-helpers'
import { CLI, ensureFreshBuild, startNode } from './process-helpers'

const KiB = 1024
const MiB = 1024 * KiB
const UNKNOWN_ID = '1b4e28ba-2fa1-4d2e-883f-0016d3cca427'

/** Creates a partial upload of `data`'s length and sends all of it but the last `keep` bytes; returns its URL. */
async function partial (endpoint: string, data: Buffer, keep = 0): Promise<string> {
  const url = await create(endpoint, { 'upload-length': String(data.length), 'upload-concat': 'partial' })
  if (data.length - keep > 0) {
    const response = await patch(url, 0, data.subarray(0, data.length - keep))
    if (response.statusCode !== 204) throw new Error(`partial PATCH failed: ${response.statusCode} ${response.text}`)
  }
  return url
}

/** POSTs a final upload; `urls` go into Upload-Concat as given. */
const postFinal = (endpoint: string, urls: string[], headers: Record<string, string> = {}): ReturnType<typeof send> =>
  send(endpoint, 'POST', { ...TUS, 'upload-concat': `final;${urls.join(' ')}`, ...headers })

const pathOf = (url: string): string => new URL(url).pathname

/** A server whose tus:completed calls are recorded. */
async function serverWithCompleted (t: tap.Test, extensions?: TusExtension[]): Promise<{ server: TestServer, completed: UploadRecord[] }> {
  const completed: UploadRecord[] = []
  const server = await startServer(t, { ...(extensions === undefined ? {} : { extensions }), hooks: { 'tus:completed': (upload) => { completed.push(upload) } } })
  return { server, completed }
}

for (const form of ['absolute URLs', 'paths'] as const) {
  t.test(`a final upload of finished partials named by ${form}`, async (t) => {
    const { server, completed } = await serverWithCompleted(t)
    // A zero-length partial among them: finished the moment it is created.
    const parts = [Buffer.from('Hello, '), randomBytes(70 * KiB + 3), Buffer.alloc(0), Buffer.from('!')]
    const urls = await Promise.all(parts.map((data) => partial(server.endpoint, data)))
    const ids = urls.map(idOf)

    for (const [i, url] of urls.entries()) {
      const head = await send(url, 'HEAD', TUS)
      t.equal(head.statusCode, 200)
      t.equal(head.headers['upload-concat'], 'partial', `partial ${i}: HEAD shows Upload-Concat: partial`)
      t.equal(head.headers['upload-offset'], String(parts[i].length), `partial ${i}: finished`)
      t.equal(head.headers['upload-length'], String(parts[i].length))
    }
    t.strictSame(await names(server.completedDir), [], 'finished partials are not handed over')
    t.strictSame(completed, [], 'nor reported as completed')

    const final = await postFinal(server.endpoint, form === 'paths' ? urls.map(pathOf) : urls, { 'upload-metadata': 'filename aGVsbG8udHh0' })
    t.equal(final.statusCode, 201, 'the final upload: 201')
    t.equal(final.headers['tus-resumable'], '1.0.0')
    const finalUrl = String(final.headers.location)
    const finalId = idOf(finalUrl)
    t.match(finalUrl, new RegExp(`^${server.endpoint}/[0-9a-f-]{36}$`), 'Location is an upload URL')
    t.notOk(ids.includes(finalId), 'the final upload has an id of its own')

    const whole = Buffer.concat(parts)
    const head = await send(finalUrl, 'HEAD', TUS)
    t.equal(head.statusCode, 200)
    t.equal(head.headers['upload-length'], String(whole.length), 'its length is the sum of the partials')
    t.equal(head.headers['upload-offset'], String(whole.length), 'assembled at once: the offset is the length')
    t.equal(head.headers['upload-concat'], `final;${ids.map((id) => `/files/${id}`).join(' ')}`, 'HEAD shows Upload-Concat: final with the partials, in order')
    t.equal(head.headers['upload-metadata'], 'filename aGVsbG8udHh0')

    await assertCompleted(t, server, { id: finalId, sha256: sha256(whole), length: whole.length, metadata: { filename: 'hello.txt' } })
    t.ok((await readFile(path.join(server.completedDir, finalId))).equals(whole), 'the concatenation, byte for byte')
    t.strictSame((await readRecordFile(server.completedDir, finalId)).concat, { final: ids }, 'the record names its partials')
    t.strictSame(await names(server.completedDir), [finalId, `${finalId}.meta`], 'only the final upload is in completedDir')
    t.strictSame(completed.map((upload) => upload.id), [finalId], 'tus:completed once, for the final upload only')
    for (const url of urls) assertError(t, await send(url, 'HEAD', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'a used partial is gone', { head: true })

    assertError(t, await patch(finalUrl, whole.length, ''), 403, 'FST_TUS_CONCAT_FINAL_PATCH', 'PATCH of a finished final upload')
    assertError(t, await patch(finalUrl, 0, 'x'), 403, 'FST_TUS_CONCAT_FINAL_PATCH', 'PATCH of a finished final upload with data')

    const file = await server.app.tus.waitForFile({ timeout: 30_000 })
    t.equal(file.id, finalId, 'a worker gets the final upload')
    await file.release()
    t.strictSame(await names(server.completedDir), [], 'and nothing else was there to claim')
  })
}

t.test('concatenation-unfinished: a final upload created before its partials finish', async (t) => {
  const { server, completed } = await serverWithCompleted(t)
  const a = randomBytes(10 * KiB)
  const b = randomBytes(20 * KiB)
  const aUrl = await partial(server.endpoint, a, 4 * KiB)
  const bUrl = await partial(server.endpoint, b, b.length)

  const final = await postFinal(server.endpoint, [aUrl, pathOf(bUrl)])
  t.equal(final.statusCode, 201)
  const finalUrl = String(final.headers.location)
  const finalId = idOf(finalUrl)
  const concat = `final;${pathOf(aUrl)} ${pathOf(bUrl)}`

  const assertUnassembled = async (what: string): Promise<void> => {
    const head = await send(finalUrl, 'HEAD', TUS)
    t.equal(head.statusCode, 200, `${what}: HEAD 200`)
    t.equal(head.headers['upload-concat'], concat, `${what}: Upload-Concat names the partials`)
    t.notOk('upload-offset' in head.headers, `${what}: no Upload-Offset while unassembled`)
    t.equal(head.headers['upload-length'], String(a.length + b.length), `${what}: the length is known already`)
    t.strictSame(await names(server.completedDir), [], `${what}: nothing handed over`)
    t.strictSame(completed, [], `${what}: nothing completed`)
  }
  await assertUnassembled('before any partial finished')
  assertError(t, await patch(finalUrl, 0, 'x'), 403, 'FST_TUS_CONCAT_FINAL_PATCH', 'PATCH of an unfinished final upload')

  t.equal((await patch(aUrl, 6 * KiB, a.subarray(6 * KiB))).statusCode, 204, 'the first partial finishes')
  await assertUnassembled('one partial finished')

  const last = await patch(bUrl, 0, b)
  t.equal(last.statusCode, 204, 'the last partial finishes')
  t.equal(last.headers['upload-offset'], String(b.length), 'its own offset in the answer')
  const head = await send(finalUrl, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], String(a.length + b.length), 'assembled: Upload-Offset == Upload-Length')
  t.equal(head.headers['upload-length'], String(a.length + b.length))
  t.equal(head.headers['upload-concat'], concat)
  await assertCompleted(t, server, { id: finalId, sha256: sha256(Buffer.concat([a, b])), length: a.length + b.length })
  t.strictSame(completed.map((upload) => upload.id), [finalId], 'tus:completed once, for the final upload')
})

t.test('a partial whose link to its final is unreadable still finishes, and the janitor assembles the final', async (t) => {
  const { server, completed } = await serverWithCompleted(t)
  const a = randomBytes(10 * KiB)
  const b = randomBytes(20 * KiB)
  const aUrl = await partial(server.endpoint, a)
  const bUrl = await partial(server.endpoint, b, b.length)
  const final = await postFinal(server.endpoint, [aUrl, bUrl])
  t.equal(final.statusCode, 201)
  const finalId = idOf(String(final.headers.location))
  const link = path.join(server.directory, `${idOf(bUrl)}.final`)
  t.equal(await readFile(link, 'utf8'), finalId, 'the waiting partial links to its final')
  t.notOk((await names(server.directory)).some((name) => name.endsWith('.tmp')), 'no temporary file left by the link')
  // What a power cut leaves when a link's name is durable and its content is not.
  await writeFile(link, '')
  const last = await patch(bUrl, 0, b)
  t.equal(last.statusCode, 204, 'the partial finishes')
  t.strictSame(completed, [], 'the final is not assembled without its link')
  t.strictSame((await server.app.tus.janitor.run()).finalized, [finalId], 'the janitor assembles and hands over the final')
  await assertCompleted(t, server, { id: finalId, sha256: sha256(Buffer.concat([a, b])), length: a.length + b.length })
  t.strictSame(completed.map((upload) => upload.id), [finalId], 'tus:completed once, for the final upload')
})

t.test('without concatenation-unfinished, a final upload needs finished partials', async (t) => {
  const extensions = EXTENSIONS.filter((name) => name !== 'concatenation-unfinished')
  const { server, completed } = await serverWithCompleted(t, extensions)
  const a = await partial(server.endpoint, Buffer.from('abc'))
  const b = await partial(server.endpoint, Buffer.from('defg'), 1)
  const before = await listTree(server.directory)
  assertError(t, await postFinal(server.endpoint, [a, b]), 400, 'FST_TUS_INVALID_CONCAT', 'a final over an unfinished partial')
  t.strictSame(await listTree(server.directory), before, 'nothing created')

  t.equal((await patch(b, 3, 'g')).statusCode, 204)
  const final = await postFinal(server.endpoint, [a, b])
  t.equal(final.statusCode, 201, 'once every partial is finished: 201')
  const finalId = idOf(String(final.headers.location))
  await assertCompleted(t, server, { id: finalId, sha256: sha256(Buffer.from('abcdefg')), length: 7 })
  t.strictSame(completed.map((upload) => upload.id), [finalId])
})

t.test('invalid final uploads: 400 FST_TUS_INVALID_CONCAT, an unknown partial 404; nothing created', async (t) => {
  const server = await startServer(t)
  const a = await partial(server.endpoint, Buffer.from('abc'))
  const aPath = pathOf(a)
  const aId = idOf(a)
  const plain = await create(server.endpoint, { 'upload-length': '3' })
  t.equal((await patch(plain, 0, 'abc')).statusCode, 204)
  // A plain upload that is not finished (a finished one has left the directory).
  const unfinishedPlain = await create(server.endpoint, { 'upload-length': '3' })
  const before = await listTree(server.directory)
  const port = new URL(server.origin).port

  const invalid: Array<[string, Record<string, string>, string?]> = [
    ['final; with no URL', { 'upload-concat': 'final;' }],
    ['final; with spaces only', { 'upload-concat': 'final;   ' }],
    ['another host', { 'upload-concat': `final;http://other-host/files/${aId}` }],
    ['another host, same port', { 'upload-concat': `final;http://other-host:${port}/files/${aId}` }],
    ['another port', { 'upload-concat': `final;http://127.0.0.1:1/files/${aId}` }],
    ['another scheme', { 'upload-concat': `final;https://127.0.0.1:${port}/files/${aId}` }],
    ['a URL outside the prefix', { 'upload-concat': `final;/other/${aId}` }],
    ['a URL at the root', { 'upload-concat': `final;${server.origin}/${aId}` }],
    ['a URL below an upload', { 'upload-concat': `final;${aPath}/x` }],
    ['a query string', { 'upload-concat': `final;${aPath}?x=1` }],
    ['not an upload id', { 'upload-concat': 'final;/files/not-an-id' }],
    ['a finished plain upload', { 'upload-concat': `final;${pathOf(plain)}` }],
    ['an unfinished plain upload', { 'upload-concat': `final;${aPath} ${pathOf(unfinishedPlain)}` }],
    ['malformed: final without ;', { 'upload-concat': `final ${aPath}` }],
    ['malformed: finale', { 'upload-concat': `finale;${aPath}` }],
    ['malformed: partial with URLs', { 'upload-concat': `partial;${aPath}` }],
    ['malformed: Partial', { 'upload-concat': 'Partial', 'upload-length': '3' }],
    ['malformed: empty', { 'upload-concat': '', 'upload-length': '3' }],
    ['Upload-Length with final', { 'upload-concat': `final;${aPath}`, 'upload-length': '3' }],
    ['Upload-Defer-Length with final', { 'upload-concat': `final;${aPath}`, 'upload-defer-length': '1' }],
    ['a body with final', { 'upload-concat': `final;${aPath}`, 'content-type': OCTET }, 'abc']
  ]
  for (const [label, headers, body] of invalid) {
    assertError(t, await send(server.endpoint, 'POST', { ...TUS, ...headers }, body), 400, 'FST_TUS_INVALID_CONCAT', label)
  }
  assertError(t, await postFinal(server.endpoint, [aPath, `/files/${UNKNOWN_ID}`]), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'an unknown partial')
  t.strictSame(await listTree(server.directory), before, 'no upload created, no partial touched')
  t.strictSame(await names(server.completedDir), [idOf(plain), `${idOf(plain)}.meta`], 'nothing handed over')
  const head = await send(a, 'HEAD', TUS)
  t.equal(head.headers['upload-offset'], '3', 'the partial is still there, finished, for a valid final')
  t.equal((await postFinal(server.endpoint, [aPath])).statusCode, 201, 'which still works')
})

t.test('tus-js-client 4 with parallelUploads: 4, ~3 MiB, checked byte for byte', async (t) => {
  const { server, completed } = await serverWithCompleted(t)
  const source = randomBytes(3 * MiB + 12_345)
  const concats: string[] = []
  const url = await new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(source, {
      endpoint: server.endpoint,
      parallelUploads: 4,
      chunkSize: 512 * KiB,
      metadata: { filename: 'parallel.bin', filetype: 'application/octet-stream' },
      onBeforeRequest: (request) => {
        // The client sends Upload-Concat on every request of a partial upload; creations are what count.
        const concat = request.getHeader('Upload-Concat')
        if (request.getMethod() === 'POST' && concat !== undefined) concats.push(concat)
      },
      onSuccess: () => { resolve(upload.url!) },
      onError: reject
    })
    upload.start()
  })
  t.equal(concats.filter((value) => value === 'partial').length, 4, 'the client made four partial uploads')
  t.equal(concats.filter((value) => value.startsWith('final;')).length, 1, 'and one final upload')
  const finalId = idOf(url)
  await assertCompleted(t, server, {
    id: finalId,
    sha256: sha256(source),
    length: source.length,
    metadata: { filename: 'parallel.bin', filetype: 'application/octet-stream' }
  })
  t.strictSame(await names(server.completedDir), [finalId, `${finalId}.meta`], 'only the final upload is handed over')
  t.strictSame(completed.map((upload) => upload.id), [finalId], 'tus:completed once, for the final upload')
})

// Two `fastify-tus serve` processes on the same directories.
const LISTENING = /^fastify-tus listening on (http:\/\/127\.0\.0\.1:\d+\/files)$/m

t.test('the last partials finish at the same moment in two processes: the final is handed over exactly once', async (t) => {
  ensureFreshBuild()
  const root = await tempDir(t)
  const dirs = ['--directory', path.join(root, 'uploads'), '--completed-dir', path.join(root, 'completed')]
  const [one, two] = await Promise.all([0, 1].map(() =>
    startNode(t, [CLI, 'serve', '--port', '0', ...dirs, '--log-level', 'info'], LISTENING, { cwd: root })))
  const [endpoint1, endpoint2] = [one.match[1], two.match[1]]
  const completedDir = path.join(root, 'completed')
  const directory = path.join(root, 'uploads')
  const handedOver = (id: string): number =>
    [one, two].flatMap((server) => server.stdout().split('\n'))
      .filter((line) => line.includes('"upload completed"') && line.includes(`"uploadId":"${id}"`)).length

  const finals: string[] = []
  const ROUNDS = 10
  for (let round = 0; round < ROUNDS; round++) {
    const a = randomBytes(64 * KiB + Math.floor(Math.random() * 64 * KiB))
    const b = randomBytes(64 * KiB + Math.floor(Math.random() * 64 * KiB))
    const last = 4 * KiB
    const aUrl = await partial(endpoint1, a, last)
    const bUrl = await partial(endpoint1, b, last)
    const final = await postFinal(endpoint1, [pathOf(aUrl), pathOf(bUrl)])
    t.equal(final.statusCode, 201, `round ${round}: final created`)
    const finalId = idOf(String(final.headers.location))
    finals.push(finalId)
    t.notOk('upload-offset' in (await send(`${endpoint1}/${finalId}`, 'HEAD', TUS)).headers, `round ${round}: unassembled`)

    const [lastA, lastB] = await Promise.all([
      patch(`${endpoint1}/${idOf(aUrl)}`, a.length - last, a.subarray(a.length - last)),
      patch(`${endpoint2}/${idOf(bUrl)}`, b.length - last, b.subarray(b.length - last))
    ])
    t.equal(lastA.statusCode, 204, `round ${round}: A's last PATCH (process 1): 204`)
    t.equal(lastB.statusCode, 204, `round ${round}: B's last PATCH (process 2): 204`)

    // Both answers came after the assembly: the one that did it answers last.
    t.strictSame(await names(completedDir), [...finals].sort().flatMap((id) => [id, `${id}.meta`]).sort(), `round ${round}: one data and one record more in completedDir`)
    t.strictSame(await names(directory), [], `round ${round}: partials, links and final gone from the in-progress directory`)
    t.equal(await sha256File(path.join(completedDir, finalId)), sha256(Buffer.concat([a, b])), `round ${round}: the final's bytes`)
    const record = await readRecordFile(completedDir, finalId)
    t.match(record, { offset: a.length + b.length, length: a.length + b.length, concat: { final: [idOf(aUrl), idOf(bUrl)] } }, `round ${round}: the final's record`)
    const head = await send(`${endpoint2}/${finalId}`, 'HEAD', TUS)
    t.equal(head.headers['upload-offset'], String(a.length + b.length), `round ${round}: both processes see it finished`)
  }
  // The log lines may trail the answers a little.
  await waitFor('an "upload completed" line for every final', async () => finals.every((id) => handedOver(id) >= 1) ? true : undefined)
  t.strictSame(finals.map(handedOver), finals.map(() => 1), 'each final was handed over by exactly one process, once')
})

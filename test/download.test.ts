// The `download` option: GET <prefix>/<id> of a finished upload, over raw HTTP:
// headers, Range (206, 416), conditional requests, Content-Disposition for
// UTF-8 names, what is refused (unfinished, unknown, claimed, preAccess), and
// what stays as it was (off by default, tus HEAD, serve's --no-download).
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import type { FastifyTusOptions } from '../types/index'
import { createServer, parseServeArgs } from '../lib/cli/serve'
import { serveHelp } from '../lib/cli/serve-flags'
import { fastifyTus } from '../lib/plugin'
import { TUS, create, idOf, send, startServer, tempDir } from './helpers'
import { assertTusError, sha256 } from './interop-helpers'
import { finishUpload } from './lifecycle-helpers'

const NAME = 'naïve résumé – 😀 "quoted" 100%.pdf'

t.test('a finished upload: its bytes, type, length, validators and name', async (t) => {
  const server = await startServer(t, { download: true })
  const body = randomBytes(10_000)
  const id = await finishUpload(server.endpoint, body, { filename: NAME, filetype: 'application/pdf' })
  // A browser's download link sends no Tus-Resumable.
  const response = await send(`${server.endpoint}/${id}`, 'GET')
  t.equal(response.statusCode, 200)
  const bytes = await getBytes(`${server.endpoint}/${id}`)
  t.equal(sha256(bytes.body), sha256(body), 'the same bytes')
  t.equal(response.headers['content-length'], String(body.length), 'Content-Length')
  t.equal(response.headers['content-type'], 'application/pdf', 'Content-Type from the filetype metadata')
  t.equal(response.headers['accept-ranges'], 'bytes')
  t.match(response.headers.etag, /^W\/"[0-9a-f]+-[0-9a-f]+"$/, 'an ETag')
  t.ok(Date.parse(String(response.headers['last-modified'])) > 0, 'Last-Modified')
  t.equal(response.headers['x-content-type-options'], 'nosniff')
  t.equal(response.headers['content-security-policy'], "default-src 'none'; sandbox")
  t.equal(response.headers['cache-control'], 'private, no-cache')

  const disposition = String(response.headers['content-disposition'])
  t.equal(disposition, 'attachment; filename="na_ve r_sum_ _ _ _quoted_ 100_.pdf"; ' +
    "filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9%20%E2%80%93%20%F0%9F%98%80%20%22quoted%22%20100%25.pdf", 'an ASCII fallback and the UTF-8 name')
  const encoded = /filename\*=UTF-8''([^;]+)$/.exec(disposition)![1]
  t.equal(decodeURIComponent(encoded), NAME, 'filename* decodes to the exact name')
  t.match(encoded, /^[A-Za-z0-9!#$&+\-.^_`|~%]+$/, 'filename* holds only RFC 8187 attr-chars and escapes')
  t.match(disposition, /^[\x20-\x7e]+$/, 'the header itself is ASCII')
})

t.test('names and types the client chose are made safe', async (t) => {
  const server = await startServer(t, { download: true })
  const cases: Array<[Record<string, string | null>, string, string]> = [
    [{}, 'application/octet-stream', 'the id'],
    [{ filename: null }, 'application/octet-stream', 'the id'],
    [{ filename: '../../etc/passwd', filetype: 'text/plain' }, 'text/plain', 'passwd'],
    [{ filename: 'C:\\Users\\me\\a.txt' }, 'application/octet-stream', 'a.txt'],
    [{ name: 'from-uppy.bin', filetype: 'application/x-thing+zip' }, 'application/x-thing+zip', 'from-uppy.bin'],
    // Header syntax and parameters in filetype are not passed on.
    [{ filename: 'x.html', filetype: 'text/html; charset=utf-7' }, 'application/octet-stream', 'x.html'],
    [{ filename: 'x', filetype: 'text/html\r\nSet-Cookie: a=b' }, 'application/octet-stream', 'x'],
    [{ filename: 'tab\tand\u0007bell.txt', filetype: 'nonsense' }, 'application/octet-stream', 'tabandbell.txt']
  ]
  for (const [metadata, type, name] of cases) {
    const id = await finishUpload(server.endpoint, Buffer.from('hi'), metadata)
    const response = await send(`${server.endpoint}/${id}`, 'GET')
    t.equal(response.statusCode, 200, JSON.stringify(metadata))
    t.equal(response.headers['content-type'], type, `type ${type}`)
    const expected = name === 'the id' ? id : name
    t.equal(response.headers['content-disposition'], `attachment; filename="${expected}"; filename*=UTF-8''${encodeURIComponent(expected)}`, `named ${expected}`)
    t.equal(response.headers['set-cookie'], undefined)
  }
  // An HTML file of the client's is served as HTML, but only ever as a sandboxed attachment.
  const html = await finishUpload(server.endpoint, Buffer.from('<script>alert(1)</script>'), { filename: 'page.html', filetype: 'text/html' })
  const response = await send(`${server.endpoint}/${html}`, 'GET')
  t.equal(response.headers['content-type'], 'text/html')
  t.match(response.headers['content-disposition'], /^attachment;/)
  t.equal(response.headers['x-content-type-options'], 'nosniff')
  t.match(response.headers['content-security-policy'], /sandbox/)
})

t.test('Range: one range is 206, a range past the end is 416, several ranges are the whole file', async (t) => {
  const server = await startServer(t, { download: true })
  const body = randomBytes(1000)
  const url = `${server.endpoint}/${await finishUpload(server.endpoint, body, { filename: 'r.bin' })}`

  const first = await getBytes(url, { range: 'bytes=0-9' })
  t.equal(first.statusCode, 206)
  t.equal(first.headers['content-range'], 'bytes 0-9/1000')
  t.equal(first.headers['content-length'], '10')
  t.ok(first.body.equals(body.subarray(0, 10)), 'the first ten bytes')

  const middle = await getBytes(url, { range: 'bytes=500-' })
  t.equal(middle.statusCode, 206)
  t.equal(middle.headers['content-range'], 'bytes 500-999/1000')
  t.ok(middle.body.equals(body.subarray(500)), 'from 500 to the end')

  const suffix = await getBytes(url, { range: 'bytes=-5' })
  t.equal(suffix.headers['content-range'], 'bytes 995-999/1000')
  t.ok(suffix.body.equals(body.subarray(995)), 'the last five bytes')

  const clipped = await getBytes(url, { range: 'bytes=990-5000' })
  t.equal(clipped.headers['content-range'], 'bytes 990-999/1000', 'a range past the end is cut at the end')

  const past = await send(url, 'GET', { range: 'bytes=1000-' })
  assertTusError(t, past, 416, 'FST_TUS_RANGE_NOT_SATISFIABLE', 'a range past the end:')
  t.equal(past.headers['content-range'], 'bytes */1000', 'names the length')

  const several = await getBytes(url, { range: 'bytes=0-1,5-6' })
  t.equal(several.statusCode, 200, 'several ranges: the whole file')
  t.ok(several.body.equals(body))
  const garbage = await getBytes(url, { range: 'lines=1-2' })
  t.equal(garbage.statusCode, 200, 'another unit: the whole file')
})

t.test('conditional requests: If-None-Match, If-Range, If-Match, If-Modified-Since', async (t) => {
  const server = await startServer(t, { download: true })
  const body = randomBytes(100)
  const url = `${server.endpoint}/${await finishUpload(server.endpoint, body)}`
  const { headers } = await send(url, 'GET')
  const etag = String(headers.etag)

  const notModified = await send(url, 'GET', { 'if-none-match': etag })
  t.equal(notModified.statusCode, 304, 'If-None-Match with its ETag: 304')
  t.equal(notModified.text, '', 'no body')
  t.equal(notModified.headers.etag, etag)
  t.equal((await send(url, 'GET', { 'if-none-match': 'W/"other"' })).statusCode, 200, 'another ETag: 200')
  t.equal((await send(url, 'GET', { 'if-modified-since': String(headers['last-modified']) })).statusCode, 304, 'If-Modified-Since its Last-Modified: 304')

  const fresh = await getBytes(url, { range: 'bytes=10-19', 'if-range': etag })
  t.equal(fresh.statusCode, 206, 'If-Range with the current ETag: the range')
  t.ok(fresh.body.equals(body.subarray(10, 20)))
  const stale = await getBytes(url, { range: 'bytes=10-19', 'if-range': 'W/"old"' })
  t.equal(stale.statusCode, 200, 'If-Range with another ETag: the whole file')
  t.ok(stale.body.equals(body))

  assertTusError(t, await send(url, 'GET', { 'if-match': '"something-else"' }), 412, 'FST_TUS_DOWNLOAD_PRECONDITION_FAILED', 'If-Match of another:')
  t.equal((await send(url, 'GET', { 'if-match': etag })).statusCode, 200, 'If-Match of its own ETag: 200')
})

t.test('refused: unfinished (409), unknown (404), claimed by a worker (423), then delivered (404)', async (t) => {
  const server = await startServer(t, { download: true })
  const unfinished = await create(server.endpoint, { 'upload-length': '10' })
  assertTusError(t, await send(unfinished, 'GET'), 409, 'FST_TUS_UPLOAD_UNFINISHED', 'unfinished:')
  t.match((await send(unfinished, 'GET')).json().message, /0 of 10 bytes/)
  const deferred = await create(server.endpoint, { 'upload-defer-length': '1' })
  assertTusError(t, await send(deferred, 'GET'), 409, 'FST_TUS_UPLOAD_UNFINISHED', 'deferred length:')
  assertTusError(t, await send(`${server.endpoint}/00000000-0000-4000-8000-000000000000`, 'GET'), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'unknown id:')
  assertTusError(t, await send(`${server.endpoint}/not-an-id`, 'GET'), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'not an id:')
  assertTusError(t, await send(`${server.endpoint}/..%2F..%2Fetc%2Fpasswd`, 'GET'), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'an encoded path:')

  const id = await finishUpload(server.endpoint, Buffer.from('claimed'))
  const file = await server.app.tus.waitForFile({ timeout: 5000 })
  t.equal(file.id, id)
  assertTusError(t, await send(`${server.endpoint}/${id}`, 'GET'), 423, 'FST_TUS_UPLOAD_CLAIMED', 'claimed:')
  await file.release()
  assertTusError(t, await send(`${server.endpoint}/${id}`, 'GET'), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'released:')

  // A finished partial upload stays where it is, for its final: not a download.
  const partial = await create(server.endpoint, { 'upload-length': '3', 'upload-concat': 'partial' })
  t.equal((await send(partial, 'PATCH', { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, 'abc')).statusCode, 204)
  assertTusError(t, await send(partial, 'GET'), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'a finished partial upload:')

  // Downloads take no claim: a worker gets the file while it is being downloaded, and downloads run side by side.
  const other = await finishUpload(server.endpoint, randomBytes(4096))
  const downloads = await Promise.all([1, 2, 3].map(() => send(`${server.endpoint}/${other}`, 'GET')))
  t.strictSame(downloads.map((response) => response.statusCode), [200, 200, 200], 'three downloads at once')
  const claimed = await server.app.tus.waitForFile({ timeout: 5000 })
  t.equal(claimed.id, other, 'and a worker still claims it')
  await claimed.release()
})

t.test('tus:preAccess guards downloads', async (t) => {
  const server = await startServer(t, { download: true }, {}, (app) => {
    app.tus.addHook('tus:preAccess', async (request, upload) => {
      if (request.headers['x-owner'] !== upload.metadata.owner) throw Object.assign(new Error('not yours'), { statusCode: 403 })
    })
  })
  const id = await finishUpload(server.endpoint, Buffer.from('secret'), { owner: 'ann' })
  const refused = await send(`${server.endpoint}/${id}`, 'GET', { 'x-owner': 'bob' })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().message, 'not yours')
  t.equal(refused.headers['content-disposition'], undefined, 'nothing of the file')
  const allowed = await send(`${server.endpoint}/${id}`, 'GET', { 'x-owner': 'ann' })
  t.equal(allowed.statusCode, 200)
  t.equal(allowed.text, 'secret')
})

t.test('tus HEAD is unchanged beside downloads', async (t) => {
  const server = await startServer(t, { download: true })
  const id = await finishUpload(server.endpoint, Buffer.from('12345'), { filename: 'h.txt' })
  const head = await send(`${server.endpoint}/${id}`, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '5')
  t.equal(head.headers['upload-length'], '5')
  t.equal(head.headers['content-disposition'], undefined, 'no download headers on HEAD')
  t.equal((await send(`${server.endpoint}/${id}`, 'HEAD')).statusCode, 412, 'HEAD still needs Tus-Resumable')
  t.equal((await send(server.endpoint, 'POST', { 'upload-length': '1' })).statusCode, 412, 'and so does every other tus request')
})

t.test('off by default: GET is a method not served; on, it is one of the methods served', async (t) => {
  const off = await startServer(t)
  t.equal(off.app.tus.options.download, false)
  const id = await finishUpload(off.endpoint, Buffer.from('x'))
  for (const headers of [{}, TUS]) {
    const refused = await send(`${off.endpoint}/${id}`, 'GET', headers)
    assertTusError(t, refused, 405, 'FST_TUS_UNSUPPORTED_METHOD', `GET ${JSON.stringify(headers)}:`)
    t.notMatch(refused.headers.allow, /GET/, 'Allow does not offer GET')
  }
  const on = await startServer(t, { download: true })
  const other = await finishUpload(on.endpoint, Buffer.from('x'))
  const put = await send(`${on.endpoint}/${other}`, 'PUT', TUS)
  assertTusError(t, put, 405, 'FST_TUS_UNSUPPORTED_METHOD', 'PUT with downloads on:')
  t.match(put.headers.allow, /GET/, 'Allow offers GET on an upload URL')
})

t.test('download must be a boolean', async (t) => {
  const root = await tempDir(t)
  for (const download of ['yes', 1, null, {}]) {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close().catch(() => {}))
    app.register(fastifyTus, { directory: path.join(root, 'u'), completedDir: path.join(root, 'c'), download } as unknown as FastifyTusOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_TUS_INVALID_OPTION', message: /"download"/ }, `download: ${JSON.stringify(download)}`)
  }
})

t.test('serve: downloads on by default, --no-download turns them off, the page follows', async (t) => {
  const root = await tempDir(t)
  for (const [flags, expected] of [[[], true], [['--no-download'], false], [['--download'], true]] as const) {
    const dir = path.join(root, String(flags.length) + String(expected))
    const options = parseServeArgs(['--directory', path.join(dir, 'u'), '--completed-dir', path.join(dir, 'c'), ...flags])!
    const app = await createServer({ ...options, logLevel: 'silent' })
    t.teardown(() => app.close())
    t.equal(app.tus.options.download, expected, `serve ${flags.join(' ')}: download ${expected}`)
    const page = await app.inject('/')
    t.match(page.body, `<meta name="fastify-tus-download" content="${expected}">`, 'the page knows')
  }
  t.match(serveHelp(), /--no-download/, 'the help lists --no-download')
})

t.test('a GET of the wrong id shape or a sub-path is a 404, not a file', async (t) => {
  const server = await startServer(t, { download: true })
  const id = await finishUpload(server.endpoint, Buffer.from('x'))
  for (const suffix of [`${id}/x`, `${id}.meta`, `.${id}`, `${id}%2F..`]) {
    assertTusError(t, await send(`${server.endpoint}/${suffix}`, 'GET'), 404, 'FST_TUS_UPLOAD_NOT_FOUND', `/${suffix}:`)
  }
  t.equal(idOf(`${server.endpoint}/${id}`), id)
})

/** A GET whose body is kept as bytes. */
async function getBytes (url: string, headers: Record<string, string> = {}): Promise<{ statusCode: number, headers: Record<string, unknown>, body: Buffer }> {
  const response = await request(url, { headers })
  return { statusCode: response.statusCode, headers: response.headers, body: Buffer.from(await response.body.arrayBuffer()) }
}

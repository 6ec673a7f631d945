// Hostile input: thousands of requests made of odd methods, odd URLs and odd
// header values (Upload-Concat naming other users' or unknown uploads, lengths
// past the reservation budget, odd content types on creation, huge and
// malformed values), plus malformed HTTP framing on raw sockets. Not one answer
// is a 500, every refusal has an FST_ code, and the server goes on serving.
import { randomUUID } from 'node:crypto'
import net from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import t from 'tap'
import { TUS, create, patch, send, startServer, type Response } from './helpers'
import { OCTET, pathOf } from './protocol-helpers'

const REQUESTS = 1500
const PARALLEL = 8
const MiB = 1024 * 1024

// A small seeded generator (mulberry32): the same run every time, and a failure names its seed.
function random (seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const pick = <T>(next: () => number, values: readonly T[]): T => values[Math.floor(next() * values.length)]

const HUGE = 'x'.repeat(8000)
const VALUES = {
  'upload-length': ['0', '1', '10', String(2 * MiB), String(2 ** 53), '99999999999999999999999', '-1', '1e3', ' 5', '5 ', '0x10', '', HUGE],
  'upload-offset': ['0', '1', '3', '-1', '18446744073709551616', 'NaN', '', '0,0', HUGE],
  'upload-defer-length': ['1', '0', '2', '', 'true', HUGE],
  'upload-metadata': ['filename aGVsbG8=', 'filename', 'a b c', 'filename !!!', ',', 'k dg==,k dg==', '\u00e9 dg==', `big ${Buffer.alloc(6000, 1).toString('base64')}`, HUGE],
  'upload-checksum': ['sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=', 'sha1', 'md5 !!', 'crc32 AAAA', 'sha256 ', HUGE],
  'content-type': [OCTET, 'application/octet-stream', 'text/plain', 'multipart/form-data; boundary=x', 'application/json', 'garbage', '', ';', `${OCTET}; charset=utf-8`, 'APPLICATION/OFFSET+OCTET-STREAM', HUGE],
  'tus-resumable': ['1.0.0', '1.0.0', '1.0.0', '0.2.2', '', '1.0.0, 1.0.0', HUGE],
  'x-http-method-override': ['PATCH', 'HEAD', 'DELETE', 'GET', 'PUT', 'patch', '', HUGE],
  trailer: ['Upload-Checksum', 'upload-checksum, x', ''],
  'x-user': ['alice', 'bob', 'mallory']
} as const
const METHODS = ['POST', 'POST', 'POST', 'PATCH', 'PATCH', 'HEAD', 'DELETE', 'OPTIONS', 'GET', 'PUT', 'TRACE', 'PROPFIND', 'SEARCH', 'MKCOL', 'LOCK', 'QUERY'] as const
// Refusals made before a request reaches any route (Node's HTTP parser, Fastify's router), which no plugin can word.
const BEFORE_ROUTING = new Set(['FST_ERR_BAD_URL'])

interface Targets { endpoint: string, uploads: string[], partials: string[], foreignPartials: string[] }

function concatValue (next: () => number, targets: Targets): string {
  const urls = (): string => Array.from({ length: 1 + Math.floor(next() * 4) }, () => pick(next, [
    ...targets.partials, ...targets.foreignPartials, ...targets.uploads, `/files/${randomUUID()}`, '/files/../etc/passwd',
    'http://elsewhere.example/files/x', `${targets.endpoint}/${pick(next, targets.partials)}`, '/other/prefix', '', HUGE
  ].map((url) => url.startsWith('http') || url.startsWith('/') || url === '' || url === HUGE ? url : pathOf(url)))).join(pick(next, [' ', ' ', '  ', ',', '\t']))
  return pick(next, ['partial', 'final;', `final;${urls()}`, `final;${urls()}`, `final ${urls()}`, 'partial;x', 'Final;', HUGE])
}

function targetUrl (next: () => number, targets: Targets): string {
  return pick(next, [
    targets.endpoint, targets.endpoint, `${targets.endpoint}/`, pick(next, targets.uploads), pick(next, targets.partials), pick(next, targets.foreignPartials),
    `${targets.endpoint}/${randomUUID()}`, `${targets.endpoint}/not-an-id`, `${targets.endpoint}/%2e%2e%2f%2e%2e%2fetc`, `${targets.endpoint}/${'a'.repeat(2000)}`,
    `${targets.endpoint}/${randomUUID()}/extra`, `${targets.endpoint}?x=${HUGE.slice(0, 100)}`, `${targets.endpoint}/%00`, `${targets.endpoint}/%ZZ`
  ])
}

interface HostileRequest { method: string, url: string, headers: Record<string, string>, body?: Buffer }

// A request a client could mean, to be bent by a header or two: it gets past the first checks.
function plausibleRequest (next: () => number, targets: Targets): HostileRequest {
  const user = pick(next, ['alice', 'bob', 'mallory'])
  const base = { ...TUS, 'x-user': user }
  const upload = pick(next, [...targets.uploads, ...targets.partials, ...targets.foreignPartials])
  const lengths = ['0', '3', '100', String(MiB), String(2 * MiB), String(3 * MiB), String(4 * MiB)]
  return pick(next, [
    () => ({ method: 'POST', url: targets.endpoint, headers: { ...base, 'upload-length': pick(next, lengths) } }),
    () => ({ method: 'POST', url: targets.endpoint, headers: { ...base, 'upload-length': '3', 'upload-concat': 'partial' } }),
    () => ({ method: 'POST', url: targets.endpoint, headers: { ...base, 'upload-defer-length': '1' } }),
    () => ({ method: 'POST', url: targets.endpoint, headers: { ...base, 'upload-length': '100', 'content-type': OCTET }, body: Buffer.alloc(Math.floor(next() * 120), 1) }),
    () => ({ method: 'POST', url: targets.endpoint, headers: { ...base, 'upload-concat': concatValue(next, targets) } }),
    // A final of one or two partials, anyone's: only their owner's may be assembled.
    () => ({ method: 'POST', url: targets.endpoint, headers: { ...base, 'upload-concat': `final;${[pick(next, targets.partials), pick(next, targets.partials)].slice(0, 1 + Math.floor(next() * 2)).map(pathOf).join(' ')}` } }),
    () => ({ method: 'PATCH', url: pick(next, targets.partials), headers: { ...base, 'content-type': OCTET, 'upload-offset': '0' }, body: Buffer.from('abc') }),
    () => ({ method: 'PATCH', url: upload, headers: { ...base, 'content-type': OCTET, 'upload-offset': pick(next, ['0', '1', '3']) }, body: Buffer.alloc(Math.floor(next() * 12), 2) }),
    () => ({ method: 'PATCH', url: upload, headers: { ...base, 'content-type': OCTET, 'upload-offset': '0', 'upload-length': pick(next, lengths) }, body: Buffer.alloc(0) }),
    () => ({ method: 'POST', url: upload, headers: { ...base, 'x-http-method-override': pick(next, VALUES['x-http-method-override']), 'content-type': OCTET, 'upload-offset': '0' } }),
    () => ({ method: 'HEAD', url: upload, headers: base }),
    () => ({ method: 'DELETE', url: pick(next, [upload, `${targets.endpoint}/${randomUUID()}`]), headers: base }),
    () => ({ method: pick(next, ['GET', 'PUT', 'QUERY']), url: upload, headers: { ...base, 'content-type': pick(next, VALUES['content-type']) }, body: next() < 0.5 ? Buffer.from('body') : undefined })
  ])()
}

function hostileRequest (next: () => number, targets: Targets): HostileRequest {
  if (next() < 0.5) {
    const request = plausibleRequest(next, targets)
    for (let bends = Math.floor(next() * 3); bends > 0; bends--) {
      const [name, values] = pick(next, Object.entries(VALUES))
      request.headers[name] = pick(next, values)
    }
    return request
  }
  const headers: Record<string, string> = {}
  for (const [name, values] of Object.entries(VALUES)) {
    if (next() < (name === 'tus-resumable' || name === 'x-user' ? 0.9 : 0.35)) headers[name] = pick(next, values)
  }
  if (next() < 0.4) headers['upload-concat'] = concatValue(next, targets)
  const body = next() < 0.4 ? Buffer.alloc(Math.floor(next() * 3000), 7) : undefined
  return { method: pick(next, METHODS), url: targetUrl(next, targets), headers, body }
}

// The README's ownership pattern: uploads belong to x-user; others get 403.
// Every final upload handed over is checked: its partials must all have been its owner's.
const owners = new Map<string, unknown>()
const foreignFinals: string[] = []
let finals = 0
function ownership (app: FastifyInstance): void {
  app.tus.addHook('tus:created', async (upload) => { owners.set(upload.id, upload.serverMetadata.owner) })
  app.tus.addHook('tus:completed', async (upload) => {
    if (upload.concat === null || !('final' in upload.concat)) return
    finals++
    for (const id of upload.concat.final) if (owners.get(id) !== upload.serverMetadata.owner) foreignFinals.push(`${upload.id} (of ${String(upload.serverMetadata.owner)}) holds ${id} (of ${String(owners.get(id))})`)
  })
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const user = request.headers['x-user']
    Object.assign(request, { owner: typeof user === 'string' ? user : undefined })
  })
  const ownerOf = (request: FastifyRequest): unknown => (request as FastifyRequest & { owner?: string }).owner
  app.tus.addHook('tus:preCreate', async (request) => ({ serverMetadata: { owner: ownerOf(request) } }))
  app.tus.addHook('tus:preAccess', async (request, upload) => {
    if (upload.serverMetadata.owner !== ownerOf(request)) throw Object.assign(new Error('not your upload'), { statusCode: 403 })
  })
}

// Raw bytes on a socket: the status of the answer, or 'closed' when the server hung up without one.
function rawExchange (port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (text: string) => { answer += text; if (answer.includes('\r\n')) socket.destroy() })
    socket.on('error', () => {})
    socket.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 'closed'))
    socket.setTimeout(10_000, () => socket.destroy())
    socket.end(bytes)
  })
}

const RAW_REQUESTS = (id: string): string[] => [
  `POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\nContent-Type: ${OCTET}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
  `POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\nContent-Type: ${OCTET}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
  `PATCH /files/${id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: ${OCTET}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello`,
  `PATCH /files/${id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: ${OCTET}\r\nContent-Length: -5\r\n\r\nhello`,
  `PATCH /files/${id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: ${OCTET}\r\nTransfer-Encoding: chunked\r\nTrailer: Upload-Checksum\r\n\r\n3\r\nabc\r\n0\r\nUpload-Checksum: sha1 !!!\r\n\r\n`,
  `POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\nX-Folded: a\r\n b\r\n\r\n`,
  `POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: ${'9'.repeat(20_000)}\r\n\r\n`,
  `POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Metadata: filename a\u0000b\r\nUpload-Length: 5\r\n\r\n`,
  `HEAD /files/${id} HTTP/1.0\r\n\r\n`,
  `GET /files/${id}/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\r\n`,
  `BREW /files HTTP/1.1\r\nHost: x\r\n\r\n`,
  `CONNECT /files/${id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\r\n`,
  `POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: \u0661\u0662\r\n\r\n`,
  `POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: \xff\xfe\r\nUpload-Metadata: filename \xe9\xe9\r\n\r\n`,
  'POST /files HTTP/9.9\r\nHost: x\r\n\r\n',
  '\r\n\r\n\r\n',
  `PATCH /files/${id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: ${OCTET}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc`
]

t.test('hostile requests never get a 500, every refusal has an FST_ code, and the server keeps serving', { timeout: 300_000 }, async (t) => {
  const server = await startServer(t, { maxSize: 4 * MiB, maxChunkSize: MiB, maxReserved: 3 * MiB, reservationTimeout: 500, idleTimeout: 2000 }, {}, ownership)
  const owned = (user: string): Record<string, string> => ({ 'x-user': user })
  const targets: Targets = { endpoint: server.endpoint, uploads: [], partials: [], foreignPartials: [] }
  for (let i = 0; i < 4; i++) targets.uploads.push(await create(server.endpoint, { 'upload-length': '10', ...owned('alice') }))
  for (let i = 0; i < 4; i++) targets.partials.push(await create(server.endpoint, { 'upload-length': '3', 'upload-concat': 'partial', ...owned('alice') }))
  for (let i = 0; i < 4; i++) targets.foreignPartials.push(await create(server.endpoint, { 'upload-length': '3', 'upload-concat': 'partial', ...owned('bob') }))
  targets.partials.push(...targets.foreignPartials)
  await patch(targets.partials[0], 0, 'abc', owned('alice'))
  await patch(targets.foreignPartials[0], 0, 'xyz', owned('bob'))

  const next = random(20261201)
  const failures: string[] = []
  const statuses = new Map<number, number>()
  const check = (label: string, response: Response): void => {
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
    if (response.statusCode >= 500 && response.statusCode !== 507) failures.push(`${label}: ${response.statusCode} ${response.text.slice(0, 200)}`)
    if (response.statusCode >= 400 && response.text !== '') {
      const code = (() => { try { return String(response.json().code) } catch { return 'not JSON' } })()
      // Node's parser refuses headers over its limit with a bare 431.
      const parser = response.statusCode === 431 && code === 'undefined'
      if (!code.startsWith('FST_TUS_') && code !== 'FST_UNDER_PRESSURE' && !BEFORE_ROUTING.has(code) && !parser) failures.push(`${label}: ${response.statusCode} with code ${code}`)
    }
  }
  let sent = 0
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (sent < REQUESTS) {
      const index = sent++
      const request = hostileRequest(next, targets)
      const label = `#${index} ${request.method} ${request.url.slice(0, 80)} ${JSON.stringify(request.headers).slice(0, 300)}`
      try {
        const response = await send(request.url, request.method, request.headers, request.body)
        check(label, response)
        // New partials join the pool that later finals name.
        if (response.statusCode === 201 && request.headers['upload-concat'] === 'partial' && request.headers['upload-length'] === '3') targets.partials.push(String(response.headers.location))
      } catch (error) {
        // The server may hang up on a refused body; a socket error is no answer, and no 500.
        if (!/socket|closed|ECONNRESET|EPIPE|other side/i.test(String((error as Error).message))) failures.push(`${label}: ${String(error)}`)
      }
    }
  }))
  const { port } = new URL(server.endpoint)
  const raw = await Promise.all(RAW_REQUESTS(pathOf(targets.uploads[1]).split('/').pop()!).map((bytes) => rawExchange(Number(port), bytes)))
  raw.forEach((status, index) => { if (status.startsWith('5')) failures.push(`raw request #${index}: ${status}`) })

  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}; raw: ${raw.join(' ')}; final uploads handed over: ${finals}`)
  t.strictSame(failures, [], `no 500 and no refusal without an FST_ code in ${REQUESTS} hostile requests and ${raw.length} malformed ones`)
  for (const status of [201, 204, 403, 405, 412, 415, 507]) t.ok(statuses.has(status), `some requests got ${status}`)

  // Still serving: an honest upload goes through, and the foreign partial is still bob's.
  const url = await create(server.endpoint, { 'upload-length': '5', ...owned('carol') })
  t.equal((await patch(url, 0, 'hello', owned('carol'))).statusCode, 204, 'an honest upload after the storm')
  t.strictSame(foreignFinals, [], 'no final upload was made of another user\'s partials')
})

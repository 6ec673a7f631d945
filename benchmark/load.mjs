// The client side: tus requests with undici (HEAD load on raw sockets), and the load of each scenario.
// Cheap on purpose: every body is a view of one buffer of random bytes made at
// start-up, streamed in 1 MiB views; nothing is hashed or copied while timed.
import { randomFillSync } from 'node:crypto'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB

// The byte at position p of every upload is PATTERN[p % PATTERN.length], so a
// file on disk can be checked against it after the run.
const PATTERN = randomFillSync(Buffer.allocUnsafe(8 * MiB))
const STREAM_CHUNK = MiB
const TUS = { 'tus-resumable': '1.0.0' }
const OCTETS = 'application/offset+octet-stream'

/** The expected bytes of an upload at [start, start + size), for checks outside the timed path. */
export function expectedBytes (start, size) {
  const out = Buffer.allocUnsafe(size)
  for (let done = 0; done < size;) {
    const from = (start + done) % PATTERN.length
    done += PATTERN.copy(out, done, from, Math.min(PATTERN.length, from + size - done))
  }
  return out
}

// A body: one view when it fits in the pattern, else a stream of views.
function bodyAt (start, size) {
  const from = start % PATTERN.length
  if (from + size <= PATTERN.length) return PATTERN.subarray(from, from + size)
  return views(start, size)
}

function * views (start, size) {
  for (let position = start, end = start + size; position < end;) {
    const from = position % PATTERN.length
    const length = Math.min(STREAM_CHUNK - (from % STREAM_CHUNK), end - position)
    yield PATTERN.subarray(from, from + length)
    position += length
  }
}

export class TusClient {
  constructor (origin, connections) {
    this.origin = origin
    this.pool = new Pool(origin, { connections, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 60_000 })
  }

  async close () {
    await this.pool.close()
  }

  /** Creates an upload of `length` bytes, with its first `data` bytes in the POST (creation-with-upload); returns its path. */
  async create (length, data = 0) {
    const headers = { ...TUS, 'upload-length': String(length) }
    let body
    if (data > 0) {
      headers['content-type'] = OCTETS
      headers['content-length'] = String(data)
      body = bodyAt(0, data)
    }
    const response = await this.pool.request({ path: '/files', method: 'POST', headers, body })
    await expect(response, 201, 'POST')
    if (data > 0) expectOffset(response, data, 'POST')
    const location = response.headers.location
    if (typeof location !== 'string') throw new Error('POST: no Location')
    return new URL(location, this.origin).pathname
  }

  /** Sends [offset, offset + size) of the upload in one PATCH. */
  async patch (path, offset, size) {
    const response = await this.pool.request({
      path,
      method: 'PATCH',
      headers: { ...TUS, 'content-type': OCTETS, 'upload-offset': String(offset), 'content-length': String(size) },
      body: bodyAt(offset, size)
    })
    await expect(response, 204, 'PATCH')
    expectOffset(response, offset + size, 'PATCH')
  }

  /** HEAD; resolves with the response headers. */
  async head (path) {
    const response = await this.pool.request({ path, method: 'HEAD', headers: TUS })
    await expect(response, 200, 'HEAD')
    return response.headers
  }
}

async function expect (response, status, what) {
  if (response.statusCode === status) {
    await response.body.dump()
    return
  }
  const text = await response.body.text().catch(() => '')
  throw new Error(`${what}: expected ${status}, got ${response.statusCode} ${text.slice(0, 300)}`)
}

function expectOffset (response, offset, what) {
  if (response.headers['upload-offset'] !== String(offset)) {
    throw new Error(`${what}: expected Upload-Offset ${offset}, got ${response.headers['upload-offset']}`)
  }
}

// Each scenario resolves with what was moved and one upload to check on disk:
// { bytes, ops, latencies?, sample: { path, size } | null }.

/** One upload of `size` bytes in one PATCH. */
export async function singlePatch (client, size) {
  const path = await client.create(size)
  await client.patch(path, 0, size)
  return { bytes: size, ops: 1, sample: { path, size } }
}

/** One upload of `size` bytes in PATCHes of `chunk` bytes, one after the other. */
export async function chunkedPatches (client, size, chunk) {
  const path = await client.create(size)
  let ops = 0
  for (let offset = 0; offset < size; offset += chunk) {
    await client.patch(path, offset, Math.min(chunk, size - offset))
    ops++
  }
  return { bytes: size, ops, sample: { path, size } }
}

/** `count` uploads of `size` bytes, each a single POST with its data, `concurrency` at a time. */
export async function smallUploads (client, count, size, concurrency) {
  const latencies = new Float64Array(count)
  let next = 0
  let path
  const worker = async () => {
    while (next < count) {
      const index = next++
      const start = performance.now()
      path = await client.create(size, size)
      latencies[index] = performance.now() - start
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return { bytes: count * size, ops: count, latencies, sample: { path, size } }
}

/** `count` uploads of `size` bytes at once, each a POST then one PATCH. */
export async function parallelUploads (client, count, size) {
  const paths = await Promise.all(Array.from({ length: count }, async () => {
    const path = await client.create(size)
    await client.patch(path, 0, size)
    return path
  }))
  return { bytes: count * size, ops: count, sample: { path: paths[0], size } }
}

/** Uploads for the HEAD scenario: in progress, nothing written yet. */
export async function headSetup (client, count, length) {
  const paths = []
  for (let i = 0; i < count; i++) paths.push(await client.create(length))
  return { paths, length }
}

/**
 * HEAD requests round the uploads, `concurrency` at a time, for `seconds`; every
 * answer is checked. This one load runs on raw keep-alive sockets with prebuilt
 * requests: undici costs about 0.1 ms of CPU per request, more than a fast
 * server spends on a HEAD, and would measure itself on a 2-core machine.
 */
export async function heads (client, { paths, length }, seconds, concurrency) {
  const { hostname, port, host } = new URL(client.origin)
  const requests = paths.map((path) => Buffer.from(`HEAD ${path} HTTP/1.1\r\nhost: ${host}\r\ntus-resumable: 1.0.0\r\n\r\n`, 'latin1'))
  const wanted = [`\r\nupload-offset: 0\r\n`, `\r\nupload-length: ${length}\r\n`]
  const latencies = []
  const deadline = performance.now() + seconds * 1000
  const connection = (first) => new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname)
    socket.setNoDelay(true)
    let next = first
    let start = 0
    let pending = ''
    let done = false
    const finish = (error) => {
      if (done) return
      done = true
      socket.destroy()
      if (error === undefined) resolve()
      else reject(error)
    }
    const send = () => {
      if (performance.now() >= deadline) return finish()
      start = performance.now()
      socket.write(requests[next % requests.length])
      next += concurrency
    }
    socket.on('connect', send)
    socket.on('data', (chunk) => {
      // One request in flight per socket, and a HEAD answer has no body: it ends at the blank line.
      pending += chunk.toString('latin1')
      const end = pending.indexOf('\r\n\r\n')
      if (end === -1) return
      latencies.push(performance.now() - start)
      const head = pending.slice(0, end + 2).toLowerCase()
      if (end + 4 !== pending.length) return finish(new Error(`HEAD: unexpected bytes after the answer: ${JSON.stringify(pending.slice(end + 4, end + 100))}`))
      pending = ''
      if (!head.startsWith('http/1.1 200 ') || !wanted.every((line) => head.includes(line))) {
        return finish(new Error(`HEAD: expected 200 with offset 0 of ${length}, got ${JSON.stringify(head.slice(0, 400))}`))
      }
      send()
    })
    socket.on('error', finish)
    socket.on('close', () => finish(new Error('HEAD: the server closed the connection')))
  })
  await Promise.all(Array.from({ length: concurrency }, (_, i) => connection(i)))
  return { bytes: 0, ops: latencies.length, latencies, sample: null }
}

/** Nearest-rank percentile of latencies in ms. */
export function percentile (latencies, p) {
  if (latencies === undefined || latencies.length === 0) return undefined
  const sorted = Float64Array.from(latencies).sort()
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

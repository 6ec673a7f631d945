// The disk ceiling: the sink's protocol, but each body goes to <dir>/files/<id>
// at its offset and is fdatasync'ed before the answer; no record, no lock.
import { randomUUID } from 'node:crypto'
import { createWriteStream, mkdirSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { TUS_HEADERS, ready, serverArgs } from './common.mjs'

const directory = path.join(serverArgs().dir, 'files')
mkdirSync(directory, { recursive: true })
const uploads = new Map()

const server = http.createServer((req, res) => {
  handle(req, res).catch((error) => {
    process.stderr.write(`${error.stack}\n`)
    if (!res.headersSent) res.writeHead(500, TUS_HEADERS)
    res.end()
  })
})

async function handle (req, res) {
  const fail = (status) => { res.writeHead(status, TUS_HEADERS).end(); req.resume() }
  if (req.method === 'POST' && req.url === '/files') {
    const id = randomUUID()
    const upload = { offset: 0, length: Number(req.headers['upload-length']) }
    uploads.set(id, upload)
    upload.offset = await receive(req, path.join(directory, id), 'w', 0)
    res.writeHead(201, { ...TUS_HEADERS, 'Content-Length': '0', Location: `http://${req.headers.host}/files/${id}`, 'Upload-Offset': upload.offset }).end()
    return
  }
  const id = req.url.slice('/files/'.length)
  const upload = uploads.get(id)
  if (!req.url.startsWith('/files/') || upload === undefined) return fail(404)
  if (req.method === 'HEAD') {
    res.writeHead(200, { ...TUS_HEADERS, 'Upload-Offset': upload.offset, 'Upload-Length': upload.length, 'Cache-Control': 'no-store' }).end()
    return
  }
  if (req.method !== 'PATCH') return fail(405)
  if (Number(req.headers['upload-offset']) !== upload.offset) return fail(409)
  upload.offset = await receive(req, path.join(directory, id), 'r+', upload.offset)
  res.writeHead(204, { ...TUS_HEADERS, 'Upload-Offset': upload.offset }).end()
}

// Returns the new offset once the bytes are durable (`flush` fsyncs before the close).
async function receive (req, file, flags, start) {
  const out = createWriteStream(file, { flags, start, mode: 0o644, highWaterMark: 1024 * 1024, flush: true })
  await pipeline(req, out)
  return start + out.bytesWritten
}

server.listen(0, '127.0.0.1', () => ready(server))

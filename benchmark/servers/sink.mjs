// The ceiling of Node's HTTP stack: answers tus just enough for the benchmark
// (POST with or without data, PATCH, HEAD) and throws every body byte away.
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import { TUS_HEADERS, ready, serverArgs } from './common.mjs'

serverArgs()
const uploads = new Map()

const server = http.createServer((req, res) => {
  const fail = (status) => { res.writeHead(status, TUS_HEADERS).end(); req.resume() }
  if (req.method === 'POST' && req.url === '/files') {
    const id = randomUUID()
    const upload = { offset: 0, length: Number(req.headers['upload-length']) }
    uploads.set(id, upload)
    discard(req, (bytes) => {
      upload.offset += bytes
      res.writeHead(201, { ...TUS_HEADERS, 'Content-Length': '0', Location: `http://${req.headers.host}/files/${id}`, 'Upload-Offset': upload.offset }).end()
    })
    return
  }
  const upload = uploads.get(req.url.slice('/files/'.length))
  if (!req.url.startsWith('/files/') || upload === undefined) return fail(404)
  if (req.method === 'HEAD') {
    res.writeHead(200, { ...TUS_HEADERS, 'Upload-Offset': upload.offset, 'Upload-Length': upload.length, 'Cache-Control': 'no-store' }).end()
    return
  }
  if (req.method !== 'PATCH') return fail(405)
  if (Number(req.headers['upload-offset']) !== upload.offset) return fail(409)
  discard(req, (bytes) => {
    upload.offset += bytes
    res.writeHead(204, { ...TUS_HEADERS, 'Upload-Offset': upload.offset }).end()
  })
})

function discard (req, done) {
  let bytes = 0
  req.on('data', (chunk) => { bytes += chunk.length })
  req.on('end', () => done(bytes))
}

server.listen(0, '127.0.0.1', () => ready(server))

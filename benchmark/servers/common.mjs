// Plumbing shared by the benchmark servers: arguments, the ready line, exit.
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import { parseArgs } from 'node:util'

/** `--dir <root>` (the run's fresh temporary directory) and any extra string options. */
export function serverArgs (extra = {}) {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, ...extra }, strict: true })
  if (values.dir === undefined) throw new Error('--dir is required')
  return values
}

/** Prints the port (the harness waits for this line) and exits cleanly on SIGTERM, so --cpu-prof writes its profile. */
export function ready (server) {
  // Long single uploads must not be cut by Node's default 300 s request timeout on a slow disk.
  server.requestTimeout = 0
  process.on('SIGTERM', () => process.exit(0))
  process.stdout.write(`${server.address().port}\n`)
}

export const TUS_HEADERS = { 'Tus-Resumable': '1.0.0' }

/** Reads a body to its end and throws it away: resolves with its length. */
export const drain = (body) => new Promise((resolve, reject) => {
  let bytes = 0
  body.on('data', (chunk) => { bytes += chunk.length })
  body.on('end', () => resolve(bytes))
  body.on('error', reject)
})

/**
 * The protocol both sinks speak, just enough for the benchmark: POST (with or
 * without data), PATCH, HEAD. `receive(req, id, offset, created)` takes in a
 * body and resolves with how many bytes it took.
 */
export function tusLikeServer (receive) {
  const uploads = new Map()
  const handle = async (req, res) => {
    const fail = (status) => { res.writeHead(status, TUS_HEADERS).end(); req.resume() }
    if (req.method === 'POST' && req.url === '/files') {
      const id = randomUUID()
      const upload = { offset: 0, length: Number(req.headers['upload-length']) }
      uploads.set(id, upload)
      upload.offset += await receive(req, id, 0, true)
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
    upload.offset += await receive(req, id, upload.offset, false)
    res.writeHead(204, { ...TUS_HEADERS, 'Upload-Offset': upload.offset }).end()
  }
  const server = http.createServer((req, res) => {
    handle(req, res).catch((error) => {
      process.stderr.write(`${error.stack}\n`)
      if (!res.headersSent) res.writeHead(500, TUS_HEADERS)
      res.end()
    })
  })
  server.listen(0, '127.0.0.1', () => ready(server))
}

// The ceiling of a Fastify app: the HTTP sink's answers (POST with or without
// data, PATCH, HEAD, the body thrown away) from Fastify routes, with a
// content-type parser that streams the body as the plugin's does. What a
// fastify-tus figure has above it is the cost of the plugin itself.
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { TUS_HEADERS, drain, ready, serverArgs } from './common.mjs'

serverArgs()
const uploads = new Map()
const app = Fastify({ logger: false })
app.addContentTypeParser('application/offset+octet-stream', (_request, payload, done) => done(null, payload))
app.post('/files', async (request, reply) => {
  const id = randomUUID()
  const upload = { offset: 0, length: Number(request.headers['upload-length']) }
  uploads.set(id, upload)
  if (request.body !== undefined) upload.offset += await drain(request.body)
  reply.code(201).headers({ ...TUS_HEADERS, Location: `http://${request.headers.host}/files/${id}`, 'Upload-Offset': upload.offset })
  return ''
})
app.head('/files/:id', async (request, reply) => {
  const upload = uploads.get(request.params.id)
  if (upload === undefined) return reply.code(404).headers(TUS_HEADERS).send()
  reply.headers({ ...TUS_HEADERS, 'Upload-Offset': upload.offset, 'Upload-Length': upload.length, 'Cache-Control': 'no-store' })
  return ''
})
app.patch('/files/:id', async (request, reply) => {
  const upload = uploads.get(request.params.id)
  if (upload === undefined) return reply.code(404).headers(TUS_HEADERS).send()
  if (Number(request.headers['upload-offset']) !== upload.offset) return reply.code(409).headers(TUS_HEADERS).send()
  upload.offset += await drain(request.body)
  reply.code(204).headers({ ...TUS_HEADERS, 'Upload-Offset': upload.offset })
  return ''
})
await app.listen({ port: 0, host: '127.0.0.1' })
ready(app.server)

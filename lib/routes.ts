// The tus handlers, in their own encapsulated context: parse headers, call the
// store, reply. The content-type parsers, hooks and error handler defined here
// never leak into the application.
import { STATUS_CODES } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedTusOptions, TusStore } from '../types/index'
import { FST_TUS_CHUNK_TOO_LARGE, FST_TUS_IDLE_TIMEOUT, FST_TUS_INVALID_CONTENT_TYPE, FST_TUS_UPLOAD_NOT_FOUND } from './errors'
import {
  TUS_CONTENT_TYPE,
  TUS_VERSION,
  checkTusResumable,
  formatMetadata,
  parseContentLength,
  parseCreationLength,
  parseMetadata,
  parseUploadLength,
  parseUploadOffset
} from './headers'
import { isUploadId } from './store/ids'

export interface TusRoutesOptions {
  options: ResolvedTusOptions
  store: TusStore
}

const EXTENSIONS = 'creation,creation-with-upload,creation-defer-length'

export async function tusRoutes (app: FastifyInstance, { options, store }: TusRoutesOptions): Promise<void> {
  const maxBytes = Number.isFinite(options.maxChunkSize) ? options.maxChunkSize : undefined

  // The body stays a stream: the store reads it straight into the data file.
  app.addContentTypeParser(TUS_CONTENT_TYPE, (_request, payload, done) => { done(null, payload) })
  app.addContentTypeParser('*', (request, _payload, done) => {
    done(new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(request.headers['content-type'] ?? null)), undefined)
  })

  app.addHook('onRequest', async (request, reply) => {
    const { id } = request.params as { id?: string }
    if (id !== undefined) withUploadId(request, reply, id)
    if (request.method === 'OPTIONS') return
    // Set first, so that every answer, errors included, carries it.
    reply.header('Tus-Resumable', TUS_VERSION)
    checkTusResumable(request.headers['tus-resumable'])
  })

  app.setErrorHandler((error: FastifyError, request, reply) => sendError(error, request, reply))
  app.setNotFoundHandler(async () => { throw new FST_TUS_UPLOAD_NOT_FOUND() })

  app.options('/', async (_request, reply) => {
    reply.header('Tus-Version', TUS_VERSION).header('Tus-Extension', EXTENSIONS)
    if (Number.isFinite(options.maxSize)) reply.header('Tus-Max-Size', options.maxSize)
    reply.code(204).send()
  })

  app.post('/', async (request, reply) => {
    const { headers } = request
    const length = parseCreationLength(headers['upload-length'], headers['upload-defer-length'])
    const metadata = parseMetadata(headers['upload-metadata'], options.maxMetadataSize)
    const body = request.body as Readable | undefined
    const contentLength = bodyLength(request)
    const record = await store.create({ length, metadata })
    const log = withUploadId(request, reply, record.id)
    log.info({ length, metadata }, 'upload created')
    reply.header('Location', `${request.protocol}://${request.host}${options.prefix}/${record.id}`)
    if (body !== undefined) {
      const result = await writeBody(request, () => store.write(record.id, body, { offset: 0, maxBytes, contentLength }))
      log.debug({ offset: result.record.offset, written: result.written }, 'creation data written')
      if (result.finished) log.info('upload completed')
      reply.header('Upload-Offset', result.record.offset)
    }
    reply.code(201).send()
  })

  app.head<{ Params: { id: string } }>('/:id', async (request, reply) => {
    const record = await store.get(request.params.id)
    reply.header('Cache-Control', 'no-store').header('Upload-Offset', record.offset)
    if (record.length === null) reply.header('Upload-Defer-Length', '1')
    else reply.header('Upload-Length', record.length)
    const metadata = formatMetadata(record.metadata)
    if (metadata !== '') reply.header('Upload-Metadata', metadata)
    reply.code(200).send()
  })

  app.patch<{ Params: { id: string } }>('/:id', {
    onRequest: async (request) => {
      const type = request.headers['content-type']
      if (type === undefined || type.split(';')[0].trim().toLowerCase() !== TUS_CONTENT_TYPE) {
        throw new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(type ?? null))
      }
    }
  }, async (request, reply) => {
    const { id } = request.params
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    const { headers } = request
    const offset = parseUploadOffset(headers['upload-offset'])
    const length = parseUploadLength(headers['upload-length'])
    const contentLength = bodyLength(request)
    const body = request.body as Readable | undefined
    const result = await writeBody(request, () => store.write(id, body ?? null, { offset, length, maxBytes, contentLength }))
    request.log.debug({ offset: result.record.offset, written: result.written }, 'chunk written')
    if (result.finished) request.log.info({ length: result.record.length, duration: result.record.duration }, 'upload completed')
    reply.header('Upload-Offset', result.record.offset).code(204).send()
  })

  // A connection that died without a word would hold the upload's lock for good:
  // a body silent for idleTimeout is ended like an aborted one.
  async function writeBody<T> (request: FastifyRequest, write: () => Promise<T>): Promise<T> {
    const { idleTimeout } = options
    if (idleTimeout === 0) return await write()
    const raw = request.raw
    const onIdle = (): void => { raw.destroy(new FST_TUS_IDLE_TIMEOUT(idleTimeout)) }
    // Once the body is in, a slow fsync must not cut the answer off.
    const disarm = (): void => {
      raw.removeListener('timeout', onIdle)
      raw.setTimeout(0)
    }
    raw.setTimeout(idleTimeout, onIdle)
    raw.once('end', disarm)
    try {
      return await write()
    } finally {
      raw.removeListener('end', disarm)
      disarm()
    }
  }

  // The request's Content-Length, refused at once when over maxChunkSize.
  function bodyLength (request: FastifyRequest): number | undefined {
    const length = parseContentLength(request.headers['content-length'])
    if (length !== undefined && length > options.maxChunkSize) throw new FST_TUS_CHUNK_TOO_LARGE(options.maxChunkSize)
    return length
  }
}

// Every later line of the request's log, Fastify's own included, names the upload.
function withUploadId (request: FastifyRequest, reply: FastifyReply, uploadId: string): FastifyRequest['log'] {
  const log = request.log.child({ uploadId })
  request.log = log
  reply.log = log
  return log
}

function sendError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const statusCode = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
  if (statusCode >= 500) request.log.error({ err: error }, 'tus request failed')
  else request.log.info({ code: error.code, statusCode }, error.message)
  // Hooks that run before the plugin's own (under-pressure's) may refuse before it was set.
  if (request.method !== 'OPTIONS') reply.header('Tus-Resumable', TUS_VERSION)
  if (statusCode === 412) reply.header('Tus-Version', TUS_VERSION)
  if (statusCode === 423) reply.header('Retry-After', '1')
  // A body left unread is not drained (it may be gigabytes): the connection ends with this answer.
  if (!request.raw.complete) reply.header('Connection', 'close')
  const known = typeof error.code === 'string' && error.code.startsWith('FST_')
  reply.code(statusCode).send({
    statusCode,
    code: known ? error.code : 'FST_TUS_INTERNAL',
    error: STATUS_CODES[statusCode],
    // Messages of unexpected errors may name server paths; they go to the log only.
    message: known || statusCode < 500 ? error.message : 'Internal Server Error'
  })
}

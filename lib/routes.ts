// The tus handlers, in their own encapsulated context: parse headers, run the
// hooks, call the store, reply. The content-type parsers, hooks and error
// handler defined here never leak into the application.
import { STATUS_CODES } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedTusOptions, UploadMetadata, UploadRecord, WriteUploadInput, WriteUploadResult } from '../types/index'
import {
  FST_TUS_CHUNK_TOO_LARGE,
  FST_TUS_IDLE_TIMEOUT,
  FST_TUS_INVALID_CONTENT_TYPE,
  FST_TUS_UPLOAD_LENGTH_EXCEEDED,
  FST_TUS_UPLOAD_NOT_FOUND
} from './errors'
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
import type { Hooks } from './hooks'
import { ProgressThrottle } from './progress'
import { isUploadId } from './store/ids'
import type { FileStore } from './store/index'

export interface TusRoutesOptions {
  options: ResolvedTusOptions
  store: FileStore
  hooks: Hooks
}

const EXTENSIONS = 'creation,creation-with-upload,creation-defer-length'
// Upload URLs are matched with a wildcard: a `:id` parameter longer than the
// router's maxParamLength would be refused by Fastify itself, without the tus headers.
const UPLOAD_URL = '/*'

export async function tusRoutes (app: FastifyInstance, { options, store, hooks }: TusRoutesOptions): Promise<void> {
  const maxBytes = Number.isFinite(options.maxChunkSize) ? options.maxChunkSize : undefined
  // The full prefix of this context, the enclosing contexts' prefixes included.
  const base = app.prefix.endsWith('/') ? app.prefix.slice(0, -1) : app.prefix
  const progress = new ProgressThrottle(options.progressInterval)

  // Only tus bodies are read, and they stay streams: the store reads them straight into the data file.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(TUS_CONTENT_TYPE, (_request, payload, done) => { done(null, payload) })
  app.addContentTypeParser('*', (request, _payload, done) => {
    done(new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(request.headers['content-type'] ?? null)), undefined)
  })

  app.addHook('onRequest', async (request, reply) => {
    const id = uploadIdOf(request)
    if (id !== '') withUploadId(request, reply, id)
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
    const body = request.body as Readable | undefined
    const contentLength = bodyLength(request)
    // Refused before anything exists, rather than creating an upload its first request overflows.
    if (body !== undefined && length !== null && contentLength !== undefined && contentLength > length) {
      throw new FST_TUS_UPLOAD_LENGTH_EXCEEDED(length)
    }
    const proposal = { length, metadata: parseMetadata(headers['upload-metadata'], options.maxMetadataSize) }
    const { metadata, serverMetadata } = await preCreate(request, proposal)
    const record = await store.create({ length, metadata, serverMetadata })
    const log = withUploadId(request, reply, record.id)
    log.info({ length, metadata }, 'upload created')
    reply.header('Location', `${request.protocol}://${request.host}${base}/${record.id}`)
    await hooks.notify('tus:created', log, record.id, { ...record }, request)
    if (record.finishedAt !== null) await completed(request, record)
    if (body !== undefined) {
      const result = await write(request, record.id, body, { offset: 0, maxBytes, contentLength })
      reply.header('Upload-Offset', result.record.offset)
    }
    reply.code(201).send()
  })

  app.head(UPLOAD_URL, async (request, reply) => {
    const record = await store.get(uploadIdOf(request))
    await hooks.run('tus:preAccess', request, record)
    reply.header('Cache-Control', 'no-store').header('Upload-Offset', record.offset)
    if (record.length === null) reply.header('Upload-Defer-Length', '1')
    else reply.header('Upload-Length', record.length)
    const metadata = formatMetadata(record.metadata)
    if (metadata !== '') reply.header('Upload-Metadata', metadata)
    reply.code(200).send()
  })

  app.patch(UPLOAD_URL, {
    onRequest: async (request) => {
      const type = request.headers['content-type']
      if (type === undefined || type.split(';')[0].trim().toLowerCase() !== TUS_CONTENT_TYPE) {
        throw new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(type ?? null))
      }
    }
  }, async (request, reply) => {
    const id = uploadIdOf(request)
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    const { headers } = request
    const offset = parseUploadOffset(headers['upload-offset'])
    const length = parseUploadLength(headers['upload-length'])
    const contentLength = bodyLength(request)
    // The store reads the record under the lock; an extra read only when someone must check access first.
    if (hooks.has('tus:preAccess')) await hooks.run('tus:preAccess', request, await store.get(id))
    const body = request.body as Readable | undefined
    const result = await write(request, id, body ?? null, { offset, length, maxBytes, contentLength })
    reply.header('Upload-Offset', result.record.offset).code(204).send()
  })

  async function preCreate (request: FastifyRequest, proposal: { length: number | null, metadata: UploadMetadata }): Promise<{ metadata: UploadMetadata, serverMetadata: Record<string, unknown> }> {
    let { metadata } = proposal
    let serverMetadata: Record<string, unknown> = {}
    try {
      for (const result of await hooks.run('tus:preCreate', request, proposal)) {
        if (result?.metadata !== undefined) metadata = result.metadata
        if (result?.serverMetadata !== undefined) serverMetadata = { ...serverMetadata, ...result.serverMetadata }
      }
    } catch (error) {
      await hooks.failed(request.log, error as Error, null)
      throw error
    }
    return { metadata, serverMetadata }
  }

  async function write (request: FastifyRequest, id: string, body: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult> {
    const onProgress = hooks.has('tus:progress')
      ? (record: UploadRecord) => { if (progress.due(record)) void hooks.notify('tus:progress', request.log, id, record) }
      : undefined
    let result: WriteUploadResult
    try {
      result = await writeBody(request, () => store.write(id, body, { ...input, onProgress }))
    } catch (error) {
      // Refusals of the protocol (409, 413 ...) are part of resuming; failures of the server are not.
      if (statusOf(error as FastifyError) >= 500) await hooks.failed(request.log, error as Error, await store.get(id).catch(() => null))
      throw error
    }
    request.log.debug({ offset: result.record.offset, written: result.written }, 'chunk written')
    if (result.finished) await completed(request, result.record)
    return result
  }

  async function completed (request: FastifyRequest, record: UploadRecord): Promise<void> {
    request.log.info({ length: record.length, duration: record.duration }, 'upload completed')
    await hooks.notify('tus:completed', request.log, record.id, record)
  }

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

function uploadIdOf (request: FastifyRequest): string {
  return (request.params as { '*'?: string })['*'] ?? ''
}

// Every later line of the request's log, Fastify's own included, names the upload.
function withUploadId (request: FastifyRequest, reply: FastifyReply, uploadId: string): FastifyRequest['log'] {
  const log = request.log.child({ uploadId })
  request.log = log
  reply.log = log
  return log
}

function statusOf (error: FastifyError): number {
  return error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
}

function sendError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const statusCode = statusOf(error)
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

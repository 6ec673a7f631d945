// The tus handlers, in their own encapsulated context: parse headers, run the
// hooks, call the store, reply. The content-type parsers, hooks and error
// handler defined here never leak into the application.
import { STATUS_CODES } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedTusOptions, TusExtension, UploadMetadata, UploadRecord, WriteUploadInput, WriteUploadResult } from '../types/index'
import {
  FST_TUS_CHUNK_TOO_LARGE,
  FST_TUS_EXTENSION_DISABLED,
  FST_TUS_IDLE_TIMEOUT,
  FST_TUS_INVALID_CHECKSUM,
  FST_TUS_INVALID_CONCAT,
  FST_TUS_INVALID_CONTENT_TYPE,
  FST_TUS_METHOD_NOT_ALLOWED,
  FST_TUS_UPLOAD_LENGTH_EXCEEDED,
  FST_TUS_UPLOAD_NOT_FOUND,
  RETRY_AFTER
} from './errors'
import {
  TUS_CONTENT_TYPE,
  TUS_VERSION,
  checkTusResumable,
  formatConcat,
  formatMetadata,
  httpDate,
  parseChecksum,
  parseConcat,
  parseContentLength,
  parseCreationLength,
  parseMetadata,
  parseUploadLength,
  parseUploadOffset
} from './headers'
import type { Hooks } from './hooks'
import { ProgressThrottle } from './progress'
import { summary } from './upload-log'
import { CHECKSUM_ALGORITHMS } from './store/checksum'
import { isFinal, isPartial } from './store/concat'
import { isUploadId } from './store/ids'
import type { FileStore } from './store/index'

export interface TusRoutesOptions {
  options: ResolvedTusOptions
  store: FileStore
  hooks: Hooks
  /** Told, once per request, how many body bytes the store recorded. */
  received?: (bytes: number) => void
}

// Upload URLs are matched with a wildcard: a `:id` parameter longer than the
// router's maxParamLength would be refused by Fastify itself, without the tus headers.
const UPLOAD_URL = '/*'
const OVERRIDABLE = new Set(['PATCH', 'DELETE', 'HEAD'])

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>
type WriteEvents = Pick<WriteUploadInput, 'onProgress' | 'onHandedOver'>

export async function tusRoutes (app: FastifyInstance, { options, store, hooks, received }: TusRoutesOptions): Promise<void> {
  const maxBytes = Number.isFinite(options.maxChunkSize) ? options.maxChunkSize : undefined
  // The full prefix of this context, the enclosing contexts' prefixes included.
  const base = app.prefix.endsWith('/') ? app.prefix.slice(0, -1) : app.prefix
  const progress = new ProgressThrottle(options.progressInterval)
  const enabled = new Set<TusExtension>(options.extensions)
  const requireExtension = (extension: TusExtension): void => {
    if (!enabled.has(extension)) throw new FST_TUS_EXTENSION_DISABLED(extension)
  }

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

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const failed = hooks.failure(error)
    if (failed !== undefined) request.log.info({ ...summary(request.log, failed), reason: error.code ?? null, err: error }, 'upload failed')
    sendError(error, request, reply)
  })
  app.setNotFoundHandler(async () => { throw new FST_TUS_UPLOAD_NOT_FOUND() })

  app.options('/', async (_request, reply) => {
    reply.header('Tus-Version', TUS_VERSION)
    if (options.extensions.length > 0) reply.header('Tus-Extension', options.extensions.join(','))
    if (Number.isFinite(options.maxSize)) reply.header('Tus-Max-Size', options.maxSize)
    if (enabled.has('checksum')) reply.header('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','))
    reply.code(204).send()
  })

  app.post('/', async (request, reply) => {
    requireExtension('creation')
    const { headers } = request
    const concat = headers['upload-concat'] === undefined ? undefined : concatOf(request)
    const final = concat !== undefined && 'final' in concat
    if (headers['upload-defer-length'] !== undefined) requireExtension('creation-defer-length')
    // A final upload's length is the sum of its partials': the client must not send one.
    if (final && (headers['upload-length'] !== undefined || headers['upload-defer-length'] !== undefined)) {
      throw new FST_TUS_INVALID_CONCAT('a final upload takes no Upload-Length; it is the sum of its partial uploads')
    }
    const length = final ? null : parseCreationLength(headers['upload-length'], headers['upload-defer-length'])
    const body = request.body as Readable | undefined
    if (body !== undefined) {
      requireExtension('creation-with-upload')
      if (final) throw new FST_TUS_INVALID_CONCAT('a final upload takes no data; it is made of its partial uploads')
    }
    const contentLength = bodyLength(request)
    const checksum = checksumOf(request)
    // Refused before anything exists, rather than creating an upload its first request overflows.
    if (body !== undefined && length !== null && contentLength !== undefined && contentLength > length) {
      throw new FST_TUS_UPLOAD_LENGTH_EXCEEDED(length)
    }
    const proposal = { length, metadata: parseMetadata(headers['upload-metadata'], options.maxMetadataSize) }
    const { metadata, serverMetadata } = await preCreate(request, proposal)
    const input = { length, metadata, serverMetadata, concat, allowUnfinishedPartials: enabled.has('concatenation-unfinished') }
    const created = async (record: UploadRecord): Promise<void> => {
      const log = withUploadId(request, reply, record.id)
      log.info({ length: record.length, metadata, concat: record.concat }, 'upload created')
      reply.header('Location', `${request.protocol}://${request.host}${base}/${record.id}`)
      await hooks.notify('tus:created', log, record.id, { ...record }, request)
    }
    let record: UploadRecord
    if (body === undefined) {
      record = await store.create(input)
      await created(record)
      // An empty upload, or a final upload whose partials were all finished, is handed over at once.
      if (record.finishedAt !== null && !isPartial(record)) await completed(request, record)
    } else {
      record = (await write(request, null, (events) => store.createWithData(input, body, { offset: 0, maxBytes, contentLength, checksum, onCreated: created, ...events }))).record
      reply.header('Upload-Offset', record.offset)
    }
    expiresHeader(reply, record)
    reply.code(201).send()
  })

  const headUpload: Handler = async (request, reply) => {
    const record = await store.get(uploadIdOf(request))
    await hooks.run('tus:preAccess', request, record)
    reply.header('Cache-Control', 'no-store')
    // A final upload has no offset to resume from until it is assembled.
    if (!isFinal(record) || record.finishedAt !== null) reply.header('Upload-Offset', record.offset)
    if (record.length === null) reply.header('Upload-Defer-Length', '1')
    else reply.header('Upload-Length', record.length)
    const metadata = formatMetadata(record.metadata)
    if (metadata !== '') reply.header('Upload-Metadata', metadata)
    if (record.concat !== null) reply.header('Upload-Concat', formatConcat(record.concat, base))
    expiresHeader(reply, record)
    reply.code(200).send()
  }

  const patchUpload: Handler = async (request, reply) => {
    const id = uploadIdOf(request)
    if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
    const { headers } = request
    const offset = parseUploadOffset(headers['upload-offset'])
    const length = parseUploadLength(headers['upload-length'])
    const contentLength = bodyLength(request)
    const checksum = checksumOf(request)
    // The store reads the record under the lock; an extra read only when someone must check access first.
    if (hooks.has('tus:preAccess')) await hooks.run('tus:preAccess', request, await store.get(id))
    const body = request.body as Readable | undefined
    const { record } = await write(request, id, (events) => store.write(id, body ?? null, { offset, length, maxBytes, contentLength, checksum, ...events }))
    reply.header('Upload-Offset', record.offset)
    expiresHeader(reply, record)
    reply.code(204).send()
  }

  const deleteUpload: Handler = async (request, reply) => {
    requireExtension('termination')
    const record = await store.get(uploadIdOf(request))
    await hooks.run('tus:preAccess', request, record)
    await hooks.run('tus:preTerminate', request, record)
    const terminated = await store.terminate(record.id)
    request.log.info(summary(request.log, terminated), 'upload terminated')
    await hooks.notify('tus:terminated', request.log, record.id, terminated, request)
    reply.code(204).send()
  }

  app.head(UPLOAD_URL, headUpload)
  app.patch(UPLOAD_URL, { onRequest: async (request) => checkPatchContentType(request) }, patchUpload)
  app.delete(UPLOAD_URL, deleteUpload)
  // X-HTTP-Method-Override, for networks that let only GET and POST through.
  app.post(UPLOAD_URL, async (request, reply) => {
    const method = request.headers['x-http-method-override']
    if (typeof method !== 'string' || !OVERRIDABLE.has(method)) throw new FST_TUS_METHOD_NOT_ALLOWED(JSON.stringify(method ?? null))
    if (method === 'HEAD') return await headUpload(request, reply)
    if (method === 'DELETE') return await deleteUpload(request, reply)
    checkPatchContentType(request)
    return await patchUpload(request, reply)
  })

  function concatOf (request: FastifyRequest): NonNullable<UploadRecord['concat']> | undefined {
    requireExtension('concatenation')
    return parseConcat(request.headers['upload-concat'], `${request.protocol}://${request.host}`, base)
  }

  // Upload-Checksum as a header, or announced (`Trailer: Upload-Checksum`) and sent as a trailer.
  function checksumOf (request: FastifyRequest): WriteUploadInput['checksum'] {
    const header = parseChecksum(request.headers['upload-checksum'])
    const trailer = (request.headers.trailer ?? '').toLowerCase().split(',').some((name) => name.trim() === 'upload-checksum')
    if (header !== undefined) requireExtension('checksum')
    if (!trailer) return header
    requireExtension('checksum-trailer')
    if (header !== undefined) throw new FST_TUS_INVALID_CHECKSUM('send it as a header or as a trailer, not both')
    return () => parseChecksum(request.raw.trailers['upload-checksum'])
  }

  function expiresHeader (reply: FastifyReply, record: UploadRecord): void {
    if (record.expiresAt !== null && record.finishedAt === null && options.expiration !== false) {
      reply.header('Upload-Expires', httpDate(record.expiresAt))
    }
  }

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

  // Runs a store write (a PATCH's, or a creation's with data) with the hooks around it; `id` is null for a creation.
  async function write (request: FastifyRequest, id: string | null, run: (events: WriteEvents) => Promise<WriteUploadResult>): Promise<WriteUploadResult> {
    // Bytes are counted once per request, from the offsets the store recorded (it reports every record it writes).
    const start = id === null ? 0 : parseUploadOffset(request.headers['upload-offset'])
    let recorded = start
    const notify = hooks.has('tus:progress')
    const onProgress = notify || received !== undefined
      ? (record: UploadRecord) => {
          recorded = record.offset
          if (notify && progress.due(record)) void hooks.notify('tus:progress', request.log, record.id, record)
        }
      : undefined
    const onHandedOver = (record: UploadRecord): Promise<void> => completed(request, record)
    let result: WriteUploadResult
    try {
      result = await writeBody(request, () => run({ onProgress, onHandedOver }))
    } catch (error) {
      // Refusals of the protocol (409, 413 ...) are part of resuming; failures of the server are not.
      if (statusOf(error as FastifyError) >= 500) await hooks.failed(request.log, error as Error, id === null ? null : await store.get(id).catch(() => null))
      throw error
    } finally {
      if (recorded > start) received?.(recorded - start)
    }
    request.log.debug({ offset: result.record.offset, written: result.written }, 'chunk written')
    return result
  }

  async function completed (request: FastifyRequest, record: UploadRecord): Promise<void> {
    request.log.info(summary(request.log, record), 'upload completed')
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

function checkPatchContentType (request: FastifyRequest): void {
  const type = request.headers['content-type']
  if (type === undefined || type.split(';')[0].trim().toLowerCase() !== TUS_CONTENT_TYPE) {
    throw new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(type ?? null))
  }
}

function uploadIdOf (request: FastifyRequest): string {
  return (request.params as { '*'?: string })['*'] ?? ''
}

// Every later line of the request's log, Fastify's own included, names the upload and the client.
function withUploadId (request: FastifyRequest, reply: FastifyReply, uploadId: string): FastifyRequest['log'] {
  const log = request.log.child({ uploadId, remoteAddress: request.ip })
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
  // under-pressure sets its own before it refuses.
  const retryAfter = RETRY_AFTER[error.code]
  if (retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('Retry-After', String(retryAfter))
  // A body left unread is not drained (it may be gigabytes): the connection ends with this answer.
  if (!request.raw.complete) reply.header('Connection', 'close')
  // A refusal (4xx, from the plugin or an application hook) is told as it is; an
  // unexpected failure's message may name server paths, so it goes to the log only.
  const told = statusCode < 500 || (typeof error.code === 'string' && error.code.startsWith('FST_'))
  reply.code(statusCode).send({
    statusCode,
    code: typeof error.code === 'string' && told ? error.code : (told ? 'FST_TUS_REFUSED' : 'FST_TUS_INTERNAL'),
    error: statusCode === 460 ? 'Checksum Mismatch' : STATUS_CODES[statusCode] ?? 'Error',
    message: told ? error.message : 'Internal Server Error'
  })
}

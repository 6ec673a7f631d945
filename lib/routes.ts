// The tus handlers, in their own encapsulated context: parse headers, run the
// hooks, call the store, reply. The content-type parsers, hooks and error
// handler defined here never leak into the application.
import { STATUS_CODES } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TusExtension, UploadRecord, WriteUploadInput } from '../types/index'
import {
  FST_TUS_EXTENSION_DISABLED,
  FST_TUS_INVALID_CHECKSUM,
  FST_TUS_INVALID_CONCAT,
  FST_TUS_INVALID_CONTENT_TYPE,
  FST_TUS_METHOD_NOT_ALLOWED,
  FST_TUS_UPLOAD_LENGTH_EXCEEDED,
  FST_TUS_UPLOAD_NOT_FOUND
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
  parseCreationLength,
  parseMetadata,
  parseUploadLength,
  parseUploadOffset
} from './headers'
import { basePath, type ProtocolOptions, refusalOf, uploadActions, uploadIdOf, uploadLocation, withUploadId } from './protocols/shared'
import { CHECKSUM_ALGORITHMS } from './store/checksum'
import { isFinal, isPartial } from './store/concat'
import { isUploadId } from './store/ids'

export type TusRoutesOptions = ProtocolOptions

// Upload URLs are matched with a wildcard: a `:id` parameter longer than the
// router's maxParamLength would be refused by Fastify itself, without the tus headers.
const UPLOAD_URL = '/*'
const OVERRIDABLE = new Set(['PATCH', 'DELETE', 'HEAD'])

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

export async function tusRoutes (app: FastifyInstance, { options, store, hooks }: TusRoutesOptions): Promise<void> {
  const maxBytes = Number.isFinite(options.maxChunkSize) ? options.maxChunkSize : undefined
  const base = basePath(app.prefix)
  const { preCreate, write, completed, bodyLength, created: announceCreated, terminate } = uploadActions({ options, store, hooks })
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

  app.setErrorHandler((error: FastifyError, request, reply) => sendError(error, request, reply))
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
      reply.header('Location', uploadLocation(request, base, record.id))
      await announceCreated(request, reply, record)
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
    await terminate(request, uploadIdOf(request))
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
}

function checkPatchContentType (request: FastifyRequest): void {
  const type = request.headers['content-type']
  if (type === undefined || type.split(';')[0].trim().toLowerCase() !== TUS_CONTENT_TYPE) {
    throw new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(type ?? null))
  }
}

function sendError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { statusCode, code, message } = refusalOf(error, request)
  // Hooks that run before the plugin's own (under-pressure's) may refuse before it was set.
  if (request.method !== 'OPTIONS') reply.header('Tus-Resumable', TUS_VERSION)
  if (statusCode === 412) reply.header('Tus-Version', TUS_VERSION)
  if (statusCode === 423) reply.header('Retry-After', '1')
  // A body left unread is not drained (it may be gigabytes): the connection ends with this answer.
  if (!request.raw.complete) reply.header('Connection', 'close')
  reply.code(statusCode).send({
    statusCode,
    code,
    error: statusCode === 460 ? 'Checksum Mismatch' : STATUS_CODES[statusCode] ?? 'Error',
    message
  })
}

// tus 1.0.0 and its extensions: parse the tus headers, run the access hooks,
// call the store through the shared layer, answer with the tus headers. The
// Tus-Resumable check and the Content-Type a tus body must have are tus's own.
import type { Readable } from 'node:stream'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { ProposedUpload, TusExtension, UploadRecord, WriteUploadInput } from '../../types/index'
import {
  FST_TUS_EXTENSION_DISABLED,
  FST_TUS_INVALID_CHECKSUM,
  FST_TUS_INVALID_CONCAT,
  FST_TUS_INVALID_CONTENT_TYPE,
  FST_TUS_METHOD_NOT_ALLOWED,
  FST_TUS_UPLOAD_LENGTH_EXCEEDED,
  FST_TUS_UPLOAD_NOT_FOUND
} from '../errors'
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
} from '../headers'
import { CHECKSUM_ALGORITHMS } from '../store/checksum'
import { isFinal, isPartial } from '../store/concat'
import { isUploadId } from '../store/ids'
import {
  announceCompleted,
  announceCreated,
  bodyLength,
  maxBytesOf,
  preCreate,
  sendError,
  terminateThroughStore,
  uploadIdOf,
  writeThroughStore,
  type Protocol,
  type ProtocolContext,
  type RouteName
} from './shared'

interface Tus extends ProtocolContext {
  readonly enabled: ReadonlySet<TusExtension>
}

const OVERRIDABLE = new Set(['PATCH', 'DELETE', 'HEAD'])

export function tusProtocol (context: ProtocolContext): Protocol {
  const tus: Tus = { ...context, enabled: new Set(context.options.extensions) }
  return {
    name: 'tus 1.0.0',
    claims: () => true,
    onRequest: (request, reply, route) => { checkTusRequest(request, reply, route) },
    replyError: (error, request, reply) => { replyTusError(error, request, reply) },
    handlers: {
      options: async (request, reply) => { describeServer(tus, request, reply) },
      create: async (request, reply) => await createUpload(tus, request, reply),
      head: async (request, reply) => await headUpload(tus, request, reply),
      patch: async (request, reply) => await patchUpload(tus, request, reply),
      delete: async (request, reply) => await deleteUpload(tus, request, reply),
      override: async (request, reply) => await overrideMethod(tus, request, reply),
      notFound: async (request) => { unknownUrl(request) }
    }
  }
}

function checkTusRequest (request: FastifyRequest, reply: FastifyReply, route: RouteName | undefined): void {
  // Some clients label an empty body (aiohttp, and so tus-py-client's asyncio mode, sends
  // application/octet-stream with an empty creation): only a PATCH's type matters without a body.
  if (!hasBody(request) && !isPatch(request, route) && !isTusContentType(request.headers['content-type'])) delete request.headers['content-type']
  if (request.method === 'OPTIONS') return
  // Set first, so that every answer, errors included, carries it.
  reply.header('Tus-Resumable', TUS_VERSION)
  checkTusResumable(request.headers['tus-resumable'])
  // Before any byte of the body is read.
  if (route === 'patch') checkPatchContentType(request)
}

function replyTusError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // Fastify's own refusal of a Content-Type it cannot parse, told in tus's terms.
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') error = new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(request.headers['content-type'] ?? null))
  sendError(error, request, reply, (statusCode) => {
    if (request.method !== 'OPTIONS') reply.header('Tus-Resumable', TUS_VERSION)
    if (statusCode === 412) reply.header('Tus-Version', TUS_VERSION)
  })
}

function describeServer ({ options, enabled }: Tus, request: FastifyRequest, reply: FastifyReply): void {
  tusBody(request)
  reply.header('Tus-Version', TUS_VERSION)
  if (options.extensions.length > 0) reply.header('Tus-Extension', options.extensions.join(','))
  if (Number.isFinite(options.maxSize)) reply.header('Tus-Max-Size', options.maxSize)
  if (enabled.has('checksum')) reply.header('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','))
  reply.code(204).send()
}

async function createUpload (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const body = tusBody(request)
  requireExtension(tus, 'creation')
  const { headers } = request
  const concat = headers['upload-concat'] === undefined ? undefined : concatOf(tus, request)
  const final = concat !== undefined && 'final' in concat
  if (headers['upload-defer-length'] !== undefined) requireExtension(tus, 'creation-defer-length')
  // A final upload's length is the sum of its partials': the client must not send one.
  if (final && (headers['upload-length'] !== undefined || headers['upload-defer-length'] !== undefined)) {
    throw new FST_TUS_INVALID_CONCAT('a final upload takes no Upload-Length; it is the sum of its partial uploads')
  }
  // Every partial named must be the requester's to touch, checked before anything is assembled.
  const partials = final ? await accessPartials(tus, request, concat.final) : undefined
  const length = partials !== undefined ? finalLength(partials) : parseCreationLength(headers['upload-length'], headers['upload-defer-length'])
  if (body !== undefined) {
    requireExtension(tus, 'creation-with-upload')
    if (final) throw new FST_TUS_INVALID_CONCAT('a final upload takes no data; it is made of its partial uploads')
  }
  const contentLength = bodyLength(tus, request)
  const checksum = checksumOf(tus, request)
  // Refused before anything exists, rather than creating an upload its first request overflows.
  if (body !== undefined && length !== null && contentLength !== undefined && contentLength > length) {
    throw new FST_TUS_UPLOAD_LENGTH_EXCEEDED(length)
  }
  const metadata = parseMetadata(headers['upload-metadata'], tus.options.maxMetadataSize)
  const proposal: ProposedUpload = partials === undefined ? { length, metadata } : { length, metadata, partials }
  const accepted = await preCreate(tus, request, proposal)
  const input = { length: final ? null : length, metadata: accepted.metadata, serverMetadata: accepted.serverMetadata, concat, allowUnfinishedPartials: tus.enabled.has('concatenation-unfinished') }
  const onCreated = (record: UploadRecord): Promise<void> => announceCreated(tus, request, reply, record)
  let record: UploadRecord
  if (body === undefined) {
    record = await tus.store.create(input)
    await onCreated(record)
    // An empty upload, or a final upload whose partials were all finished, is handed over at once.
    if (record.finishedAt !== null && !isPartial(record)) await announceCompleted(tus, request, record)
  } else {
    const write = { offset: 0, maxBytes: maxBytesOf(tus), contentLength, checksum, onCreated }
    record = (await writeThroughStore(tus, request, null, 0, (events) => tus.store.createWithData(input, body, { ...write, ...events }))).record
    reply.header('Upload-Offset', record.offset)
  }
  expiresHeader(tus, reply, record)
  reply.code(201).send()
}

async function headUpload (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  tusBody(request)
  // A client back after a dead connection gets the offset its old request reached, even on another node.
  const record = await tus.store.current(uploadIdOf(request))
  await tus.hooks.run('tus:preAccess', request, record)
  reply.header('Cache-Control', 'no-store')
  // A final upload has no offset to resume from until it is assembled.
  if (!isFinal(record) || record.finishedAt !== null) reply.header('Upload-Offset', record.offset)
  if (record.length === null) reply.header('Upload-Defer-Length', '1')
  else reply.header('Upload-Length', record.length)
  const metadata = formatMetadata(record.metadata)
  if (metadata !== '') reply.header('Upload-Metadata', metadata)
  if (record.concat !== null) reply.header('Upload-Concat', formatConcat(record.concat, tus.base))
  expiresHeader(tus, reply, record)
  reply.code(200).send()
}

async function patchUpload (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const body = tusBody(request)
  const id = uploadIdOf(request)
  if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
  const { headers } = request
  const offset = parseUploadOffset(headers['upload-offset'])
  const length = parseUploadLength(headers['upload-length'])
  const contentLength = bodyLength(tus, request)
  const checksum = checksumOf(tus, request)
  // The store reads the record under the lock; an extra read only when someone must check access first.
  if (tus.hooks.has('tus:preAccess')) await tus.hooks.run('tus:preAccess', request, await tus.store.get(id))
  const write = { offset, length, maxBytes: maxBytesOf(tus), contentLength, checksum }
  const { record } = await writeThroughStore(tus, request, id, offset, (events) => tus.store.write(id, body ?? null, { ...write, ...events }))
  reply.header('Upload-Offset', record.offset)
  expiresHeader(tus, reply, record)
  reply.code(204).send()
}

async function deleteUpload (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  tusBody(request)
  requireExtension(tus, 'termination')
  await terminateThroughStore(tus, request, uploadIdOf(request))
  reply.code(204).send()
}

async function overrideMethod (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  tusBody(request)
  const method = request.headers['x-http-method-override']
  if (typeof method !== 'string' || !OVERRIDABLE.has(method)) throw new FST_TUS_METHOD_NOT_ALLOWED(JSON.stringify(method ?? null))
  if (method === 'HEAD') return await headUpload(tus, request, reply)
  if (method === 'DELETE') return await deleteUpload(tus, request, reply)
  checkPatchContentType(request)
  return await patchUpload(tus, request, reply)
}

function unknownUrl (request: FastifyRequest): never {
  tusBody(request)
  throw new FST_TUS_UPLOAD_NOT_FOUND()
}

// The request's body, if it has one: tus reads only its own content type.
function tusBody (request: FastifyRequest): Readable | undefined {
  if (request.body === undefined) return undefined
  if (!isTusContentType(request.headers['content-type'])) throw new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(request.headers['content-type'] ?? null))
  return request.body as Readable
}

function hasBody (request: FastifyRequest): boolean {
  const { headers } = request
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
}

const isPatch = (request: FastifyRequest, route: RouteName | undefined): boolean =>
  route === 'patch' || (route === 'override' && request.headers['x-http-method-override'] === 'PATCH')

function checkPatchContentType (request: FastifyRequest): void {
  const type = request.headers['content-type']
  if (!isTusContentType(type)) throw new FST_TUS_INVALID_CONTENT_TYPE(JSON.stringify(type ?? null))
}

function isTusContentType (type: string | undefined): boolean {
  return type !== undefined && type.split(';')[0].trim().toLowerCase() === TUS_CONTENT_TYPE
}

function requireExtension ({ enabled }: Tus, extension: TusExtension): void {
  if (!enabled.has(extension)) throw new FST_TUS_EXTENSION_DISABLED(extension)
}

// The partial uploads of a final, each through tus:preAccess with the creating request.
async function accessPartials (tus: Tus, request: FastifyRequest, ids: string[]): Promise<UploadRecord[]> {
  const records = await Promise.all(ids.map((id) => tus.store.get(id)))
  for (const record of records) await tus.hooks.run('tus:preAccess', request, record)
  return records
}

// A final upload's length, as it will be: the sum of its partials' (unknown while one is deferred).
function finalLength (partials: UploadRecord[]): number | null {
  return partials.every((partial) => partial.length !== null) ? partials.reduce((sum, partial) => sum + partial.length!, 0) : null
}

function concatOf (tus: Tus, request: FastifyRequest): NonNullable<UploadRecord['concat']> | undefined {
  requireExtension(tus, 'concatenation')
  return parseConcat(request.headers['upload-concat'], `${request.protocol}://${request.host}`, tus.base)
}

// Upload-Checksum as a header, or announced (`Trailer: Upload-Checksum`) and sent as a trailer.
function checksumOf (tus: Tus, request: FastifyRequest): WriteUploadInput['checksum'] {
  const header = parseChecksum(request.headers['upload-checksum'])
  const trailer = (request.headers.trailer ?? '').toLowerCase().split(',').some((name) => name.trim() === 'upload-checksum')
  if (header !== undefined) requireExtension(tus, 'checksum')
  if (!trailer) return header
  requireExtension(tus, 'checksum-trailer')
  if (header !== undefined) throw new FST_TUS_INVALID_CHECKSUM('send it as a header or as a trailer, not both')
  return () => parseChecksum(request.raw.trailers['upload-checksum'])
}

function expiresHeader ({ options }: Tus, reply: FastifyReply, record: UploadRecord): void {
  if (record.expiresAt !== null && record.finishedAt === null && options.expiration !== false) {
    reply.header('Upload-Expires', httpDate(record.expiresAt))
  }
}

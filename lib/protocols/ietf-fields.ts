// The IETF draft's header fields, as each interop version names and shapes
// them: reading a request's (strictly; an invalid Structured Field counts as
// absent, as the draft says) and writing a response's. No I/O.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedTusOptions, UploadMetadata, UploadRecord } from '../../types/index'
import { dispositionFilename } from '../content-disposition'
import { FST_TUS_INCONSISTENT_LENGTH, FST_TUS_INVALID_UPLOAD_COMPLETE, FST_TUS_INVALID_UPLOAD_LENGTH, FST_TUS_INVALID_UPLOAD_OFFSET } from '../errors'
import { TUS_CONTENT_TYPE, parseMetadata } from '../headers'
import { type BareItem, parseBoolean, parseNonNegativeInteger, serializeBoolean, serializeDictionary } from '../structured-fields'
import type { InteropVersion } from './ietf-versions'

export const PARTIAL_UPLOAD_TYPE = 'application/partial-upload'
export const INTEROP_HEADER = 'upload-draft-interop-version'

const MEDIA_TYPE = /^[!#$%&'*+\-.^_`|~0-9a-z]+\/[!#$%&'*+\-.^_`|~0-9a-z]+$/

/** Whether the request says it carries the end of the upload (required; `Upload-Incomplete` inverted in version 3). */
export function requestComplete (request: FastifyRequest, version: InteropVersion): boolean {
  const value = parseBoolean(request.headers[version.completeHeader])
  if (value === undefined) throw new FST_TUS_INVALID_UPLOAD_COMPLETE(headerName(version.completeHeader))
  return version.completeHeader === 'upload-incomplete' ? !value : value
}

export function requestOffset (request: FastifyRequest): number {
  const value = request.headers['upload-offset']
  const offset = parseNonNegativeInteger(value)
  if (offset === undefined) throw new FST_TUS_INVALID_UPLOAD_OFFSET(JSON.stringify(value ?? null))
  return offset
}

/**
 * The length the request declares: Upload-Length, or implied by a complete
 * request's Content-Length at `offset`; all indicators must agree. Undefined
 * when the request says nothing about it.
 */
export function requestLength (request: FastifyRequest, complete: boolean, offset: number, contentLength: number | undefined): number | undefined {
  const header = request.headers['upload-length']
  const declared = header === undefined ? undefined : parseNonNegativeInteger(header)
  if (header !== undefined && declared === undefined) throw new FST_TUS_INVALID_UPLOAD_LENGTH(JSON.stringify(header))
  const implied = complete && contentLength !== undefined ? offset + contentLength : undefined
  if (declared !== undefined && implied !== undefined && declared !== implied) {
    throw new FST_TUS_INCONSISTENT_LENGTH(`Upload-Length ${declared} but the request completes the upload at ${implied}`)
  }
  if (declared !== undefined && declared < offset) throw new FST_TUS_INCONSISTENT_LENGTH(`Upload-Length ${declared} is below the offset ${offset}`)
  return declared ?? implied
}

/**
 * Metadata of a new upload, as the application sees tus uploads': Upload-Metadata
 * when the client sends it (tus-js-client does), then `filetype` from Content-Type
 * and `filename` from Content-Disposition, the draft's representation metadata.
 */
export function requestMetadata (request: FastifyRequest, maxMetadataSize: number): UploadMetadata {
  const metadata = parseMetadata(request.headers['upload-metadata'], maxMetadataSize)
  const type = request.headers['content-type']?.split(';')[0].trim().toLowerCase()
  // The labels of a partial upload say what the bytes are for the protocol, not what the file is.
  if (type !== undefined && MEDIA_TYPE.test(type) && type !== PARTIAL_UPLOAD_TYPE && type !== TUS_CONTENT_TYPE) metadata.filetype = type
  const filename = dispositionFilename(request.headers['content-disposition'])
  if (filename !== undefined && filename !== '') metadata.filename = filename
  return metadata
}

/** Upload-Limit for a version that has it: the plugin's limits, or `min-size=0` when there are none. */
export function uploadLimit (version: InteropVersion, options: ResolvedTusOptions, record?: UploadRecord): string | undefined {
  if (version.limits === false) return undefined
  const members: Array<[string, BareItem]> = []
  if (Number.isFinite(options.maxSize)) members.push(['max-size', options.maxSize])
  if (Number.isFinite(options.maxChunkSize)) members.push(['max-append-size', options.maxChunkSize])
  const lifetime = lifetimeOf(options, record)
  if (lifetime !== undefined) members.push([version.limits.lifetimeKey, lifetime])
  if (members.length === 0) members.push(['min-size', 0])
  return serializeDictionary(members)
}

// Seconds left: for an upload, until its expiry; before creation, the whole expiration.
function lifetimeOf (options: ResolvedTusOptions, record: UploadRecord | undefined): number | undefined {
  if (options.expiration === false) return undefined
  if (record === undefined) return Math.floor(options.expiration / 1000)
  if (record.finishedAt !== null || record.expiresAt === null) return undefined
  return Math.max(0, Math.floor((Date.parse(record.expiresAt) - Date.now()) / 1000))
}

/** Upload-Complete (or version 3's Upload-Incomplete) on a response. */
export function replyComplete (reply: FastifyReply, version: InteropVersion, complete: boolean): void {
  const value = version.completeHeader === 'upload-incomplete' ? !complete : complete
  reply.header(headerName(version.completeHeader), serializeBoolean(value))
}

/** The state of an upload, as offset retrieval and every append answer it. */
export function replyState (reply: FastifyReply, version: InteropVersion, options: ResolvedTusOptions, record: UploadRecord): void {
  reply.header('Upload-Offset', record.offset)
  replyComplete(reply, version, record.finishedAt !== null)
  if (record.length !== null) reply.header('Upload-Length', record.length)
  const limit = uploadLimit(version, options, record)
  if (limit !== undefined) reply.header('Upload-Limit', limit)
}

function headerName (name: string): string {
  return name.replace(/(^|-)[a-z]/g, (start) => start.toUpperCase())
}

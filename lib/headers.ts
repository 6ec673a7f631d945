// Strict parsing and writing of tus headers. Node joins repeated headers with
// ", ", so a header sent twice fails these parsers instead of being guessed at.
import type { ChecksumAlgorithm, UploadMetadata, UploadRecord } from '../types/index'
import {
  FST_TUS_INVALID_CHECKSUM,
  FST_TUS_INVALID_CONCAT,
  FST_TUS_UNSUPPORTED_CHECKSUM_ALGORITHM,
  FST_TUS_INVALID_CONTENT_LENGTH,
  FST_TUS_INVALID_DEFER_LENGTH,
  FST_TUS_INVALID_METADATA,
  FST_TUS_INVALID_UPLOAD_LENGTH,
  FST_TUS_INVALID_UPLOAD_OFFSET,
  FST_TUS_METADATA_TOO_LARGE,
  FST_TUS_MISSING_UPLOAD_LENGTH,
  FST_TUS_UNSUPPORTED_VERSION
} from './errors'
import { CHECKSUM_ALGORITHMS, type Checksum } from './store/checksum'
import { isUploadId } from './store/ids'

export const TUS_VERSION = '1.0.0'
export const TUS_CONTENT_TYPE = 'application/offset+octet-stream'

type Header = string | string[] | undefined

// Canonical decimal, no sign, no leading zeros, no more than 2^53 - 1.
const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
// A metadata key: printable ASCII without space or comma.
const METADATA_KEY = /^[\x21-\x2b\x2d-\x7e]+$/
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function parseDecimal (value: string): number | undefined {
  if (!DECIMAL.test(value)) return undefined
  const number = Number(value)
  return Number.isSafeInteger(number) ? number : undefined
}

export function checkTusResumable (value: Header): void {
  if (value !== TUS_VERSION) throw new FST_TUS_UNSUPPORTED_VERSION(JSON.stringify(value ?? null))
}

export function parseUploadOffset (value: Header): number {
  const offset = typeof value === 'string' ? parseDecimal(value) : undefined
  if (offset === undefined) throw new FST_TUS_INVALID_UPLOAD_OFFSET(JSON.stringify(value ?? null))
  return offset
}

/** Upload-Length when present, else undefined. */
export function parseUploadLength (value: Header): number | undefined {
  if (value === undefined) return undefined
  const length = typeof value === 'string' ? parseDecimal(value) : undefined
  if (length === undefined) throw new FST_TUS_INVALID_UPLOAD_LENGTH(JSON.stringify(value))
  return length
}

/** The length a creation request declares: a number, or null for Upload-Defer-Length: 1. */
export function parseCreationLength (lengthHeader: Header, deferHeader: Header): number | null {
  const length = parseUploadLength(lengthHeader)
  if (deferHeader !== undefined) {
    if (deferHeader !== '1' || length !== undefined) throw new FST_TUS_INVALID_DEFER_LENGTH()
    return null
  }
  if (length === undefined) throw new FST_TUS_MISSING_UPLOAD_LENGTH()
  return length
}

/** Content-Length when present, else undefined (chunked transfer). */
export function parseContentLength (value: Header): number | undefined {
  if (value === undefined) return undefined
  const length = typeof value === 'string' ? parseDecimal(value) : undefined
  if (length === undefined) throw new FST_TUS_INVALID_CONTENT_LENGTH(JSON.stringify(value))
  return length
}

export function parseMetadata (value: Header, maxBytes: number): UploadMetadata {
  const metadata: UploadMetadata = Object.create(null)
  if (value === undefined) return metadata
  if (typeof value !== 'string') throw new FST_TUS_INVALID_METADATA('sent more than once')
  const size = Buffer.byteLength(value)
  if (size > maxBytes) throw new FST_TUS_METADATA_TOO_LARGE(size, maxBytes)
  if (value.trim() === '') return metadata
  for (const pair of value.split(',')) {
    const parts = pair.trim().split(' ')
    const key = parts[0]
    if (parts.length > 2 || key === '') throw new FST_TUS_INVALID_METADATA(`"${pair}" is not "key" or "key base64value"`)
    if (!METADATA_KEY.test(key)) throw new FST_TUS_INVALID_METADATA(`key "${key}" must be printable ASCII without spaces or commas`)
    if (key in metadata) throw new FST_TUS_INVALID_METADATA(`key "${key}" appears twice`)
    metadata[key] = parts.length === 2 ? decodeValue(key, parts[1]) : null
  }
  return metadata
}

function decodeValue (key: string, encoded: string): string {
  // Only canonical base64 is accepted, so the header written back on HEAD is the one received.
  const bytes = BASE64.test(encoded) ? Buffer.from(encoded, 'base64') : undefined
  if (bytes === undefined || bytes.toString('base64') !== encoded) {
    throw new FST_TUS_INVALID_METADATA(`the value of "${key}" is not valid base64`)
  }
  try {
    return utf8.decode(bytes)
  } catch {
    throw new FST_TUS_INVALID_METADATA(`the value of "${key}" is not UTF-8`)
  }
}

export function formatMetadata (metadata: UploadMetadata): string {
  return Object.entries(metadata)
    .map(([key, value]) => value === null ? key : `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',')
}

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { sha1: 20, sha256: 32, sha512: 64, md5: 16 }

/** Upload-Checksum (`<algorithm> <base64 digest>`) when present, else undefined. */
export function parseChecksum (value: Header): Checksum | undefined {
  if (value === undefined) return undefined
  const parts = typeof value === 'string' ? value.split(' ') : []
  if (parts.length !== 2) throw new FST_TUS_INVALID_CHECKSUM('expected "<algorithm> <base64 digest>"')
  const algorithm = parts[0] as ChecksumAlgorithm
  if (!CHECKSUM_ALGORITHMS.includes(algorithm)) throw new FST_TUS_UNSUPPORTED_CHECKSUM_ALGORITHM(JSON.stringify(parts[0]))
  const digest = BASE64.test(parts[1]) ? Buffer.from(parts[1], 'base64') : undefined
  if (digest === undefined || digest.length !== DIGEST_BYTES[algorithm]) {
    throw new FST_TUS_INVALID_CHECKSUM(`not a base64 ${algorithm} digest`)
  }
  return { algorithm, digest }
}

export type Concat = NonNullable<UploadRecord['concat']>

/**
 * Upload-Concat: `partial`, or `final;<url> <url> ...` whose URLs (absolute, or
 * paths) must name uploads of this server: `origin` and `base` are its own.
 */
export function parseConcat (value: Header, origin: string, base: string): Concat | undefined {
  if (value === undefined) return undefined
  if (value === 'partial') return { partial: true }
  if (typeof value !== 'string' || !value.startsWith('final;')) throw new FST_TUS_INVALID_CONCAT('expected "partial" or "final;<url> <url> ..."')
  const urls = value.slice('final;'.length).split(' ').filter((url) => url !== '')
  if (urls.length === 0) throw new FST_TUS_INVALID_CONCAT('a final upload needs at least one partial upload')
  return { final: urls.map((url) => uploadIdOfUrl(url, origin, base)) }
}

function uploadIdOfUrl (url: string, origin: string, base: string): string {
  let parsed: URL
  try {
    parsed = new URL(url, origin)
  } catch {
    throw new FST_TUS_INVALID_CONCAT(`"${url}" is not a URL`)
  }
  const id = parsed.pathname.startsWith(`${base}/`) ? parsed.pathname.slice(base.length + 1) : ''
  if (parsed.origin !== origin || !isUploadId(id) || parsed.search !== '' || parsed.hash !== '') {
    throw new FST_TUS_INVALID_CONCAT(`"${url}" is not an upload of this server`)
  }
  return id
}

export function formatConcat (concat: Concat, base: string): string {
  return 'partial' in concat ? 'partial' : `final;${concat.final.map((id) => `${base}/${id}`).join(' ')}`
}

/** An HTTP date (IMF-fixdate), as Upload-Expires wants it. */
export const httpDate = (iso: string): string => new Date(iso).toUTCString()

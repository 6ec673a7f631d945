// How many bytes a body may bring, which refusal it meets past that, and how a
// failed body is told: shared by every path that writes an upload's data.
import type { UploadRecord } from '../../types/index'
import {
  FST_TUS_CHUNK_TOO_LARGE,
  FST_TUS_INSUFFICIENT_STORAGE,
  FST_TUS_MAX_SIZE_EXCEEDED,
  FST_TUS_REQUEST_ABORTED,
  FST_TUS_UPLOAD_LENGTH_ALREADY_SET,
  FST_TUS_UPLOAD_LENGTH_EXCEEDED,
  FST_TUS_UPLOAD_LENGTH_TOO_SMALL
} from '../errors'

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG'])
export const isDiskFull = (error: unknown): boolean => DISK_FULL.has((error as { code?: string } | undefined)?.code ?? '')
export const storageError = (error: unknown): unknown => isDiskFull(error) ? new FST_TUS_INSUFFICIENT_STORAGE() : error
/** Data given back on a full disk so that the record can still be written. */
export const RECORD_ROOM = 64 * 1024

export interface BodyLimit {
  limit: number
  overLimit: () => Error
}

export function limitOf (record: UploadRecord, maxSize: number, maxBytes: number | undefined): BodyLimit {
  const remaining = (record.length ?? maxSize) - record.offset
  if (maxBytes !== undefined && maxBytes < remaining) {
    return { limit: maxBytes, overLimit: () => new FST_TUS_CHUNK_TOO_LARGE(maxBytes) }
  }
  const length = record.length
  return {
    limit: remaining,
    overLimit: length === null ? () => new FST_TUS_MAX_SIZE_EXCEEDED(maxSize) : () => new FST_TUS_UPLOAD_LENGTH_EXCEEDED(length)
  }
}

/** The length of a deferred upload, set by a later write; true when it changed the record. */
export function applyLength (record: UploadRecord, length: number | null | undefined, maxSize: number): boolean {
  if (length === undefined || length === null) return false
  if (record.length !== null) {
    if (length !== record.length) throw new FST_TUS_UPLOAD_LENGTH_ALREADY_SET(record.length)
    return false
  }
  if (length < record.offset) throw new FST_TUS_UPLOAD_LENGTH_TOO_SMALL(length, record.offset)
  if (length > maxSize) throw new FST_TUS_MAX_SIZE_EXCEEDED(maxSize)
  record.length = length
  return true
}

/** What a body's stream failure is reported as: the store's own refusals and I/O errors as they are, anything else as an abort. */
export function streamFailure (error: unknown): unknown {
  const code = (error as { code?: string }).code
  if (code?.startsWith('FST_TUS_') === true || isDiskFull(error)) return error
  if ((error as { syscall?: string }).syscall !== undefined) return error
  return new FST_TUS_REQUEST_ABORTED()
}

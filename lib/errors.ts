// Every error the plugin answers with, made once; handlers throw these and
// never build an error inline. The status code is the one tus 1.0.0 names.
import createError from '@fastify/error'

export const FST_TUS_INVALID_OPTION = createError('FST_TUS_INVALID_OPTION', 'Invalid option "%s": %s', 500, TypeError)

export const FST_TUS_UNSUPPORTED_VERSION = createError('FST_TUS_UNSUPPORTED_VERSION', 'Unsupported Tus-Resumable version %s; this server supports 1.0.0', 412)
export const FST_TUS_INVALID_UPLOAD_LENGTH = createError('FST_TUS_INVALID_UPLOAD_LENGTH', 'Upload-Length must be a non-negative integer, got %s', 400)
export const FST_TUS_MISSING_UPLOAD_LENGTH = createError('FST_TUS_MISSING_UPLOAD_LENGTH', 'Upload-Length or Upload-Defer-Length: 1 is required', 400)
export const FST_TUS_INVALID_DEFER_LENGTH = createError('FST_TUS_INVALID_DEFER_LENGTH', 'Upload-Defer-Length must be 1 and must not come with Upload-Length', 400)
export const FST_TUS_UPLOAD_LENGTH_ALREADY_SET = createError('FST_TUS_UPLOAD_LENGTH_ALREADY_SET', 'Upload-Length is already %s and cannot change', 400)
export const FST_TUS_UPLOAD_LENGTH_TOO_SMALL = createError('FST_TUS_UPLOAD_LENGTH_TOO_SMALL', 'Upload-Length %s is smaller than the %s bytes already received', 400)
export const FST_TUS_INVALID_UPLOAD_OFFSET = createError('FST_TUS_INVALID_UPLOAD_OFFSET', 'Upload-Offset must be a non-negative integer, got %s', 400)
export const FST_TUS_INVALID_METADATA = createError('FST_TUS_INVALID_METADATA', 'Invalid Upload-Metadata: %s', 400)
export const FST_TUS_METADATA_TOO_LARGE = createError('FST_TUS_METADATA_TOO_LARGE', 'Upload-Metadata is %s bytes, more than the %s allowed', 400)
export const FST_TUS_INVALID_CONTENT_LENGTH = createError('FST_TUS_INVALID_CONTENT_LENGTH', 'Content-Length must be a non-negative integer, got %s', 400)
export const FST_TUS_MAX_SIZE_EXCEEDED = createError('FST_TUS_MAX_SIZE_EXCEEDED', 'The upload would be larger than the maximum size of %s bytes', 413)
export const FST_TUS_CHUNK_TOO_LARGE = createError('FST_TUS_CHUNK_TOO_LARGE', 'The request body is larger than the maximum chunk size of %s bytes', 413)
export const FST_TUS_UPLOAD_LENGTH_EXCEEDED = createError('FST_TUS_UPLOAD_LENGTH_EXCEEDED', 'The request body goes past Upload-Length %s', 413)
export const FST_TUS_INVALID_CONTENT_TYPE = createError('FST_TUS_INVALID_CONTENT_TYPE', 'Content-Type must be application/offset+octet-stream, got %s', 415)
export const FST_TUS_OFFSET_MISMATCH = createError('FST_TUS_OFFSET_MISMATCH', 'Upload-Offset %s does not match the current offset %s', 409)
export const FST_TUS_UPLOAD_NOT_FOUND = createError('FST_TUS_UPLOAD_NOT_FOUND', 'Upload not found', 404)
export const FST_TUS_UPLOAD_LOCKED = createError('FST_TUS_UPLOAD_LOCKED', 'The upload is being written by another request; retry later', 423)
export const FST_TUS_LOW_DISK_SPACE = createError('FST_TUS_LOW_DISK_SPACE', 'The upload filesystem is below its free-space floor; no upload can be created now', 503)
export const FST_TUS_SHUTTING_DOWN = createError('FST_TUS_SHUTTING_DOWN', 'The server is shutting down; the bytes received so far are kept: resume from the upload\'s offset', 503)
export const FST_TUS_INSUFFICIENT_STORAGE = createError('FST_TUS_INSUFFICIENT_STORAGE', 'Not enough free disk space for the upload', 507)
export const FST_TUS_RESERVATION_EXCEEDED = createError('FST_TUS_RESERVATION_EXCEEDED', 'The disk space reserved for uploads not yet sent is at its limit (%s bytes); send data to uploads in progress, or retry later', 507)
export const FST_TUS_REQUEST_ABORTED = createError('FST_TUS_REQUEST_ABORTED', 'The client aborted the request', 400)
export const FST_TUS_IDLE_TIMEOUT = createError('FST_TUS_IDLE_TIMEOUT', 'No bytes arrived for %s ms', 408)
export const FST_TUS_SUPERSEDED = createError('FST_TUS_SUPERSEDED', 'A newer request for the same upload took over', 409)
export const FST_TUS_CORRUPT_RECORD = createError('FST_TUS_CORRUPT_RECORD', 'The record of upload %s cannot be read: %s', 500)

export const FST_TUS_INVALID_HOOK = createError('FST_TUS_INVALID_HOOK', 'Cannot add hook "%s": %s', 500, TypeError)
export const FST_TUS_HOOK_AFTER_READY = createError('FST_TUS_HOOK_AFTER_READY', 'Cannot add hook "%s": the server is already ready; add hooks before app.ready() or listen()', 500)
export const FST_TUS_WAIT_TIMEOUT = createError('FST_TUS_WAIT_TIMEOUT', 'No finished upload could be claimed within %s ms', 408)
export const FST_TUS_ALREADY_SAVED = createError('FST_TUS_ALREADY_SAVED', 'The %s of upload %s was already saved', 500)
export const FST_TUS_ALREADY_RELEASED = createError('FST_TUS_ALREADY_RELEASED', 'Upload %s was already released', 500)

export const FST_TUS_INVALID_CHECKSUM = createError('FST_TUS_INVALID_CHECKSUM', 'Invalid Upload-Checksum: %s', 400)
export const FST_TUS_UNSUPPORTED_CHECKSUM_ALGORITHM = createError('FST_TUS_UNSUPPORTED_CHECKSUM_ALGORITHM', 'Upload-Checksum algorithm %s is not supported; use one of sha1, sha256, sha512, md5', 400)
export const FST_TUS_CHECKSUM_MISMATCH = createError('FST_TUS_CHECKSUM_MISMATCH', 'The body does not match its %s Upload-Checksum; it was discarded', 460)
export const FST_TUS_UPLOAD_EXPIRED = createError('FST_TUS_UPLOAD_EXPIRED', 'The upload expired', 410)
export const FST_TUS_EXTENSION_DISABLED = createError('FST_TUS_EXTENSION_DISABLED', 'The %s extension is not enabled on this server', 400)
export const FST_TUS_INVALID_CONCAT = createError('FST_TUS_INVALID_CONCAT', 'Invalid Upload-Concat: %s', 400)
export const FST_TUS_CONCAT_FINAL_PATCH = createError('FST_TUS_CONCAT_FINAL_PATCH', 'A final upload is assembled from its partial uploads and cannot be patched', 403)
export const FST_TUS_UPLOAD_UNFINISHED = createError('FST_TUS_UPLOAD_UNFINISHED', 'The upload is not finished: %s of %s bytes received', 409)
export const FST_TUS_UPLOAD_CLAIMED = createError('FST_TUS_UPLOAD_CLAIMED', 'The upload has been claimed by a worker and is no longer served', 423)
export const FST_TUS_RANGE_NOT_SATISFIABLE = createError('FST_TUS_RANGE_NOT_SATISFIABLE', 'The Range asks for no byte of the upload', 416)
export const FST_TUS_DOWNLOAD_PRECONDITION_FAILED = createError('FST_TUS_DOWNLOAD_PRECONDITION_FAILED', 'The upload does not match If-Match or If-Unmodified-Since', 412)
export const FST_TUS_UNSUPPORTED_METHOD = createError('FST_TUS_UNSUPPORTED_METHOD', '%s is not served here; this URL serves %s', 405)
export const FST_TUS_METHOD_NOT_ALLOWED = createError('FST_TUS_METHOD_NOT_ALLOWED', 'X-HTTP-Method-Override must be PATCH, DELETE or HEAD, got %s', 405)

/** Seconds a client is told to wait (Retry-After) before trying again, by error code. */
export const RETRY_AFTER: Readonly<Record<string, number>> = Object.freeze({
  FST_TUS_UPLOAD_LOCKED: 1,
  // Time for an orchestrator to start the next server.
  FST_TUS_SHUTTING_DOWN: 5,
  // Room comes back as workers move finished uploads away, not within a second.
  FST_TUS_LOW_DISK_SPACE: 30
})
// The IETF resumable-upload draft's own refusals (its problem types are added where they are answered).
export const FST_TUS_INVALID_UPLOAD_COMPLETE = createError('FST_TUS_INVALID_UPLOAD_COMPLETE', '%s must be a structured Boolean, ?0 or ?1', 400)
export const FST_TUS_INCONSISTENT_LENGTH = createError('FST_TUS_INCONSISTENT_LENGTH', 'Inconsistent upload length: %s', 400)
export const FST_TUS_UPLOAD_COMPLETED = createError('FST_TUS_UPLOAD_COMPLETED', 'The upload is already complete; it takes no more data', 400)
export const FST_TUS_INVALID_PARTIAL_UPLOAD_TYPE = createError('FST_TUS_INVALID_PARTIAL_UPLOAD_TYPE', 'Content-Type must be application/partial-upload, got %s', 415)

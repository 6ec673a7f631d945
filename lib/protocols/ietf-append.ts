// Appending a body to an upload in the IETF draft's terms: the length a
// completing request implies, progress 104s while bytes arrive, completion of an
// upload of unknown length at the end of its last body, and the store's
// refusals told as the draft's (an offset mismatch with both offsets, lengths
// that do not add up).
import type { Readable } from 'node:stream'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { UploadRecord, WriteUploadResult } from '../../types/index'
import { FST_TUS_INCONSISTENT_LENGTH, FST_TUS_UPLOAD_COMPLETED, FST_TUS_UPLOAD_NOT_FOUND } from '../errors'
import { writeInformational } from '../interim'
import { replyComplete } from './ietf-fields'
import { withOffsets } from './ietf-problems'
import type { InteropVersion } from './ietf-versions'
import { maxBytesOf, writeThroughStore, type ProtocolContext, type WriteEvents } from './shared'

export const RESUMPTION_SUPPORTED = 'Upload Resumption Supported'

// Refusals of the store that, in the draft's terms, mean the lengths do not add up.
const LENGTH_ERRORS = new Set(['FST_TUS_UPLOAD_LENGTH_EXCEEDED', 'FST_TUS_UPLOAD_LENGTH_ALREADY_SET', 'FST_TUS_UPLOAD_LENGTH_TOO_SMALL'])

export interface Append {
  version: InteropVersion
  offset: number
  complete: boolean
  /** Upload-Length, when the request has one. */
  length: number | undefined
  contentLength: number | undefined
}

/** Appends `body` at `offset`, completing the upload when the request says it is the last; resolves with the record after it. */
export async function appendBody (context: ProtocolContext, request: FastifyRequest, reply: FastifyReply, id: string, body: Readable | null, input: Append): Promise<UploadRecord> {
  const { store } = context
  const { version, offset, complete, contentLength } = input
  const maxBytes = maxBytesOf(context)
  const length = input.length ?? (complete && contentLength !== undefined ? offset + contentLength : undefined)
  let result = await storeWrite(context, request, id, offset, (events) => store.write(id, body, {
    offset,
    length,
    maxBytes,
    contentLength,
    ...events,
    onProgress: (record) => {
      events.onProgress?.(record)
      // While the body is not all in, the client may like to know how much of it is safe
      // (the last record, of the whole body, is told by the final answer).
      const end = contentLength === undefined ? undefined : offset + contentLength
      if ((end === undefined ? !request.raw.complete : record.offset < end) && version.limits !== false) {
        writeInformational(reply.raw, 104, RESUMPTION_SUPPORTED, { 'Upload-Offset': String(record.offset), 'Upload-Draft-Interop-Version': String(version.version) })
      }
    }
  }))
  if (complete && !result.finished) {
    const { record } = result
    // A body of unknown length that the client calls the last: its end sets the length.
    if (record.length !== null) throw new FST_TUS_INCONSISTENT_LENGTH(`the request completes the upload at ${record.offset}, its length is ${record.length}`)
    result = await storeWrite(context, request, id, record.offset, (events) => store.write(id, null, { offset: record.offset, length: record.offset, ...events }))
  }
  replyComplete(reply, version, result.finished)
  return result.record
}

// A store write with the hooks around it, its refusals told in the draft's terms.
async function storeWrite (context: ProtocolContext, request: FastifyRequest, id: string, offset: number, run: (events: WriteEvents) => Promise<WriteUploadResult>): Promise<WriteUploadResult> {
  const { store } = context
  try {
    return await writeThroughStore(context, request, id, offset, run)
  } catch (error) {
    const code = (error as FastifyError).code
    if (code === 'FST_TUS_OFFSET_MISMATCH') throw withOffsets(error as FastifyError, (await store.get(id)).offset, offset)
    if (!LENGTH_ERRORS.has(code)) throw error
    const current = await store.get(id).catch(() => undefined)
    if (current === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
    throw current.finishedAt !== null && current.offset === offset ? new FST_TUS_UPLOAD_COMPLETED() : new FST_TUS_INCONSISTENT_LENGTH((error as Error).message)
  }
}

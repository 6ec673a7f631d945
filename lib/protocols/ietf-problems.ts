// Refusals of the IETF protocol as problem documents (RFC 9457), with the
// problem type the client's interop version defines for them, and the headers
// the draft asks for beside some (the right offset on a 409, limits on a 413).
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { PROBLEM_CONTENT_TYPE, problemDocument } from '../problem'
import { replyComplete } from './ietf-fields'
import { type InteropVersion, type ProblemKind, problemTypeUri } from './ietf-versions'
import { refusalOf } from './shared'

const OFFSETS = Symbol('offsets of a mismatch')

interface Offsets { expected: number, provided: number }
type WithOffsets = FastifyError & { [OFFSETS]?: Offsets }

/** Marks an offset mismatch with the offsets its problem document names. */
export function withOffsets (error: FastifyError, expected: number, provided: number): FastifyError {
  (error as WithOffsets)[OFFSETS] = { expected, provided }
  return error
}

// Which problem kinds an error may be, the first one the version defines winning.
const KINDS: Record<string, ProblemKind[]> = {
  FST_TUS_OFFSET_MISMATCH: ['mismatching-upload-offset'],
  FST_TUS_INCONSISTENT_LENGTH: ['inconsistent-upload-length'],
  // From -06 on an append to a completed upload is an inconsistent length; -04 and -05 had a type of their own.
  FST_TUS_UPLOAD_COMPLETED: ['inconsistent-upload-length', 'completed-upload']
}

export function sendProblem (error: FastifyError, request: FastifyRequest, reply: FastifyReply, version: InteropVersion, limit: string | undefined): void {
  const { statusCode, code, message } = refusalOf(error, request, reply)
  reply.header('Upload-Draft-Interop-Version', version.version)
  if (statusCode === 413 && limit !== undefined) reply.header('Upload-Limit', limit)
  const kind = (KINDS[code] ?? []).find((candidate) => version.problems.has(candidate))
  const offsets = (error as WithOffsets)[OFFSETS]
  const extensions: Record<string, unknown> = {}
  if (offsets !== undefined) {
    reply.header('Upload-Offset', offsets.expected)
    replyComplete(reply, version, false)
    if (kind !== undefined) Object.assign(extensions, { 'expected-offset': offsets.expected, 'provided-offset': offsets.provided })
  }
  const document = problemDocument({ status: statusCode, code, detail: message, type: kind === undefined ? undefined : problemTypeUri(kind), extensions })
  reply.code(statusCode).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(document))
}

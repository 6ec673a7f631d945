// The IETF "Resumable Uploads for HTTP" draft, interop versions 3 to 9, on the
// same prefix as tus 1.0 and over the same store and hooks. It claims the
// requests that carry an Upload-Draft-Interop-Version it speaks; any other
// request is tus 1.0's. Its refusals are problem documents.
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { FST_TUS_INVALID_PARTIAL_UPLOAD_TYPE, FST_TUS_UPLOAD_NOT_FOUND } from '../errors'
import { writeInformational } from '../interim'
import { RESUMPTION_SUPPORTED, appendBody } from './ietf-append'
import { asAnnounced, supersedeAnnounced } from './ietf-announced'
import { PARTIAL_UPLOAD_TYPE, INTEROP_HEADER, replyState, requestComplete, requestLength, requestMetadata, requestOffset, uploadLimit } from './ietf-fields'
import { sendProblem } from './ietf-problems'
import { type InteropVersion, interopVersionOf } from './ietf-versions'
import {
  announceCompleted,
  announceCreated,
  bodyLength,
  preCreate,
  terminateThroughStore,
  uploadIdOf,
  uploadUrl,
  type Protocol,
  type ProtocolContext,
  type RouteName
} from './shared'

/** The version of a request this protocol claimed. */
function versionOf (request: FastifyRequest): InteropVersion {
  return interopVersionOf(request.headers[INTEROP_HEADER])!
}

export function ietfProtocol (context: ProtocolContext): Protocol {
  const create = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => await createUpload(context, request, reply)
  const retrieve = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => await retrieveOffset(context, request, reply)
  return {
    name: 'IETF resumable uploads',
    claims: (request) => interopVersionOf(request.headers[INTEROP_HEADER]) !== undefined,
    onRequest: (request, reply, route) => { checkRequest(request, reply, route) },
    replyError: (error, request, reply) => {
      const version = versionOf(request)
      sendProblem(error, request, reply, version, uploadLimit(version, context.options))
    },
    handlers: {
      options: async (request, reply) => {
        reply.header('Upload-Limit', uploadLimit(versionOf(request), context.options) ?? 'min-size=0')
        reply.code(204).send()
      },
      create,
      put: create,
      head: retrieve,
      get: retrieve,
      patch: async (request, reply) => await appendUpload(context, request, reply),
      delete: async (request, reply) => {
        const id = uploadIdOf(request)
        await terminateThroughStore(context, request, id, () => supersedeAnnounced(id))
        reply.code(204).send()
      },
      notFound: async () => { throw new FST_TUS_UPLOAD_NOT_FOUND() }
    }
  }
}

function checkRequest (request: FastifyRequest, reply: FastifyReply, route: RouteName | undefined): void {
  const version = versionOf(request)
  // Set first, so that every answer, errors included, carries it.
  reply.header('Upload-Draft-Interop-Version', version.version)
  // Before any byte of the body is read.
  const type = request.headers['content-type']
  if (route === 'patch' && version.partialUploadType && type?.split(';')[0].trim().toLowerCase() !== PARTIAL_UPLOAD_TYPE) {
    throw new FST_TUS_INVALID_PARTIAL_UPLOAD_TYPE(JSON.stringify(type ?? null))
  }
}

function bodyOf (request: FastifyRequest, contentLength: number | undefined): Readable | null {
  return contentLength === 0 ? null : (request.body as Readable | undefined) ?? null
}

// Creation, careful (no body: the 201 gives the URL) or optimistic (a body: a 104 gives it first).
async function createUpload (context: ProtocolContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { options, store } = context
  const version = versionOf(request)
  const complete = requestComplete(request, version)
  const contentLength = bodyLength(context, request)
  const length = requestLength(request, complete, 0, contentLength) ?? null
  const body = bodyOf(request, contentLength)
  const proposal = { length, metadata: requestMetadata(request, options.maxMetadataSize) }
  const { metadata, serverMetadata } = await preCreate(context, request, proposal)
  let record = await store.create({ length, metadata, serverMetadata })
  await announceCreated(context, request, reply, record)
  if (body === null) {
    // An empty upload is finished at creation.
    if (record.finishedAt !== null) await announceCompleted(context, request, record)
  } else {
    // From here on the upload is resumable: the record is durable and the client learns its URL before sending more.
    const limit = uploadLimit(version, options, record)
    writeInformational(reply.raw, 104, RESUMPTION_SUPPORTED, {
      Location: uploadUrl(context, request, record.id),
      'Upload-Draft-Interop-Version': String(version.version),
      ...(limit === undefined ? {} : { 'Upload-Limit': limit })
    })
    const id = record.id
    record = await asAnnounced(id, body, () => appendBody(context, request, reply, id, body, { version, offset: 0, complete, length: undefined, contentLength }))
  }
  replyState(reply, version, options, record)
  reply.code(201).send()
}

async function retrieveOffset ({ options, store, hooks }: ProtocolContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const id = uploadIdOf(request)
  if (hooks.has('tus:preAccess')) await hooks.run('tus:preAccess', request, await store.get(id))
  // A client asking where it stands has given up on any request still streaming: it is stopped first.
  await supersedeAnnounced(id)
  const record = await store.current(id)
  reply.header('Cache-Control', 'no-store')
  replyState(reply, versionOf(request), options, record)
  reply.code(204).send()
}

async function appendUpload (context: ProtocolContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { options, store, hooks } = context
  const id = uploadIdOf(request)
  const version = versionOf(request)
  const offset = requestOffset(request)
  const complete = requestComplete(request, version)
  const contentLength = bodyLength(context, request)
  const length = requestLength(request, complete, offset, contentLength)
  if (hooks.has('tus:preAccess')) await hooks.run('tus:preAccess', request, await store.get(id))
  await supersedeAnnounced(id)
  const record = await appendBody(context, request, reply, id, bodyOf(request, contentLength), { version, offset, complete, length, contentLength })
  replyState(reply, version, options, record)
  reply.code(204).send()
}

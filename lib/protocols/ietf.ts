// The IETF "Resumable Uploads for HTTP" draft, interop versions 3 to 9, on the
// same prefix as tus 1.0 and over the same store and hooks. Its routes are
// chosen by a router constraint: a request with a supported
// Upload-Draft-Interop-Version reaches them, any other the tus routes. They live
// in their own encapsulated context, so their body parser, hooks and error
// answers (problem documents) never touch tus's.
import type { Readable } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { UploadRecord, WriteUploadResult } from '../../types/index'
import {
  FST_TUS_INCONSISTENT_LENGTH,
  FST_TUS_INVALID_PARTIAL_UPLOAD_TYPE,
  FST_TUS_UPLOAD_COMPLETED,
  FST_TUS_UPLOAD_NOT_FOUND
} from '../errors'
import { writeInformational } from '../interim'
import { PARTIAL_UPLOAD_TYPE, INTEROP_HEADER, replyComplete, replyState, requestComplete, requestLength, requestMetadata, requestOffset, uploadLimit } from './ietf-fields'
import { sendProblem, withOffsets } from './ietf-problems'
import { type InteropVersion, interopVersionOf } from './ietf-versions'
import { type ProtocolOptions, basePath, uploadActions, uploadIdOf, uploadLocation, withUploadId } from './shared'

const CONSTRAINT = 'fastifyTusInteropVersion'
const UPLOAD_URL = '/*'
const RESUMPTION_SUPPORTED = 'Upload Resumption Supported'
// Refusals of the store that, in the draft's terms, mean the lengths do not add up.
const LENGTH_ERRORS = new Set(['FST_TUS_UPLOAD_LENGTH_EXCEEDED', 'FST_TUS_UPLOAD_LENGTH_ALREADY_SET', 'FST_TUS_UPLOAD_LENGTH_TOO_SMALL'])

type RouteStore = NonNullable<ReturnType<ReturnType<Parameters<FastifyInstance['addConstraintStrategy']>[0]['storage']>['get']>>

interface Append {
  offset: number
  complete: boolean
  length: number | undefined
  contentLength: number | undefined
}

/** The version of a request routed here (the constraint let only supported ones in). */
export function versionOf (request: FastifyRequest): InteropVersion {
  return interopVersionOf(request.headers[INTEROP_HEADER])!
}

// Any value derived routes to the draft's routes; no value (no header, or a version
// this server does not speak) falls back to tus's, which then asks for Tus-Resumable.
const interopConstraint: Parameters<FastifyInstance['addConstraintStrategy']>[0] = {
  name: CONSTRAINT,
  storage () {
    const stores = new Map<string, RouteStore>()
    return { get: (value: string) => stores.get(value) ?? null, set: (value: string, store: RouteStore) => { stores.set(value, store) } }
  },
  deriveConstraint: (request: { headers: Record<string, string | string[] | undefined> }) =>
    interopVersionOf(request.headers[INTEROP_HEADER]) === undefined ? undefined : 'supported',
  mustMatchWhenDerived: false
}

export async function ietfRoutes (app: FastifyInstance, { options, store, hooks }: ProtocolOptions): Promise<void> {
  const maxBytes = Number.isFinite(options.maxChunkSize) ? options.maxChunkSize : undefined
  const base = basePath(app.prefix)
  const actions = uploadActions({ options, store, hooks })
  const constraints = { [CONSTRAINT]: 'supported' }
  if (!app.hasConstraintStrategy(CONSTRAINT)) app.addConstraintStrategy(interopConstraint)

  // Any body is the upload's bytes, whatever its type; it stays a stream for the store.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

  app.addHook('onRequest', async (request, reply) => {
    const id = uploadIdOf(request)
    if (id !== '') withUploadId(request, reply, id)
    reply.header('Upload-Draft-Interop-Version', versionOf(request).version)
  })
  app.setErrorHandler((error: FastifyError, request, reply) => {
    sendProblem(error, request, reply, versionOf(request), uploadLimit(versionOf(request), options))
  })

  app.route({ method: 'OPTIONS', url: '/', constraints, handler: async (request, reply) => {
    reply.header('Upload-Limit', uploadLimit(versionOf(request), options) ?? 'min-size=0')
    reply.code(204).send()
  } })

  const createUpload = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const version = versionOf(request)
    const complete = requestComplete(request, version)
    const contentLength = actions.bodyLength(request)
    const length = requestLength(request, complete, 0, contentLength) ?? null
    const body = contentLength === 0 ? null : (request.body as Readable | undefined) ?? null
    const proposal = { length, metadata: requestMetadata(request, options.maxMetadataSize) }
    const { metadata, serverMetadata } = await actions.preCreate(request, proposal)
    let record = await store.create({ length, metadata, serverMetadata })
    const location = uploadLocation(request, base, record.id)
    reply.header('Location', location)
    await actions.created(request, reply, record)
    if (body === null) {
      // An empty upload is finished at creation.
      if (record.finishedAt !== null) await actions.completed(request, record)
    } else {
      // From here on the upload is resumable: the record is durable and the client learns its URL before sending more.
      const limit = uploadLimit(version, options, record)
      writeInformational(reply.raw, 104, RESUMPTION_SUPPORTED, {
        Location: location,
        'Upload-Draft-Interop-Version': String(version.version),
        ...(limit === undefined ? {} : { 'Upload-Limit': limit })
      })
      record = await append(request, reply, record.id, body, { offset: 0, complete, length: undefined, contentLength })
    }
    replyState(reply, version, options, record)
    reply.code(201).send()
  }
  app.route({ method: 'POST', url: '/', constraints, handler: createUpload })
  app.route({ method: 'PUT', url: '/', constraints, handler: createUpload })

  const retrieveOffset = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const id = uploadIdOf(request)
    if (hooks.has('tus:preAccess')) await hooks.run('tus:preAccess', request, await store.get(id))
    // A client asking where it stands has given up on any request still streaming: it is stopped first.
    const record = await store.settle(id)
    reply.header('Cache-Control', 'no-store')
    replyState(reply, versionOf(request), options, record)
    reply.code(204).send()
  }
  app.route({ method: 'HEAD', url: UPLOAD_URL, constraints, handler: retrieveOffset })
  app.route({ method: 'GET', url: UPLOAD_URL, constraints, exposeHeadRoute: false, handler: retrieveOffset })

  app.route({ method: 'PATCH', url: UPLOAD_URL, constraints, handler: async (request, reply) => {
    const id = uploadIdOf(request)
    const version = versionOf(request)
    const type = request.headers['content-type']
    if (version.partialUploadType && type?.split(';')[0].trim().toLowerCase() !== PARTIAL_UPLOAD_TYPE) {
      throw new FST_TUS_INVALID_PARTIAL_UPLOAD_TYPE(JSON.stringify(type ?? null))
    }
    const offset = requestOffset(request)
    const complete = requestComplete(request, version)
    const contentLength = actions.bodyLength(request)
    const length = requestLength(request, complete, offset, contentLength)
    if (hooks.has('tus:preAccess')) await hooks.run('tus:preAccess', request, await store.get(id))
    const body = contentLength === 0 ? null : (request.body as Readable | undefined) ?? null
    const record = await append(request, reply, id, body, { offset, complete, length, contentLength })
    replyState(reply, version, options, record)
    reply.code(204).send()
  } })

  app.route({ method: 'DELETE', url: UPLOAD_URL, constraints, handler: async (request, reply) => {
    await actions.terminate(request, uploadIdOf(request))
    reply.code(204).send()
  } })

  // Appends a body at `offset`, completing the upload when the request says it is
  // the last one. Resolves with the record after it.
  async function append (request: FastifyRequest, reply: FastifyReply, id: string, body: Readable | null, input: Append): Promise<UploadRecord> {
    const { offset, complete, contentLength } = input
    const length = input.length ?? (complete && contentLength !== undefined ? offset + contentLength : undefined)
    const version = versionOf(request)
    let result: WriteUploadResult = await storeWrite(request, id, offset, (events) => store.write(id, body, {
      offset, length, maxBytes, contentLength, ...events,
      onProgress: (record) => {
        events.onProgress?.(record)
        // While bytes still arrive, the client may like to know how many are safe.
        if (!request.raw.complete && version.limits !== false) {
          writeInformational(reply.raw, 104, RESUMPTION_SUPPORTED, { 'Upload-Offset': String(record.offset), 'Upload-Draft-Interop-Version': String(version.version) })
        }
      }
    }))
    if (complete && !result.finished) {
      const { record } = result
      // A body of unknown length that the client calls the last: its end sets the length.
      if (record.length !== null) throw new FST_TUS_INCONSISTENT_LENGTH(`the request completes the upload at ${record.offset}, its length is ${record.length}`)
      result = await storeWrite(request, id, record.offset, (events) => store.write(id, null, { offset: record.offset, length: record.offset, ...events }))
    }
    replyComplete(reply, version, result.finished)
    return result.record
  }

  // A store write with the hooks around it, its refusals told in the draft's terms.
  async function storeWrite (request: FastifyRequest, id: string, offset: number, run: Parameters<typeof actions.write>[2]): Promise<WriteUploadResult> {
    try {
      return await actions.write(request, id, run)
    } catch (error) {
      const code = (error as FastifyError).code
      if (code === 'FST_TUS_OFFSET_MISMATCH') throw withOffsets(error as FastifyError, (await store.get(id)).offset, offset)
      if (!LENGTH_ERRORS.has(code)) throw error
      const current = await store.get(id).catch(() => undefined)
      if (current === undefined) throw new FST_TUS_UPLOAD_NOT_FOUND()
      throw current.finishedAt !== null && current.offset === offset ? new FST_TUS_UPLOAD_COMPLETED() : new FST_TUS_INCONSISTENT_LENGTH((error as Error).message)
    }
  }
}

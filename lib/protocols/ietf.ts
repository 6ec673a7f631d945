// The IETF "Resumable Uploads for HTTP" draft, interop versions 3 to 9, on the
// same prefix as tus 1.0 and over the same store and hooks. Its routes are
// chosen by a router constraint: a request with a supported
// Upload-Draft-Interop-Version reaches them, any other the tus routes. They live
// in their own encapsulated context, so their body parser, hooks and error
// answers (problem documents) never touch tus's.
import type { Readable } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { FST_TUS_INVALID_PARTIAL_UPLOAD_TYPE } from '../errors'
import { writeInformational } from '../interim'
import { type AppendContext, RESUMPTION_SUPPORTED, appendBody } from './ietf-append'
import { asAnnounced, supersedeAnnounced } from './ietf-announced'
import { PARTIAL_UPLOAD_TYPE, INTEROP_HEADER, replyState, requestComplete, requestLength, requestMetadata, requestOffset, uploadLimit } from './ietf-fields'
import { sendProblem } from './ietf-problems'
import { type InteropVersion, interopVersionOf } from './ietf-versions'
import { type ProtocolOptions, basePath, uploadActions, uploadIdOf, uploadLocation, withUploadId } from './shared'

const CONSTRAINT = 'fastifyTusInteropVersion'
const UPLOAD_URL = '/*'

type RouteStore = NonNullable<ReturnType<ReturnType<Parameters<FastifyInstance['addConstraintStrategy']>[0]['storage']>['get']>>
type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

interface Context extends AppendContext, ProtocolOptions {
  /** The full prefix of the routes' context. */
  base: string
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
  const context: Context = { options, store, hooks, actions: uploadActions({ options, store, hooks }), base: basePath(app.prefix) }
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
  const create = creation(context)
  app.route({ method: 'POST', url: '/', constraints, handler: create })
  app.route({ method: 'PUT', url: '/', constraints, handler: create })
  const retrieve = offsetRetrieval(context)
  app.route({ method: 'HEAD', url: UPLOAD_URL, constraints, handler: retrieve })
  app.route({ method: 'GET', url: UPLOAD_URL, constraints, exposeHeadRoute: false, handler: retrieve })
  app.route({ method: 'PATCH', url: UPLOAD_URL, constraints, handler: append(context) })
  app.route({ method: 'DELETE', url: UPLOAD_URL, constraints, handler: async (request, reply) => {
    const id = uploadIdOf(request)
    await context.actions.terminate(request, id, () => supersedeAnnounced(id))
    reply.code(204).send()
  } })
}

// Creation, careful (no body: the 201 gives the URL) or optimistic (a body: a 104 gives it first).
function creation (context: Context): Handler {
  const { options, store, actions, base } = context
  return async (request, reply) => {
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
      const id = record.id
      record = await asAnnounced(id, body, () => appendBody(context, request, reply, id, body, { version, offset: 0, complete, length: undefined, contentLength }))
    }
    replyState(reply, version, options, record)
    reply.code(201).send()
  }
}

function offsetRetrieval ({ options, store, hooks }: Context): Handler {
  return async (request, reply) => {
    const id = uploadIdOf(request)
    if (hooks.has('tus:preAccess')) await hooks.run('tus:preAccess', request, await store.get(id))
    // A client asking where it stands has given up on any request still streaming: it is stopped first.
    await supersedeAnnounced(id)
    const record = await store.settle(id)
    reply.header('Cache-Control', 'no-store')
    replyState(reply, versionOf(request), options, record)
    reply.code(204).send()
  }
}

function append (context: Context): Handler {
  const { options, store, hooks, actions } = context
  return async (request, reply) => {
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
    await supersedeAnnounced(id)
    const body = contentLength === 0 ? null : (request.body as Readable | undefined) ?? null
    const record = await appendBody(context, request, reply, id, body, { version, offset, complete, length, contentLength })
    replyState(reply, version, options, record)
    reply.code(204).send()
  }
}

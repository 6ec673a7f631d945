// The one place where requests meet protocols: every route of the plugin's
// prefix is registered here once, and each request is given to the first
// protocol that claims it. Bodies stay streams of any content type; each
// protocol checks the Content-Type it accepts. The content-type parsers, hooks
// and error handler set here never leak into the application.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify'
import type { ResolvedTusOptions } from '../../types/index'
import { sendDownload, type DownloadContext } from '../download'
import type { Hooks } from '../hooks'
import { FST_TUS_UNSUPPORTED_METHOD, FST_TUS_UPLOAD_NOT_FOUND } from '../errors'
import type { FileStore } from '../store/index'
import { AllowedMethods } from './allowed-methods'
import { summary } from '../upload-log'
import { protocolContext, uploadIdOf, withUploadId, type Handler, type Protocol, type ProtocolContext, type RouteName } from './shared'
import { ietfProtocol } from './ietf'
import { tusProtocol } from './tus'

export interface ProtocolRoutesOptions {
  options: ResolvedTusOptions
  store: FileStore
  hooks: Hooks
  /** Told, once per request, how many body bytes the store recorded. */
  received?: (bytes: number) => void
}

// Upload URLs are matched with a wildcard: a `:id` parameter longer than the
// router's maxParamLength would be refused by Fastify itself, without the protocol's headers.
const UPLOAD_URL = '/*'

const ROUTES: ReadonlyArray<{ name: RouteName, method: HTTPMethods, url: string }> = [
  { name: 'options', method: 'OPTIONS', url: '/' },
  { name: 'create', method: 'POST', url: '/' },
  // The IETF draft creates with PUT too, and retrieves an offset with GET as with HEAD.
  { name: 'put', method: 'PUT', url: '/' },
  { name: 'head', method: 'HEAD', url: UPLOAD_URL },
  { name: 'get', method: 'GET', url: UPLOAD_URL },
  { name: 'patch', method: 'PATCH', url: UPLOAD_URL },
  { name: 'delete', method: 'DELETE', url: UPLOAD_URL },
  // X-HTTP-Method-Override, for networks that let only GET and POST through.
  { name: 'override', method: 'POST', url: UPLOAD_URL }
]

// The protocol of a request, chosen once.
const PROTOCOL = Symbol('fastify-tus.protocol')
type WithProtocol = FastifyRequest & { [PROTOCOL]: Protocol | null }

/** The protocols served, in the order they are asked; the last (tus 1.0) claims every request. */
function protocolsOf (context: ProtocolContext): Protocol[] {
  return context.options.ietf ? [ietfProtocol(context), tusProtocol(context)] : [tusProtocol(context)]
}

export async function protocolRoutes (app: FastifyInstance, { options, store, hooks, received }: ProtocolRoutesOptions): Promise<void> {
  const context = protocolContext(app.prefix, options, store, hooks, received)
  const protocols = protocolsOf(context)
  const protocolOf = (request: FastifyRequest): Protocol => {
    const scoped = request as WithProtocol
    scoped[PROTOCOL] ??= protocols.find((protocol) => protocol.claims(request)) ?? protocols[protocols.length - 1]
    return scoped[PROTOCOL]
  }

  // A GET of an upload that its protocol does not answer (tus's) is a download, when downloads are on.
  const download: DownloadContext = { completedDir: options.completedDir, hooks, get: (id) => store.get(id) }
  const downloadHandler: Handler = async (request, reply) => await sendDownload(request, reply, uploadIdOf(request), download)
  const handlerOf = (protocol: Protocol, name: RouteName): Handler | undefined =>
    protocol.handlers[name] ?? (name === 'get' && options.download ? downloadHandler : undefined)

  // Learns the routes below, and any a protocol adds: a method none serves at a URL is 405.
  const allowed = new AllowedMethods(app)
  // The methods the request's protocol serves at its URL (tus has no GET or PUT, the draft no method override).
  const unserved = (request: FastifyRequest, reply: FastifyReply): FastifyError | undefined => {
    const protocol = protocolOf(request)
    const methods = allowed.at(request.url, (name) => handlerOf(protocol, name as RouteName) !== undefined)
    if (methods.length === 0) return undefined
    reply.header('Allow', methods.join(', '))
    return new FST_TUS_UNSUPPORTED_METHOD(request.method, methods.join(', '))
  }

  // Bodies stay streams: the store reads them straight into the data file.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
  app.decorateRequest(PROTOCOL, null)

  app.addHook('onRequest', async (request, reply) => {
    const id = uploadIdOf(request)
    if (id !== '') withUploadId(request, reply, id)
    // A method no route serves here is 405 whatever its headers say: no protocol checks them.
    if (request.is404 && allowed.at(request.url).length > 0) return
    const route = (request.routeOptions.config as { uploadRoute?: RouteName } | undefined)?.uploadRoute
    // Nor is a route the request's protocol does not serve (tus has no PUT), and a download speaks
    // plain HTTP, whatever the protocol the upload came in by: a browser's link sends no protocol headers.
    if (route !== undefined && protocolOf(request).handlers[route] === undefined) return
    await protocolOf(request).onRequest(request, reply, route)
  })
  // Hooks that run before this context's own (under-pressure's) may refuse before a protocol was chosen: it is chosen then.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const failed = hooks.failure(error)
    if (failed !== undefined) request.log.info({ ...summary(request.log, failed), reason: error.code ?? null, err: error }, 'upload failed')
    // What Fastify itself refuses on the way to a method no route serves (a malformed
    // Content-Type, QUERY without one) is answered as that method's absence.
    const framework = typeof error.code === 'string' && error.code.startsWith('FST_ERR_')
    protocolOf(request).replyError((request.is404 && framework ? unserved(request, reply) : undefined) ?? error, request, reply)
  })
  app.setNotFoundHandler(async (request, reply) => {
    const refusal = unserved(request, reply)
    if (refusal !== undefined) throw refusal
    await protocolOf(request).handlers.notFound(request, reply)
  })

  for (const { name, method, url } of ROUTES) {
    // Only the routes something serves: their methods are the ones Allow names.
    if (!protocols.some((protocol) => handlerOf(protocol, name) !== undefined)) continue
    app.route({
      method,
      url,
      config: { uploadRoute: name },
      // GET is its own route here, never a copy of HEAD's.
      exposeHeadRoute: false,
      handler: async (request, reply) => {
        const handler = handlerOf(protocolOf(request), name)
        if (handler !== undefined) return await handler(request, reply)
        throw unserved(request, reply) ?? new FST_TUS_UPLOAD_NOT_FOUND()
      }
    })
  }
}

// CORS for browser tus clients, through @fastify/cors in the tus routes' own
// context: preflights allow the tus request headers, answers expose the tus ones.
import type { FastifyCorsOptions } from '@fastify/cors'
import type { ResolvedTusOptions } from '../types/index'

const ALLOWED_HEADERS = [
  'Authorization', 'Content-Type', 'Tus-Resumable', 'Upload-Length', 'Upload-Offset', 'Upload-Metadata',
  'Upload-Defer-Length', 'Upload-Concat', 'Upload-Checksum', 'X-HTTP-Method-Override', 'X-Requested-With'
]
// The IETF draft's, when it is served.
const IETF_ALLOWED_HEADERS = ['Upload-Draft-Interop-Version', 'Upload-Complete', 'Upload-Incomplete', 'Content-Disposition']
const IETF_EXPOSED_HEADERS = ['Upload-Draft-Interop-Version', 'Upload-Complete', 'Upload-Incomplete', 'Upload-Limit']
const EXPOSED_HEADERS = [
  'Location', 'Upload-Offset', 'Upload-Length', 'Upload-Metadata', 'Upload-Expires', 'Upload-Defer-Length',
  'Upload-Concat', 'Tus-Resumable', 'Tus-Version', 'Tus-Extension', 'Tus-Max-Size', 'Tus-Checksum-Algorithm'
]

export function corsOptions (cors: Exclude<ResolvedTusOptions['cors'], false>, ietf = false): FastifyCorsOptions {
  return {
    origin: originOption(cors),
    methods: ['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS', ...(ietf ? ['GET', 'PUT'] : [])],
    allowedHeaders: ietf ? [...ALLOWED_HEADERS, ...IETF_ALLOWED_HEADERS] : ALLOWED_HEADERS,
    exposedHeaders: ietf ? [...EXPOSED_HEADERS, ...IETF_EXPOSED_HEADERS] : EXPOSED_HEADERS,
    maxAge: 86400,
    // OPTIONS is also tus's discovery request, without Origin: it goes on to the
    // tus handler, which answers both (the preflight headers are already set).
    strictPreflight: false,
    preflightContinue: true
  }
}

function originOption (cors: Exclude<ResolvedTusOptions['cors'], false>): FastifyCorsOptions['origin'] {
  if (cors === true) return '*'
  if (typeof cors === 'function') {
    // A request without an Origin is no browser's cross-origin request: nothing to allow.
    return (origin, callback) => {
      if (origin === undefined) {
        callback(null, false)
        return
      }
      Promise.resolve(cors(origin)).then((allowed) => callback(null, allowed === true), (error: Error) => callback(error, false))
    }
  }
  return typeof cors === 'string' ? cors : [...cors]
}

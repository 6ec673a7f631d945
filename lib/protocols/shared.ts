// What every wire protocol needs, whatever its headers: the upload id in every
// log line, an idle timeout on bodies, error replies, and the store's writes and
// creations with the plugin's hooks around them. A protocol module parses its
// own headers and writes its own answers; everything else comes from here.
import { STATUS_CODES } from 'node:http'
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { ProposedUpload, ResolvedTusOptions, UploadMetadata, UploadRecord, WriteUploadInput, WriteUploadResult } from '../../types/index'
import { FST_TUS_CHUNK_TOO_LARGE, FST_TUS_IDLE_TIMEOUT, RETRY_AFTER } from '../errors'
import { parseContentLength } from '../headers'
import type { Hooks } from '../hooks'
import { ProgressThrottle } from './progress'
import type { FileStore } from '../store/index'
import { summary } from '../upload-log'

/** What a protocol's handlers work with: one per plugin registration, shared by every protocol. */
export interface ProtocolContext {
  readonly options: ResolvedTusOptions
  readonly store: FileStore
  readonly hooks: Hooks
  /** The full prefix of the routes' context, without a trailing slash. */
  readonly base: string
  readonly progress: ProgressThrottle
  /** Told, once per request, how many body bytes the store recorded (the metrics). */
  readonly received: ((bytes: number) => void) | undefined
}

export function protocolContext (prefix: string, options: ResolvedTusOptions, store: FileStore, hooks: Hooks, received?: (bytes: number) => void): ProtocolContext {
  const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  return { options, store, hooks, base, progress: new ProgressThrottle(options.progressInterval), received }
}

export type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>
export type WriteEvents = Pick<WriteUploadInput, 'onProgress' | 'onHandedOver'>

/** The id part of an upload URL (`<prefix>/<id>`); '' on the creation URL. */
export function uploadIdOf (request: FastifyRequest): string {
  return (request.params as { '*'?: string } | undefined)?.['*'] ?? ''
}

/** The URL of an upload, from Fastify's protocol and host (so `trustProxy` decides about X-Forwarded-*). */
export function uploadUrl (context: ProtocolContext, request: FastifyRequest, id: string): string {
  return `${request.protocol}://${request.host}${context.base}/${id}`
}

/** Every later line of the request's log, Fastify's own included, names the upload and the client. */
export function withUploadId (request: FastifyRequest, reply: FastifyReply, uploadId: string): FastifyRequest['log'] {
  const log = lazyChild(request.log, { uploadId, remoteAddress: request.ip })
  request.log = log
  reply.log = log
  return log
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
const skip = (): void => {}

// The child logger, made when something is logged through it: most requests (a HEAD, at info)
// log nothing, and a pino child cost a HEAD more CPU than the rest of its logging.
function lazyChild (parent: FastifyBaseLogger, bindings: Record<string, unknown>): FastifyBaseLogger {
  let child: FastifyBaseLogger | undefined
  const isEnabled = (parent as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled
  return new Proxy(parent, {
    get (_parent, key) {
      if (child === undefined && typeof key === 'string' && LEVELS.has(key) && isEnabled?.call(parent, key) === false) return skip
      child ??= parent.child(bindings)
      const value: unknown = Reflect.get(child, key, child)
      return typeof value === 'function' ? value.bind(child) : value
    },
    set (_parent, key, value) {
      child ??= parent.child(bindings)
      return Reflect.set(child, key, value, child)
    }
  })
}

/** The request's Content-Length, refused at once when over maxChunkSize. */
export function bodyLength (context: ProtocolContext, request: FastifyRequest): number | undefined {
  const length = parseContentLength(request.headers['content-length'])
  if (length !== undefined && length > context.options.maxChunkSize) throw new FST_TUS_CHUNK_TOO_LARGE(context.options.maxChunkSize)
  return length
}

/** maxChunkSize as the store's `maxBytes`: undefined when unlimited. */
export function maxBytesOf (context: ProtocolContext): number | undefined {
  return Number.isFinite(context.options.maxChunkSize) ? context.options.maxChunkSize : undefined
}

/** tus:preCreate over a proposed upload: what the listeners return replaces the metadata and adds server metadata. */
export async function preCreate (context: ProtocolContext, request: FastifyRequest, proposal: ProposedUpload): Promise<{ metadata: UploadMetadata, serverMetadata: Record<string, unknown> }> {
  let { metadata } = proposal
  let serverMetadata: Record<string, unknown> = {}
  try {
    for (const result of await context.hooks.run('tus:preCreate', request, proposal)) {
      if (result?.metadata !== undefined) metadata = result.metadata
      if (result?.serverMetadata !== undefined) serverMetadata = { ...serverMetadata, ...result.serverMetadata }
    }
  } catch (error) {
    await context.hooks.failed(request.log, error as Error, null)
    throw error
  }
  return { metadata, serverMetadata }
}

/** A new upload's record is persisted: logged, its URL in `Location`, tus:created told. */
export async function announceCreated (context: ProtocolContext, request: FastifyRequest, reply: FastifyReply, record: UploadRecord): Promise<void> {
  const log = withUploadId(request, reply, record.id)
  log.info({ length: record.length, metadata: record.metadata, concat: record.concat }, 'upload created')
  reply.header('Location', uploadUrl(context, request, record.id))
  await context.hooks.notify('tus:created', log, record.id, { ...record }, request)
}

/** An upload is in completedDir: logged, and tus:completed told. */
export async function announceCompleted (context: ProtocolContext, request: FastifyRequest, record: UploadRecord): Promise<void> {
  request.log.info(summary(request.log, record), 'upload completed')
  await context.hooks.notify('tus:completed', request.log, record.id, record)
}

/**
 * Runs a store write (of a PATCH-like request, or of a creation with data) with the
 * hooks around it (tus:progress, tus:completed, tus:failed) and the idle timeout on
 * its body. `id` is null for a creation. `run` passes the events on to the store.
 */
export async function writeThroughStore (context: ProtocolContext, request: FastifyRequest, id: string | null, start: number, run: (events: WriteEvents) => Promise<WriteUploadResult>): Promise<WriteUploadResult> {
  const { hooks, store, progress, received } = context
  // Bytes are counted once per request, from the offsets the store recorded (it reports every record it writes).
  let recorded = start
  const notify = hooks.has('tus:progress')
  const onProgress = notify || received !== undefined
    ? (record: UploadRecord) => {
        recorded = record.offset
        if (notify && progress.due(record)) void hooks.notify('tus:progress', request.log, record.id, record)
      }
    : undefined
  const onHandedOver = (record: UploadRecord): Promise<void> => announceCompleted(context, request, record)
  let result: WriteUploadResult
  try {
    result = await withIdleTimeout(request, context.options.idleTimeout, () => run({ onProgress, onHandedOver }))
  } catch (error) {
    // Refusals of the protocol (409, 413 ...) are part of resuming; failures of the server are not.
    if (statusOf(error as FastifyError) >= 500) await hooks.failed(request.log, error as Error, id === null ? null : await store.get(id).catch(() => null))
    throw error
  } finally {
    if (recorded > start) received?.(recorded - start)
  }
  request.log.debug({ offset: result.record.offset, written: result.written }, 'chunk written')
  return result
}

/**
 * A connection that died without a word would hold the upload's lock for good:
 * a body silent for `idleTimeout` ms (0: never) is ended like an aborted one.
 */
export async function withIdleTimeout<T> (request: FastifyRequest, idleTimeout: number, write: () => Promise<T>): Promise<T> {
  if (idleTimeout === 0) return await write()
  const raw = request.raw
  const onIdle = (): void => { raw.destroy(new FST_TUS_IDLE_TIMEOUT(idleTimeout)) }
  // Once the body is in, a slow fsync must not cut the answer off.
  const disarm = (): void => {
    raw.removeListener('timeout', onIdle)
    raw.setTimeout(0)
  }
  raw.setTimeout(idleTimeout, onIdle)
  raw.once('end', disarm)
  try {
    return await write()
  } finally {
    raw.removeListener('end', disarm)
    disarm()
  }
}

/** An error's status: its own when it is one of an HTTP refusal, else 500. */
export function statusOf (error: FastifyError): number {
  return error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
}

/**
 * The error reply every protocol gives: logged (refusals at info, failures at error),
 * a JSON body with the FST_TUS_* code, `Retry-After` where the code has one, and `Connection: close`
 * when the body was not read. `protocolHeaders` adds the protocol's own headers.
 */
export function sendError (error: FastifyError, request: FastifyRequest, reply: FastifyReply, protocolHeaders: (statusCode: number) => void = () => {}): void {
  const { statusCode, code, message } = refusalOf(error, request, reply)
  protocolHeaders(statusCode)
  reply.code(statusCode).send({
    statusCode,
    code,
    error: statusCode === 460 ? 'Checksum Mismatch' : STATUS_CODES[statusCode] ?? 'Error',
    message
  })
}

/**
 * What every protocol's error reply starts with: the error logged (refusals at
 * info, failures at error), `Retry-After` where the code has one, `Connection: close` when the
 * body was not read, and what the client may be told of it.
 */
export function refusalOf (error: FastifyError, request: FastifyRequest, reply: FastifyReply): { statusCode: number, code: string, message: string } {
  const statusCode = statusOf(error)
  if (statusCode >= 500) request.log.error({ err: error }, 'tus request failed')
  else request.log.info({ code: error.code, statusCode }, error.message)
  // under-pressure sets its own before it refuses.
  const retryAfter = RETRY_AFTER[error.code]
  if (retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('Retry-After', String(retryAfter))
  // A body left unread is not drained (it may be gigabytes): the connection ends with this answer.
  if (!request.raw.complete) reply.header('Connection', 'close')
  // A refusal (4xx, from the plugin or an application hook) is told as it is; an
  // unexpected failure's message may name server paths, so it goes to the log only.
  const told = statusCode < 500 || (typeof error.code === 'string' && error.code.startsWith('FST_'))
  return {
    statusCode,
    code: typeof error.code === 'string' && told ? error.code : (told ? 'FST_TUS_REFUSED' : 'FST_TUS_INTERNAL'),
    message: told ? error.message : 'Internal Server Error'
  }
}

/**
 * Termination (tus) or cancellation (IETF): tus:preAccess and tus:preTerminate may
 * refuse; then `allowed` runs, the store removes the upload, and tus:terminated is told.
 */
export async function terminateThroughStore (context: ProtocolContext, request: FastifyRequest, id: string, allowed?: () => Promise<void>): Promise<void> {
  const { store, hooks } = context
  const record = await store.get(id)
  await hooks.run('tus:preAccess', request, record)
  await hooks.run('tus:preTerminate', request, record)
  await allowed?.()
  const terminated = await store.terminate(record.id)
  request.log.info(summary(request.log, terminated), 'upload terminated')
  await hooks.notify('tus:terminated', request.log, record.id, terminated, request)
}

/** The routes every protocol is served on, under the plugin's prefix; `notFound` answers any other URL. */
export type RouteName = 'options' | 'create' | 'put' | 'head' | 'get' | 'patch' | 'delete' | 'override' | 'notFound'

/** A wire protocol: which requests are its own, and how it answers them. */
export interface Protocol {
  readonly name: string
  /** Whether the request speaks this protocol; the routes ask each protocol in turn and give it to the first that says yes. */
  claims (request: FastifyRequest): boolean
  /** Runs first for each of its requests, before the body is read: headers every answer carries, early refusals. `route` is undefined for an unknown URL. */
  onRequest (request: FastifyRequest, reply: FastifyReply, route: RouteName | undefined): void | Promise<void>
  /** Answers a failed request (usually sendError with the protocol's own headers). */
  replyError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void
  /** A route the protocol has no handler for is answered by its `notFound`. */
  readonly handlers: Readonly<Partial<Record<RouteName, Handler>>> & { readonly notFound: Handler }
}

// What every wire protocol needs around the store: the upload id of a URL and
// in the log, tus:preCreate, a store write with the hooks around it and the
// body idle timeout. Protocols differ in headers and answers, never in these.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedTusOptions, UploadMetadata, UploadRecord, WriteUploadInput, WriteUploadResult } from '../../types/index'
import { FST_TUS_CHUNK_TOO_LARGE, FST_TUS_IDLE_TIMEOUT } from '../errors'
import { parseContentLength } from '../headers'
import type { Hooks } from '../hooks'
import { ProgressThrottle } from '../progress'
import type { FileStore } from '../store/index'

export interface ProtocolOptions {
  options: ResolvedTusOptions
  store: FileStore
  hooks: Hooks
}

export type WriteEvents = Pick<WriteUploadInput, 'onProgress' | 'onHandedOver'>

export interface ProposedUpload { length: number | null, metadata: UploadMetadata }

export interface UploadActions {
  /** Runs tus:preCreate; what its listeners return replaces the metadata and adds server metadata. */
  preCreate (request: FastifyRequest, proposal: ProposedUpload): Promise<{ metadata: UploadMetadata, serverMetadata: Record<string, unknown> }>
  /** Runs a store write (a PATCH's, or a creation's with data) with the hooks around it; `id` is null for a creation. */
  write (request: FastifyRequest, id: string | null, run: (events: WriteEvents) => Promise<WriteUploadResult>): Promise<WriteUploadResult>
  /** tus:completed and its log line, for an upload just handed over. */
  completed (request: FastifyRequest, record: UploadRecord): Promise<void>
  /** The request's Content-Length, refused at once when over maxChunkSize. */
  bodyLength (request: FastifyRequest): number | undefined
  /** The log line and tus:created for a record just persisted; the rest of the request's log names the upload. */
  created (request: FastifyRequest, reply: FastifyReply, record: UploadRecord): Promise<void>
  /** DELETE: tus:preAccess and tus:preTerminate may refuse; `allowed` runs, the upload is removed, then tus:terminated. */
  terminate (request: FastifyRequest, id: string, allowed?: () => Promise<void>): Promise<void>
}

export function uploadActions ({ options, store, hooks }: ProtocolOptions): UploadActions {
  const progress = new ProgressThrottle(options.progressInterval)

  async function preCreate (request: FastifyRequest, proposal: ProposedUpload): Promise<{ metadata: UploadMetadata, serverMetadata: Record<string, unknown> }> {
    let { metadata } = proposal
    let serverMetadata: Record<string, unknown> = {}
    try {
      for (const result of await hooks.run('tus:preCreate', request, proposal)) {
        if (result?.metadata !== undefined) metadata = result.metadata
        if (result?.serverMetadata !== undefined) serverMetadata = { ...serverMetadata, ...result.serverMetadata }
      }
    } catch (error) {
      await hooks.failed(request.log, error as Error, null)
      throw error
    }
    return { metadata, serverMetadata }
  }

  async function write (request: FastifyRequest, id: string | null, run: (events: WriteEvents) => Promise<WriteUploadResult>): Promise<WriteUploadResult> {
    const onProgress = hooks.has('tus:progress')
      ? (record: UploadRecord) => { if (progress.due(record)) void hooks.notify('tus:progress', request.log, record.id, record) }
      : undefined
    const onHandedOver = (record: UploadRecord): Promise<void> => completed(request, record)
    let result: WriteUploadResult
    try {
      result = await writeBody(request, options.idleTimeout, () => run({ onProgress, onHandedOver }))
    } catch (error) {
      // Refusals of the protocol (409, 413 ...) are part of resuming; failures of the server are not.
      if (statusOf(error as FastifyError) >= 500) await hooks.failed(request.log, error as Error, id === null ? null : await store.get(id).catch(() => null))
      throw error
    }
    request.log.debug({ offset: result.record.offset, written: result.written }, 'chunk written')
    return result
  }

  async function completed (request: FastifyRequest, record: UploadRecord): Promise<void> {
    request.log.info({ uploadId: record.id, length: record.length, duration: record.duration }, 'upload completed')
    await hooks.notify('tus:completed', request.log, record.id, record)
  }

  function bodyLength (request: FastifyRequest): number | undefined {
    const length = parseContentLength(request.headers['content-length'])
    if (length !== undefined && length > options.maxChunkSize) throw new FST_TUS_CHUNK_TOO_LARGE(options.maxChunkSize)
    return length
  }

  async function created (request: FastifyRequest, reply: FastifyReply, record: UploadRecord): Promise<void> {
    const log = withUploadId(request, reply, record.id)
    log.info({ length: record.length, metadata: record.metadata, concat: record.concat }, 'upload created')
    await hooks.notify('tus:created', log, record.id, { ...record }, request)
  }

  async function terminate (request: FastifyRequest, id: string, allowed?: () => Promise<void>): Promise<void> {
    const record = await store.get(id)
    await hooks.run('tus:preAccess', request, record)
    await hooks.run('tus:preTerminate', request, record)
    await allowed?.()
    const terminated = await store.terminate(record.id)
    request.log.info('upload terminated')
    await hooks.notify('tus:terminated', request.log, record.id, terminated, request)
  }

  return { preCreate, write, completed, bodyLength, created, terminate }
}

// A connection that died without a word would hold the upload's lock for good:
// a body silent for idleTimeout is ended like an aborted one.
async function writeBody<T> (request: FastifyRequest, idleTimeout: number, write: () => Promise<T>): Promise<T> {
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

export function uploadIdOf (request: FastifyRequest): string {
  return (request.params as { '*'?: string })['*'] ?? ''
}

// Every later line of the request's log, Fastify's own included, names the upload.
export function withUploadId (request: FastifyRequest, reply: FastifyReply, uploadId: string): FastifyRequest['log'] {
  const log = request.log.child({ uploadId })
  request.log = log
  reply.log = log
  return log
}

export function statusOf (error: FastifyError): number {
  return error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
}

/**
 * Logs a refusal or failure and says what the client may be told: a refusal
 * (4xx, from the plugin or an application hook) as it is; an unexpected
 * failure's message may name server paths, so it goes to the log only.
 */
export function refusalOf (error: FastifyError, request: FastifyRequest): { statusCode: number, code: string, message: string } {
  const statusCode = statusOf(error)
  if (statusCode >= 500) request.log.error({ err: error }, 'tus request failed')
  else request.log.info({ code: error.code, statusCode }, error.message)
  const told = statusCode < 500 || (typeof error.code === 'string' && error.code.startsWith('FST_'))
  return {
    statusCode,
    code: typeof error.code === 'string' && told ? error.code : (told ? 'FST_TUS_REFUSED' : 'FST_TUS_INTERNAL'),
    message: told ? error.message : 'Internal Server Error'
  }
}

/** Where an upload lives: `base` is the full prefix of the protocol's context. */
export function uploadLocation (request: FastifyRequest, base: string, id: string): string {
  return `${request.protocol}://${request.host}${base}/${id}`
}

/** The full prefix of a context, the enclosing contexts' prefixes included, without a trailing slash. */
export function basePath (prefix: string): string {
  return prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
}

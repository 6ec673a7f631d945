// GET of a finished upload still waiting in completedDir (the `download`
// option): Range and conditional requests through @fastify/send, the name in
// Content-Disposition for any UTF-8 filename, and never while a worker holds it.
import { open } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UploadMetadata, UploadRecord } from '../types/index'
import {
  FST_TUS_DOWNLOAD_PRECONDITION_FAILED,
  FST_TUS_RANGE_NOT_SATISFIABLE,
  FST_TUS_UPLOAD_CLAIMED,
  FST_TUS_UPLOAD_NOT_FOUND,
  FST_TUS_UPLOAD_UNFINISHED
} from './errors'
import type { Hooks } from './hooks'
import { isUploadId } from './store/ids'
import { tryLock } from './store/lock'

export interface DownloadContext {
  completedDir: string
  hooks: Hooks
  /** The upload's record, from wherever it is (throws the store's 404/410). */
  get: (id: string) => Promise<UploadRecord>
}

// What send() may answer besides the file: refusals get the plugin's own errors.
const REFUSALS: Record<number, () => Error> = {
  404: () => new FST_TUS_UPLOAD_NOT_FOUND(),
  412: () => new FST_TUS_DOWNLOAD_PRECONDITION_FAILED()
}

// A type and subtype of tokens, nothing more: a client-chosen `filetype` never adds parameters or header syntax.
const MIME_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i

export function contentTypeOf (metadata: UploadMetadata): string {
  const type = metadata.filetype
  return typeof type === 'string' && MIME_TYPE.test(type) ? type.toLowerCase() : 'application/octet-stream'
}

/** The client's name for the file, without any directory part; the id when it gave none. */
export function fileNameOf (record: UploadRecord): string {
  const given = record.metadata.filename ?? record.metadata.name
  // eslint-disable-next-line no-control-regex
  const name = typeof given === 'string' ? given.replace(/[\u0000-\u001f\u007f]/g, '').split(/[/\\]/).pop()!.trim() : ''
  return name === '' || name === '.' || name === '..' ? record.id : name
}

// RFC 6266 with RFC 8187: an ASCII fallback for old clients, the exact UTF-8 name for the others.
export function contentDisposition (name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/gu, '_') // per character, an emoji included
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`
}

/**
 * Whether a worker holds the finished data file (a waitForFile claim is an
 * exclusive flock on it). Tested with a shared lock, released at once: any
 * number of downloads run side by side, and a download never delays a worker.
 */
async function claimedByWorker (dataPath: string): Promise<boolean> {
  let handle
  try {
    handle = await open(dataPath, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    // Finished but not in completedDir: a partial upload (kept for its final), or delivered to a worker meanwhile.
    throw new FST_TUS_UPLOAD_NOT_FOUND()
  }
  try {
    return !await tryLock(handle.fd, 'shnb')
  } finally {
    await handle.close()
  }
}

export async function sendDownload (request: FastifyRequest, reply: FastifyReply, id: string, context: DownloadContext): Promise<FastifyReply> {
  if (!isUploadId(id)) throw new FST_TUS_UPLOAD_NOT_FOUND()
  const record = await context.get(id)
  await context.hooks.run('tus:preAccess', request, record)
  if (record.finishedAt === null) throw new FST_TUS_UPLOAD_UNFINISHED(record.offset, record.length ?? 'an unknown number of')
  if (await claimedByWorker(path.join(context.completedDir, id))) throw new FST_TUS_UPLOAD_CLAIMED()

  // Loaded at the first download: most servers never serve one, and @fastify/send with its MIME table costs resident memory.
  const { send } = require('@fastify/send') as typeof import('@fastify/send')
  const result = await send(request.raw, `/${id}`, {
    root: context.completedDir,
    index: false,
    extensions: false,
    dotfiles: 'deny',
    cacheControl: false,
    contentType: false,
    acceptRanges: true,
    etag: true,
    lastModified: true
  })
  if (result.type === 'error') {
    if (result.statusCode === 416) {
      reply.header('Content-Range', result.headers['Content-Range'])
      throw new FST_TUS_RANGE_NOT_SATISFIABLE()
    }
    throw (REFUSALS[result.statusCode] ?? (() => result.metadata.error))()
  }
  reply.code(result.statusCode).headers(result.headers)
  if (result.statusCode !== 304) reply.header('Content-Type', contentTypeOf(record.metadata))
  // Always an attachment, never rendered: a client-chosen type (text/html, image/svg+xml) cannot run on this origin.
  return await reply
    .header('Content-Disposition', contentDisposition(fileNameOf(record)))
    .header('X-Content-Type-Options', 'nosniff')
    .header('Content-Security-Policy', "default-src 'none'; sandbox")
    .header('Cache-Control', 'private, no-cache')
    .send(result.stream)
}

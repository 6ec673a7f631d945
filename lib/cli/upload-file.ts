// One file of `fastify-tus upload`, through tus-js-client: resumed from the
// URL remembered for its fingerprint when there is one, remembered as soon as
// the server created it, forgotten once it arrived.
import { createReadStream, promises as fs, type Stats } from 'node:fs'
import path from 'node:path'
import { Upload, type DetailedError, type HttpRequest, type HttpResponse, type HttpStack, type UploadOptions as TusOptions } from 'tus-js-client'
import { ChecksumHttpStack } from './checksum-stack'
import { fileTypeOf } from './file-type'
import type { Progress } from './progress-bars'
import { describeFailure } from './upload-errors'
import type { UploadOptions } from './upload-flags'
import type { UploadStore } from './upload-store'

export interface Target {
  path: string
  /** How the result line names it. */
  label: string
  /** A temporary file: nothing to resume on another run. */
  temporary: boolean
}

export type Outcome =
  | { ok: true, target: Target, url: string, size: number, resumedAt: number, seconds: number }
  | { ok: false, target: Target, message: string }

export interface Context {
  options: UploadOptions & { endpoint: string }
  store: UploadStore
  progress: Progress
}

/** 0.5 s, 1 s, 2 s ... at most 10 s between tries. */
export function retryDelays (retries: number): number[] {
  return Array.from({ length: retries }, (_, attempt) => Math.min(500 * 2 ** attempt, 10_000))
}

// tus-js-client's rule (no answer, 5xx, 409, 423), plus 429 and 460: a
// checksum mismatch means the bytes were damaged on the way, so send them again.
function shouldRetry (error: DetailedError): boolean {
  const status = error.originalResponse?.getStatus() ?? 0
  return status === 0 || status >= 500 || [409, 423, 429, 460].includes(status)
}

/** The same file, unchanged, to the same server: the key of its remembered upload. */
function fingerprintOf (file: string, stat: Stats, endpoint: string): string {
  return JSON.stringify(['fastify-tus', path.resolve(file), stat.size, stat.mtimeMs, endpoint])
}

export async function uploadFile (target: Target, context: Context): Promise<Outcome> {
  let stat: Stats
  try {
    stat = await fs.stat(target.path)
  } catch (error) {
    return { ok: false, target, message: `cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` }
  }
  if (!stat.isFile()) return { ok: false, target, message: 'not a regular file' }
  const { options, store } = context
  const fingerprint = target.temporary ? null : fingerprintOf(target.path, stat, options.endpoint)
  const started = Date.now()
  // The server's offset of each upload URL when this run first asked (HEAD): where it resumed.
  const resumed = new Map<string, number>()
  const bar = context.progress.file(path.basename(target.path), stat.size)
  const source = createReadStream(target.path)
  try {
    const upload = await new Promise<Upload>((resolve, reject) => {
      const upload = new Upload(source, {
        ...tusOptions(target, options, fingerprint, store),
        onProgress: (sent, total) => bar.update(sent, total),
        onAfterResponse: (request, response) => { noteStart(resumed, request, response) },
        onSuccess: () => resolve(upload),
        onError: reject
      })
      startUpload(upload, options.resume && fingerprint !== null).catch(reject)
    })
    // Arrived: a later run of the same command uploads it anew.
    if (fingerprint !== null) await store.removeUpload(fingerprint)
    const resumedAt = [...resumed.values()].reduce((sum, offset) => sum + offset, 0)
    return { ok: true, target, url: upload.url ?? '', size: stat.size, resumedAt, seconds: (Date.now() - started) / 1000 }
  } catch (error) {
    return { ok: false, target, message: await describeFailure(error as Error, { endpoint: options.endpoint, headers: options.headers }, options.retries, stat.size) }
  } finally {
    bar.end()
    source.destroy()
  }
}

/** Records where each upload URL started in this run: 0 when this run created it, else the offset of its first HEAD. */
function noteStart (starts: Map<string, number>, request: HttpRequest, response: HttpResponse): void {
  const status = response.getStatus()
  if (request.getMethod() === 'POST' && status === 201) {
    const location = response.getHeader('Location')
    if (location !== undefined) starts.set(new URL(location, request.getURL()).href, 0)
  } else if (request.getMethod() === 'HEAD' && status === 200 && !starts.has(request.getURL())) {
    starts.set(request.getURL(), Number(response.getHeader('Upload-Offset') ?? 0))
  }
}

function tusOptions (target: Target, options: Context['options'], fingerprint: string | null, store: UploadStore): TusOptions {
  const httpStack: HttpStack | undefined = options.checksum === undefined ? undefined : new ChecksumHttpStack(options.checksum)
  return {
    endpoint: options.endpoint,
    chunkSize: options.chunkSize,
    parallelUploads: options.parallel,
    headers: options.headers,
    metadata: { filename: path.basename(target.path), filetype: fileTypeOf(target.path), ...options.metadata },
    retryDelays: retryDelays(options.retries),
    onShouldRetry: shouldRetry,
    fingerprint: async () => fingerprint as string,
    urlStorage: store,
    storeFingerprintForResuming: fingerprint !== null,
    // Removed by uploadFile itself, awaited, before the process may exit.
    removeFingerprintOnSuccess: false,
    ...(httpStack === undefined ? {} : { httpStack })
  }
}

async function startUpload (upload: Upload, resume: boolean): Promise<void> {
  if (resume) {
    const [previous] = await upload.findPreviousUploads()
    if (previous !== undefined) upload.resumeFromPreviousUpload(previous)
  }
  upload.start()
}

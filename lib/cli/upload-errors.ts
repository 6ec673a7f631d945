// Why an upload of `fastify-tus upload` failed, said plainly: refused by the
// server (its status, code and message, and for a 413 the server's
// Tus-Max-Size), or unreachable after the retries.
import { DetailedError } from 'tus-js-client'

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT'])

export interface Server {
  endpoint: string
  headers: Record<string, string>
}

/** The tus server's OPTIONS answer (the discovery request every client may send). */
export async function discover (server: Server): Promise<Headers> {
  const response = await fetch(server.endpoint, { method: 'OPTIONS', headers: { ...server.headers, 'Tus-Resumable': '1.0.0' } })
  await response.arrayBuffer()
  return response.headers
}

/** Fails unless the server offers the checksum extension with `algorithm`; tries as often as uploads do. */
export async function requireChecksum (server: Server, algorithm: string, retryDelays: number[]): Promise<void> {
  let headers: Headers | undefined
  for (let attempt = 0; headers === undefined; attempt++) {
    try {
      headers = await discover(server)
    } catch (error) {
      if (attempt >= retryDelays.length) throw new Error(`could not reach ${server.endpoint} ${afterRetries(retryDelays.length, causeOf(error))}`)
      await new Promise((resolve) => setTimeout(resolve, retryDelays[attempt]))
    }
  }
  const extensions = (headers.get('tus-extension') ?? '').split(',').map((name) => name.trim())
  const algorithms = (headers.get('tus-checksum-algorithm') ?? '').split(',').map((name) => name.trim())
  if (!extensions.includes('checksum') || !algorithms.includes(algorithm)) {
    throw new Error(`--checksum ${algorithm}: ${server.endpoint} does not offer it (Tus-Extension: ${headers.get('tus-extension') ?? 'none'}; Tus-Checksum-Algorithm: ${headers.get('tus-checksum-algorithm') ?? 'none'})`)
  }
}

function afterRetries (retries: number, why: string): string {
  return `after ${retries} ${retries === 1 ? 'retry' : 'retries'} (${why})`
}

/** fetch's own error says only "fetch failed": the reason is its cause. */
function causeOf (error: unknown): string {
  const cause = (error as { cause?: { code?: string, message?: string } }).cause
  return cause?.code ?? cause?.message ?? (error as Error).message
}

/** What the server said, from a JSON error body (`code: message`) or the text itself. */
function saidBy (body: string): string {
  try {
    const parsed = JSON.parse(body)
    if (typeof parsed?.message === 'string') return typeof parsed.code === 'string' ? `${parsed.code}: ${parsed.message}` : parsed.message
  } catch {}
  return body.trim().slice(0, 200)
}

export async function describeFailure (error: Error, server: Server, retries: number, size: number): Promise<string> {
  if (!(error instanceof DetailedError) || error.originalRequest === null) return error.message
  const request = error.originalRequest
  const response = error.originalResponse
  if (response === null) {
    const cause = error.causingError as NodeJS.ErrnoException | null
    const why = cause?.code ?? cause?.message ?? error.message
    const tries = afterRetries(retries, why)
    // No connection at all, or one that broke before an answer (a lost network, a server going away).
    return UNREACHABLE.has(cause?.code ?? '') ? `could not reach ${request.getURL()} ${tries}` : `no answer to ${request.getMethod()} ${request.getURL()} ${tries}`
  }
  const status = response.getStatus()
  const said = saidBy(response.getBody())
  let message = `refused by the server: ${request.getMethod()} answered ${status}${said === '' ? '' : ` ${said}`}`
  if (status === 413) message += await maxSizeNote(server, size)
  return message
}

async function maxSizeNote (server: Server, size: number): Promise<string> {
  try {
    const maxSize = (await discover(server)).get('tus-max-size')
    // A 413 may also be a body over the server's chunk limit: the note is for a file over its Tus-Max-Size only.
    return maxSize === null || Number(maxSize) >= size ? '' : ` (too large: the file has ${size} bytes, the server's Tus-Max-Size is ${maxSize})`
  } catch {
    return ''
  }
}

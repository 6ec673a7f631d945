// The one raw HTTP client of the tests, on node:http: one connection per
// request (no agent: aborting or refusing one touches nothing else), the path
// sent verbatim (`%2e%2e` is not folded the way a URL parser would), repeated
// headers, and a body sent whole, chunk by chunk, or written by the caller.
import { request as httpRequest, type ClientRequest, type OutgoingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { TUS, type Response } from './helpers'

export interface RawOptions {
  method: string
  /** Sent as is on the request line. */
  path: string
  /** An array value sends the header once per element. */
  headers?: OutgoingHttpHeaders
  /** A Buffer goes with a Content-Length; an array goes chunk by chunk with Transfer-Encoding: chunked. */
  body?: Buffer | string | Buffer[]
}

export type RawOutcome = { response: Response, error?: undefined } | { error: Error, response?: undefined }

export interface RawRequest {
  /** Resolves once the chunk is handed to the kernel (so it reaches the server even if we die next). */
  write (chunk: Buffer): Promise<void>
  end (chunk?: Buffer | string): void
  /** Kills the connection mid-body, as a crashed client or a dropped network would. */
  abort (): void
  /** The answer, or the socket error when there was none. Never rejects. */
  readonly settled: Promise<RawOutcome>
  readonly request: ClientRequest
}

/** A request whose body the caller writes; chunked unless the headers carry a Content-Length or the body goes in one `end`. */
export function openRequest (origin: string, { method, path, headers }: Omit<RawOptions, 'body'>): RawRequest {
  const { hostname, port } = new URL(origin)
  const request = httpRequest({ agent: false, host: hostname, port, path, method, headers })
  const settled = new Promise<RawOutcome>((resolve) => {
    request.on('response', (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ response: { statusCode: response.statusCode!, headers: response.headers, text, json: () => JSON.parse(text) } })
      })
      response.on('error', (error) => resolve({ error }))
    })
    // Writing the rest of a refused body may hit a closed socket; an answer that came first still counts.
    request.on('error', (error) => resolve({ error }))
  })
  return {
    request,
    settled,
    write: (chunk) => new Promise((resolve, reject) => {
      request.write(chunk, (error) => { if (error) reject(error); else resolve() })
    }),
    end: (chunk) => { request.end(chunk) },
    abort: () => { request.destroy() }
  }
}

/** A whole request; rejects only when no answer came. */
export async function rawRequest (origin: string, options: RawOptions): Promise<Response> {
  const raw = openRequest(origin, options)
  const { body } = options
  if (Array.isArray(body)) {
    for (const chunk of body) raw.request.write(chunk)
    raw.end()
  } else {
    raw.end(body)
  }
  const outcome = await raw.settled
  if (outcome.error !== undefined) throw outcome.error
  return outcome.response
}

/** A tus request to `url` (Tus-Resumable added) whose body the caller writes; its headers go out at once. */
export function streamRequest (url: string, method: string, headers: Record<string, string>): RawRequest {
  const target = new URL(url)
  const raw = openRequest(target.origin, { method, path: target.pathname, headers: { ...TUS, ...headers } })
  raw.request.flushHeaders()
  return raw
}

/**
 * A whole request through streamRequest, with the body written in pieces, `pause`
 * ms apart to play a slow client; write errors after an early answer are ignored.
 */
export async function rawSend (url: string, method: string, headers: Record<string, string>, body: Buffer, piece = 64 * 1024, pause = 0): Promise<RawOutcome> {
  const raw = streamRequest(url, method, headers)
  const writing = (async () => {
    for (let start = 0; start < body.length; start += piece) {
      if (start > 0 && pause > 0) await sleep(pause)
      await raw.write(body.subarray(start, start + piece))
    }
    raw.end()
  })()
  // Once answered, a refused body may fail to send; that is the server's right.
  writing.catch(() => {})
  return await raw.settled
}

// Upload-Checksum for every chunk that `fastify-tus upload --checksum` sends.
// tus-js-client computes no checksums, and its onBeforeRequest hook sees a
// request without its body. Its HTTP stack does see the body, so this stack
// wraps the default one and hashes exactly the body it is about to send:
// for a file (the node build sends each chunk as an fs.ReadStream over
// [start, end] of the file) it reads that same range first, then lets the
// stream send it. A file changed between the two reads is refused by the
// server (460) rather than stored wrong.
import { createHash } from 'node:crypto'
import { createReadStream, ReadStream } from 'node:fs'
import { DefaultHttpStack, type HttpRequest, type HttpResponse, type HttpStack } from 'tus-js-client'
import type { ChecksumAlgorithm } from './upload-flags'

export class ChecksumHttpStack implements HttpStack {
  private readonly inner = new DefaultHttpStack({})

  constructor (private readonly algorithm: ChecksumAlgorithm) {}

  createRequest (method: string, url: string): HttpRequest {
    return new ChecksumRequest(this.inner.createRequest(method, url), this.algorithm)
  }

  getName (): string {
    return `ChecksumHttpStack(${this.inner.getName()})`
  }
}

class ChecksumRequest implements HttpRequest {
  constructor (private readonly inner: HttpRequest, private readonly algorithm: ChecksumAlgorithm) {}

  getMethod (): string { return this.inner.getMethod() }
  getURL (): string { return this.inner.getURL() }
  setHeader (header: string, value: string): void { this.inner.setHeader(header, value) }
  getHeader (header: string): string | undefined { return this.inner.getHeader(header) }
  setProgressHandler (handler: (bytesSent: number) => void): void { this.inner.setProgressHandler(handler) }
  abort (): Promise<void> { return this.inner.abort() }
  getUnderlyingObject (): unknown { return this.inner.getUnderlyingObject() }

  async send (body: unknown): Promise<HttpResponse> {
    if (body !== null && body !== undefined) {
      this.inner.setHeader('Upload-Checksum', `${this.algorithm} ${await digestOf(body, this.algorithm)}`)
    }
    return await this.inner.send(body)
  }
}

/** The base64 digest of the bytes `body` will send. */
async function digestOf (body: unknown, algorithm: ChecksumAlgorithm): Promise<string> {
  const hash = createHash(algorithm)
  if (body instanceof Uint8Array) return hash.update(body).digest('base64')
  // fs.ReadStream keeps its start and end options (end inclusive); @types/node leaves them out.
  const range = body as ReadStream & { start?: number, end?: number, size?: number }
  if (!(body instanceof ReadStream) || typeof range.path !== 'string' || range.start === undefined || range.end === undefined || !Number.isFinite(range.end)) {
    throw new Error('--checksum: cannot tell which bytes this request body holds')
  }
  let hashed = 0
  for await (const chunk of createReadStream(range.path, { start: range.start, end: range.end })) {
    hash.update(chunk as Buffer)
    hashed += (chunk as Buffer).length
  }
  if (range.size !== undefined && hashed !== range.size) throw new Error(`${range.path} changed while it was being uploaded`)
  return hash.digest('base64')
}

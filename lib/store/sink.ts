// The write end of a PATCH: request chunks go to the data file at increasing
// positions, batched by writev while a write is in flight, with back-pressure
// from the Writable machinery. Counts only bytes the kernel accepted.
import { writev } from 'node:fs'
import { Writable } from 'node:stream'
import type { ChecksumVerifier } from './checksum'

export class UploadSink extends Writable {
  /** Bytes written to the file so far. */
  written = 0
  private inflight: Promise<void> | undefined

  constructor (
    private readonly fd: number,
    private readonly start: number,
    private readonly limit: number,
    private readonly overLimit: () => Error,
    private readonly onWritten: (written: number) => void,
    private readonly verifier?: ChecksumVerifier
  ) {
    super({ highWaterMark: 1024 * 1024 })
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeBuffers([chunk], chunk.length, callback)
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const buffers = chunks.map((entry) => entry.chunk)
    this.writeBuffers(buffers, buffers.reduce((sum, buffer) => sum + buffer.length, 0), callback)
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    // Never report destroyed while a write may still land: the caller records what was written.
    this.idle().then(() => callback(error), callback)
  }

  /** Resolves once no write is in flight. */
  idle (): Promise<void> {
    return this.inflight ?? Promise.resolve()
  }

  private writeBuffers (buffers: Buffer[], size: number, callback: (error?: Error | null) => void): void {
    let excess: Error | null = null
    const room = this.limit - this.written
    if (size > room) {
      excess = this.overLimit()
      buffers = truncate(buffers, room)
      size = room
    }
    if (size === 0) {
      callback(excess)
      return
    }
    // Hashed as it goes to disk: the digest covers exactly the bytes written.
    this.verifier?.update(buffers)
    this.inflight = new Promise((resolve) => {
      this.writeAll(buffers, (error) => {
        this.inflight = undefined
        resolve()
        if (error === null) this.onWritten(this.written)
        callback(error ?? excess)
      })
    })
  }

  // writev may stop short (a full disk, a signal); the rest is retried until it errors.
  private writeAll (buffers: Buffer[], callback: (error: Error | null) => void): void {
    writev(this.fd, buffers, this.start + this.written, (error, bytes) => {
      if (error) {
        callback(error)
        return
      }
      if (bytes === 0) {
        callback(Object.assign(new Error('the file accepted no bytes'), { code: 'EIO' }))
        return
      }
      this.written += bytes
      const rest = skip(buffers, bytes)
      if (rest.length === 0) callback(null)
      else this.writeAll(rest, callback)
    })
  }
}

function truncate (buffers: Buffer[], size: number): Buffer[] {
  const kept: Buffer[] = []
  for (const buffer of buffers) {
    if (size <= 0) break
    kept.push(buffer.length <= size ? buffer : buffer.subarray(0, size))
    size -= buffer.length
  }
  return kept
}

function skip (buffers: Buffer[], bytes: number): Buffer[] {
  let index = 0
  while (index < buffers.length && bytes >= buffers[index].length) bytes -= buffers[index++].length
  const rest = buffers.slice(index)
  if (rest.length > 0 && bytes > 0) rest[0] = rest[0].subarray(bytes)
  return rest
}

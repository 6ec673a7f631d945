// Informational (1xx) responses with headers, written before the final one.
// Node has public calls for 100 and 103 only; both go through the response's
// raw writer, which writes to the socket when this response owns it and queues
// behind the previous response of a pipelined connection otherwise. A 104 goes
// the same way, so that it never lands inside another response's bytes.
import type { ServerResponse } from 'node:http'

type RawWriter = ServerResponse & { _writeRaw?: (data: string, encoding: BufferEncoding) => boolean }

const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Field values are visible ASCII, spaces and tabs: never a line break that would end the head early.
const FIELD_VALUE = /^[\t\x20-\x7e]*$/

/**
 * Writes `HTTP/1.1 <status> <reason>` and the headers now. Returns false, writing
 * nothing, when the final response has started, the connection is gone, or the
 * client speaks HTTP/1.0 (which must never get a 1xx) or another protocol.
 */
export function writeInformational (response: ServerResponse, status: number, reason: string, headers: Record<string, string>): boolean {
  const raw = response as RawWriter
  if (status < 100 || status > 199 || status === 101) throw new RangeError(`${status} is not an informational status`)
  if (response.headersSent || response.writableEnded || response.destroyed || typeof raw._writeRaw !== 'function') return false
  if (response.req.httpVersionMajor !== 1 || response.req.httpVersionMinor < 1) return false
  let head = `HTTP/1.1 ${status} ${reason}\r\n`
  for (const [name, value] of Object.entries(headers)) {
    if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) throw new TypeError(`invalid header for a ${status} response: ${name}`)
    head += `${name}: ${value}\r\n`
  }
  raw._writeRaw(`${head}\r\n`, 'latin1')
  return true
}

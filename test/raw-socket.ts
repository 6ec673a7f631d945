// An HTTP/1.1 client over a bare TCP socket (node:net), for what Node's http
// client hides: every informational response, byte for byte, in order, and a
// request body cut off wherever a test wants.
import net from 'node:net'

export interface RawResponse {
  status: number
  reason: string
  /** Lower-cased names; a repeated header joined with ", ". */
  headers: Record<string, string>
  /** The response head exactly as received, status line to the blank line. */
  head: string
  body: Buffer
  text: string
  json (): any
}

export class RawConnection {
  private buffer = Buffer.alloc(0)
  private waiting: (() => void) | undefined
  private ended = false
  private error: Error | undefined

  private constructor (readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => { this.buffer = Buffer.concat([this.buffer, chunk]); this.wake() })
    socket.on('end', () => { this.ended = true; this.wake() })
    socket.on('close', () => { this.ended = true; this.wake() })
    socket.on('error', (error) => { this.error = error; this.wake() })
  }

  static async open (origin: string): Promise<RawConnection> {
    const { hostname, port } = new URL(origin)
    const socket = net.connect({ host: hostname, port: Number(port) })
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    return new RawConnection(socket)
  }

  /** Writes a request head: the request line and headers (CRLF added), then the blank line. */
  writeHead (requestLine: string, headers: Record<string, string | number>): void {
    const lines = [requestLine, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)]
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  }

  write (data: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (error) => { if (error == null) resolve(); else reject(error) }))
  }

  /** The next response on the connection, informational or final; `head` for the answer to a HEAD request. */
  async next ({ head = false } = {}): Promise<RawResponse> {
    for (;;) {
      const parsed = this.parse(head)
      if (parsed !== undefined) return parsed
      if (this.error !== undefined) throw this.error
      if (this.ended) throw new Error(`connection ended before a whole response; got ${JSON.stringify(this.buffer.toString('latin1'))}`)
      await new Promise<void>((resolve) => { this.waiting = resolve })
    }
  }

  /** Responses until the first final one, informational ones included. */
  async until ({ head = false } = {}): Promise<RawResponse[]> {
    const responses: RawResponse[] = []
    do responses.push(await this.next({ head })); while (responses[responses.length - 1].status < 200)
    return responses
  }

  /** Resolves when the server has closed the connection. */
  async closed (): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => { this.waiting = resolve })
  }

  destroy (): void {
    this.socket.destroy()
  }

  private wake (): void {
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.()
  }

  private parse (isHead: boolean): RawResponse | undefined {
    const end = this.buffer.indexOf('\r\n\r\n')
    if (end === -1) return undefined
    const head = this.buffer.subarray(0, end + 4).toString('latin1')
    const [statusLine, ...lines] = head.slice(0, -4).split('\r\n')
    const match = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(statusLine)
    if (match === null) throw new Error(`not a status line: ${JSON.stringify(statusLine)}`)
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
    }
    const status = Number(match[1])
    const rest = this.buffer.subarray(end + 4)
    const body = status < 200 || status === 204 || status === 304 || isHead ? Buffer.alloc(0) : bodyOf(rest, headers)
    if (body === undefined) return undefined
    const consumed = headers['transfer-encoding'] === 'chunked' && body.length > 0 ? chunkedLength(rest) : body.length
    if (consumed === undefined) return undefined
    this.buffer = rest.subarray(consumed)
    const text = body.toString('utf8')
    return { status, reason: match[2], headers, head, body, text, json: () => JSON.parse(text) }
  }
}

function bodyOf (rest: Buffer, headers: Record<string, string>): Buffer | undefined {
  if (headers['transfer-encoding'] === 'chunked') {
    const length = chunkedLength(rest)
    if (length === undefined) return undefined
    const chunks: Buffer[] = []
    let at = 0
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at)
      const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16)
      if (size === 0) return Buffer.concat(chunks)
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
    }
  }
  const length = Number(headers['content-length'] ?? 0)
  return rest.length >= length ? rest.subarray(0, length) : undefined
}

// Bytes of a whole chunked body at the start of `rest`, or undefined while it is incomplete.
function chunkedLength (rest: Buffer): number | undefined {
  let at = 0
  for (;;) {
    const lineEnd = rest.indexOf('\r\n', at)
    if (lineEnd === -1) return undefined
    const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16)
    const next = lineEnd + 2 + size + 2
    if (rest.length < next) return undefined
    if (size === 0) return next
    at = next
  }
}

/** One request on a fresh connection, answered with every response up to the final one; the connection is closed after. */
export async function exchange (origin: string, requestLine: string, headers: Record<string, string | number>, body?: Buffer | string): Promise<RawResponse[]> {
  const connection = await RawConnection.open(origin)
  try {
    connection.writeHead(requestLine, { host: new URL(origin).host, ...headers })
    if (body !== undefined) await connection.write(body)
    return await connection.until({ head: requestLine.startsWith('HEAD ') })
  } finally {
    connection.destroy()
  }
}

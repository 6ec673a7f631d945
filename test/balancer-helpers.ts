// A TCP load balancer on loopback for multi-node tests: it sends each new
// connection to the node it currently routes to, and can strand the open ones,
// cutting them on the client's side only: the node keeps a silent, open socket,
// which is how a dead network path looks to it until its timeouts fire.
import net from 'node:net'

interface Teardown { teardown (fn: () => unknown): void }

interface Pair { client: net.Socket, upstream: net.Socket, stranded: boolean, held: boolean }

export interface Balancer {
  /**
   * Once a PATCH has sent `bytes` through the balancer, forwards nothing more, routes new
   * connections to `port`, waits for `before` (say, until the node has written what it got), then
   * strands the open connections: the node has part of the body and a silent socket.
   */
  strandPatchAfter (bytes: number, port: number, before?: () => Promise<unknown>): Promise<number>
  /** http://127.0.0.1:PORT: the address clients use. */
  readonly origin: string
  /** New connections go to this port from now on. */
  route (port: number): void
  /** Cuts every open connection on the client's side, leaving the node's side open and silent; returns how many. */
  strand (): number
  /** Connections made so far, per node port. */
  readonly connections: Map<number, number>
}

export async function startBalancer (t: Teardown, port: number): Promise<Balancer> {
  let target = port
  const pairs = new Set<Pair>()
  let trigger: { bytes: number, port: number, before: () => Promise<unknown>, fired: (count: number) => void } | undefined

  const connections = new Map<number, number>()
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1')
    connections.set(target, (connections.get(target) ?? 0) + 1)
    const pair: Pair = { client, upstream, stranded: false, held: false }
    pairs.add(pair)
    // Client to node by hand, so that a trigger can strand before a byte more goes on.
    let patchBytes = -1
    client.on('data', (chunk: Buffer) => {
      if (pair.stranded || pair.held) return
      if (chunk.subarray(0, 6).toString('latin1') === 'PATCH ') patchBytes = 0
      if (patchBytes >= 0) patchBytes += chunk.length
      if (trigger !== undefined && patchBytes >= trigger.bytes) {
        const { port, before, fired } = trigger
        trigger = undefined
        target = port
        for (const open of pairs) open.held = true // what is open now forwards nothing more
        void before().catch(() => {}).then(() => fired(strand()))
        return
      }
      if (!upstream.write(chunk)) {
        client.pause()
        upstream.once('drain', () => client.resume())
      }
    })
    client.on('end', () => { if (!pair.stranded) upstream.end() })
    upstream.pipe(client)
    const close = (): void => {
      pairs.delete(pair)
      if (pair.stranded) return
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  })
  const stranded: net.Socket[] = []
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of stranded) socket.destroy()
    for (const pair of pairs) { pair.client.destroy(); pair.upstream.destroy() }
    await new Promise((resolve) => server.close(resolve))
  })
  function strand (): number {
    let count = 0
    for (const pair of [...pairs]) {
      pair.stranded = true
      pair.upstream.unpipe(pair.client)
      pair.upstream.pause() // reads nothing more: what the node sends goes nowhere, as on a dead path
      pair.client.destroy()
      stranded.push(pair.upstream)
      pairs.delete(pair)
      count++
    }
    return count
  }
  const { port: own } = server.address() as net.AddressInfo
  return {
    origin: `http://127.0.0.1:${own}`,
    connections,
    route: (port) => { target = port },
    strand,
    strandPatchAfter: (bytes, port, before = async () => {}) => new Promise((resolve) => { trigger = { bytes, port, before, fired: resolve } })
  }
}

// What a client sees when it reconnects to another node while its old request
// is still open on the first: run on two processes sharing one directory, and on
// two GlusterFS mounts. Each scenario takes the two nodes and adds to a tally
// that the test prints.
import { randomBytes } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Test } from 'tap'
import * as tus from 'tus-js-client'
import { TUS, create, idOf, send, type Response } from './helpers'
import { startBalancer } from './balancer-helpers'
import { PATCH_HEADERS, assertTusError, sha256, waitFor, waitForBytesOnDisk } from './interop-helpers'
import { rawSend, streamRequest, type RawOutcome } from './raw-client'
import type { TusNode } from './node-helpers'

const KiB = 1024
const MiB = 1024 * KiB

export interface Tally {
  uploads: number
  /** Requests that went ahead on one node while an older request for the upload was still open on the other. */
  takeovers: number
  /** Requests for an upload made on the other node than the one it was created on. */
  crossed: number
  /** Takeover latencies, ms. */
  latencies: number[]
  /** The uploads finished, with the sha256 of their bytes. */
  finished: Map<string, string>
}

export const newTally = (): Tally => ({ uploads: 0, takeovers: 0, crossed: 0, latencies: [], finished: new Map() })

export function describeTally (tally: Tally): string {
  const sorted = [...tally.latencies].sort((a, b) => a - b)
  const median = sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)]
  return `${tally.uploads} uploads, ${tally.takeovers} takeovers (median ${median} ms, max ${sorted.at(-1) ?? 0} ms), ${tally.crossed} requests crossed nodes`
}

export const patchHeaders = (offset: number, length?: number): Record<string, string> =>
  ({ ...PATCH_HEADERS, 'upload-offset': String(offset), ...(length === undefined ? {} : { 'content-length': String(length) }) })

/** Resolves with the outcome, or fails when it takes longer than `timeout` ms. */
function within (what: string, settled: Promise<RawOutcome>, timeout: number): Promise<RawOutcome> {
  let found: RawOutcome | undefined
  settled.then((outcome) => { found = outcome }, () => {})
  return waitFor(what, async () => found, timeout)
}

/** The old request, once the other node took over: stopped with 409 FST_TUS_SUPERSEDED, or its connection closed. */
function assertSuperseded (t: Test, outcome: RawOutcome, what: string): void {
  if (outcome.response !== undefined) assertTusError(t, outcome.response, 409, 'FST_TUS_SUPERSEDED', what)
  else t.pass(`${what}: cut off (${outcome.error.message})`)
}

/** The finished upload, read through each node's directory: byte-identical to `body`. */
async function assertFinished (t: Test, nodes: TusNode[], id: string, body: Buffer, tally: Tally): Promise<void> {
  for (const node of nodes) {
    const file = path.join(node.completed, id)
    t.equal((await stat(file)).size, body.length, `finished size through ${node.name}`)
    t.equal(sha256(await readFile(file)), sha256(body), `finished bytes through ${node.name}`)
  }
  tally.finished.set(id, sha256(body))
}

/**
 * A client's PATCH on A stops sending without closing (a dead path A has not
 * noticed); the client comes back through B at once, with HEAD then PATCH, with
 * a PATCH at the offset it knows it sent, or with DELETE.
 */
export async function stalledOnA (t: Test, A: TusNode, B: TusNode, how: 'head' | 'patch' | 'delete', tally: Tally, timeout: number): Promise<void> {
  const body = randomBytes(1 * MiB + 11)
  const part = 192 * KiB
  const url = await create(A.endpoint, { 'upload-length': String(body.length) })
  const id = idOf(url)
  const onB = `${B.endpoint}/${id}`
  tally.uploads++
  const stalled = streamRequest(url, 'PATCH', patchHeaders(0, body.length))
  await stalled.write(body.subarray(0, part))
  await waitForBytesOnDisk(path.join(B.uploads, id), 0, body.subarray(0, part), 2 * timeout)

  const started = Date.now()
  let answer: Response
  if (how === 'head') {
    answer = await send(onB, 'HEAD', TUS)
    t.equal(answer.statusCode, 200, 'HEAD on B: 200, not 423')
    t.equal(answer.headers['upload-offset'], String(part), 'with every byte A received, recorded by A as it let go')
  } else if (how === 'patch') {
    const outcome = await within('the PATCH on B', rawSend(onB, 'PATCH', patchHeaders(part, body.length - part), body.subarray(part)), timeout)
    answer = outcome.response!
    t.equal(answer?.statusCode, 204, 'PATCH on B at the offset the client sent: 204, not 423 or 409')
    t.equal(answer?.headers['upload-offset'], String(body.length))
  } else {
    answer = await send(onB, 'DELETE', TUS)
    t.equal(answer.statusCode, 204, 'DELETE on B: 204, not 423')
  }
  const latency = Date.now() - started
  tally.latencies.push(latency)
  tally.takeovers++
  tally.crossed++
  t.ok(latency < timeout, `B answered within the takeover timeout (${latency} ms)`)
  assertSuperseded(t, await within('the end of the stalled request on A', stalled.settled, timeout), 'the stalled request on A')

  if (how === 'delete') {
    t.equal((await send(url, 'HEAD', TUS)).statusCode, 404, 'the upload is gone, for A too')
    return
  }
  if (how === 'head') {
    const rest = await rawSend(onB, 'PATCH', patchHeaders(part, body.length - part), body.subarray(part))
    t.equal(rest.response?.statusCode, 204, 'then the rest on B: 204')
    tally.crossed++
  }
  await assertFinished(t, [A, B], id, body, tally)
}

/**
 * tus-js-client through a load balancer: mid-PATCH the balancer strands the
 * connection (A keeps its end open) and routes new ones to B; the client retries
 * (HEAD, then PATCH) on B and finishes without a 423 or a 409. `timeout`: for A
 * to start streaming the body into the upload.
 */
export async function tusClientMovesToB (t: Test, A: TusNode, B: TusNode, tally: Tally, timeout = 10_000): Promise<void> {
  const balancer = await startBalancer(t, A.port)
  const source = randomBytes(4 * MiB + 3)
  const statuses: string[] = []
  let stranded = -1
  let movedAt = 0
  let id = ''
  // Cut only once A streams the body into the upload (holding its lock), as a path that dies mid-PATCH.
  const streaming = async (): Promise<unknown> => await waitForBytesOnDisk(path.join(A.uploads, id), 0, source.subarray(0, 64 * KiB), timeout)
  void balancer.strandPatchAfter(1 * MiB, B.port, streaming).then((count) => {
    stranded = count
    movedAt = Date.now()
  })
  const url = await new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(source, {
      endpoint: `${balancer.origin}/files`,
      retryDelays: [0, 100, 500, 1000],
      onAfterResponse: (request, response) => {
        statuses.push(`${request.getMethod()} ${response.getStatus()}`)
        if (request.getMethod() === 'POST') id = idOf(String(response.getHeader('Location')))
      },
      onSuccess: () => resolve(upload.url!),
      onError: reject
    })
    upload.start()
  })
  tally.uploads++
  tally.takeovers++
  tally.crossed += statuses.filter((status) => !status.startsWith('POST')).length
  tally.latencies.push(Date.now() - movedAt)
  t.ok(stranded >= 1, `the balancer stranded the PATCH's connection on A (${stranded})`)
  t.comment(`tus-js-client: ${statuses.join(', ')}`)
  t.notOk(statuses.some((status) => / (409|423)$/.test(status)), 'no 409 and no 423 along the way')
  t.ok(statuses.includes('HEAD 200') && statuses.at(-1) === 'PATCH 204', 'it resumed with HEAD and PATCH, and finished')
  t.ok((balancer.connections.get(B.port) ?? 0) >= 1, 'through B')
  await assertFinished(t, [A, B], idOf(url), source, tally)
}

/**
 * Both nodes PATCH the same upload at the same offset, each streaming a body of
 * its own: at most one succeeds, the recorded bytes are one body's, and the
 * upload finishes with that body's rest.
 */
export async function racingPatches (t: Test, A: TusNode, B: TusNode, rounds: number, tally: Tally): Promise<void> {
  const answers = new Map<string, number>()
  for (let round = 0; round < rounds; round++) {
    const length = 256 * KiB
    const bodies = [randomBytes(length), randomBytes(length)]
    const nodes = round % 2 === 0 ? [A, B] : [B, A]
    const url = await create(nodes[0].endpoint, { 'upload-length': String(length) })
    const id = idOf(url)
    tally.uploads++
    tally.crossed++
    // Even rounds: pieces with pauses, so that both bodies stream at once and one request takes over
    // from the other; odd rounds: as fast as they go, so that one may be done before the other comes.
    const slow = round % 2 === 0
    const outcomes = await Promise.all(nodes.map((node, i) => rawSend(`${node.endpoint}/${id}`, 'PATCH', patchHeaders(0, length), bodies[i], slow ? 16 * KiB : length, slow ? 2 : 0)))
    const winners = outcomes.flatMap((outcome, i) => outcome.response?.statusCode === 204 ? [i] : [])
    t.ok(winners.length <= 1, `round ${round}: never both succeed (${outcomes.map((o) => o.response?.statusCode ?? 'cut').join(', ')})`)
    for (const outcome of outcomes) {
      const response = outcome.response
      const key = response === undefined ? 'cut off' : response.statusCode < 400 ? String(response.statusCode) : `${response.statusCode} ${(response.json() as { code?: string }).code}`
      answers.set(key, (answers.get(key) ?? 0) + 1)
    }
    const head = await send(`${nodes[1].endpoint}/${id}`, 'HEAD', TUS)
    t.equal(head.statusCode, 200, `round ${round}: HEAD answers`)
    const offset = Number(head.headers['upload-offset'])
    const where = offset === length ? nodes[1].completed : nodes[1].uploads
    const region = (await readFile(path.join(where, id))).subarray(0, offset)
    const owner = bodies.findIndex((body) => region.equals(body.subarray(0, offset)))
    t.ok(owner >= 0, `round ${round}: the ${offset} recorded bytes are one body's, not a mix`)
    if (owner < 0) continue
    if (offset < length) {
      const rest = await rawSend(`${nodes[1].endpoint}/${id}`, 'PATCH', patchHeaders(offset, length - offset), bodies[owner].subarray(offset))
      t.equal(rest.response?.statusCode, 204, `round ${round}: the rest of that body finishes it`)
    }
    await assertFinished(t, [A, B], id, bodies[owner], tally)
  }
  t.comment(`racing PATCHes answered: ${[...answers].map(([key, count]) => `${count} × ${key}`).join(', ')}`)
  const allowed = /^(204|409 FST_TUS_OFFSET_MISMATCH|409 FST_TUS_SUPERSEDED|cut off)$/
  t.strictSame([...answers.keys()].filter((key) => !allowed.test(key)), [], 'the losers were told 409 (or cut off), never 423')
}

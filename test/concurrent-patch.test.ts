// Several writers for one upload: a request that hangs while its client has
// reconnected, another process holding the upload's lock, and two clients
// racing at the same offset. One writer at a time, and never a corrupt file.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { TUS, create, idOf, patch, send, startServer, type Response } from './helpers'
import {
  PATCH_HEADERS,
  assertCompleted,
  assertTusError,
  headOffset,
  readRange,
  sha256,
  sha256File,
  waitFor,
  waitForBytesOnDisk
} from './interop-helpers'
import { rawSend, streamRequest, type RawOutcome } from './raw-client'

const KiB = 1024
// The server ends a silent body after this long (its default); every bound on time below is well inside it.
const IDLE_TIMEOUT = 60_000

const patchHeaders = (offset: number, length?: number): Record<string, string> => ({
  ...PATCH_HEADERS,
  'upload-offset': String(offset),
  ...(length === undefined ? {} : { 'content-length': String(length) })
})

/** Resolves with the outcome, or rejects when it takes longer than `timeout` ms. */
function within (what: string, settled: Promise<RawOutcome>, timeout: number): Promise<RawOutcome> {
  let found: RawOutcome | undefined
  settled.then((outcome) => { found = outcome }, () => {})
  return waitFor(what, async () => found, timeout)
}

t.test('a hanging PATCH is taken over by the next one for the same upload', async (t) => {
  const LENGTH = 1024 * KiB
  const PART = 128 * KiB

  // The hanging request wrote exactly PART bytes; the next request comes at
  // `offsetOf(recorded)`: the offset HEAD gave, or the one the client knows it sent.
  async function takeover (t: Test, offsetOf: (recorded: number) => number): Promise<void> {
    const server = await startServer(t, { idleTimeout: IDLE_TIMEOUT })
    const source = randomBytes(LENGTH)
    const url = await create(server.endpoint, { 'upload-length': String(LENGTH) })
    const dataPath = path.join(server.directory, idOf(url))

    // The first client sends PART, then neither sends more nor ends: a dead connection the server has not noticed.
    const hanging = streamRequest(url, 'PATCH', patchHeaders(0))
    await hanging.write(source.subarray(0, PART))
    await waitForBytesOnDisk(dataPath, 0, source.subarray(0, PART))

    const recorded = await headOffset(t, url)
    const offset = offsetOf(recorded)
    const started = Date.now()
    const next = await within('the second PATCH\'s answer', rawSend(url, 'PATCH', patchHeaders(offset, 64 * KiB), source.subarray(offset, offset + 64 * KiB)), IDLE_TIMEOUT)
    const latency = Date.now() - started
    t.comment(`takeover answered in ${latency} ms (second PATCH at offset ${offset}, HEAD said ${recorded})`)
    // The hanging body would hold the lock until the idle timeout: an answer before it is a takeover.
    t.ok(latency < IDLE_TIMEOUT / 2, `the second request is answered long before the idle timeout (${latency} ms)`)

    const first = await within('the end of the hanging request', hanging.settled, IDLE_TIMEOUT)
    if (first.response !== undefined) assertTusError(t, first.response, 409, 'FST_TUS_SUPERSEDED', 'the hanging request')
    else t.pass(`the hanging request was cut off (${first.error.message})`)

    t.ok(next.response !== undefined, 'the second PATCH got an answer')
    const answer = next.response as Response
    const current = await headOffset(t, url)
    if (offset === PART) {
      t.equal(answer.statusCode, 204, 'at the offset the first request reached, the PATCH succeeds')
      t.equal(answer.headers['upload-offset'], String(PART + 64 * KiB))
      t.equal(current, PART + 64 * KiB, 'HEAD agrees')
    } else {
      assertTusError(t, answer, 409, 'FST_TUS_OFFSET_MISMATCH', 'at a stale offset')
      t.equal(current, PART, 'HEAD shows the hanging request\'s bytes, recorded by the takeover')
    }
    t.ok((await readRange(dataPath, 0, current)).equals(source.subarray(0, current)), 'the data up to the offset is what was sent')

    const rest = await patch(url, current, source.subarray(current))
    t.equal(rest.statusCode, 204, 'the client resumes from HEAD and finishes')
    t.equal(rest.headers['upload-offset'], String(LENGTH))
    await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: LENGTH })
  }

  t.test('at the offset HEAD gave (HEAD stops the hanging request, which records its bytes)', (t) => takeover(t, (recorded) => {
    t.equal(recorded, PART, 'HEAD gives every byte the hanging request received')
    return recorded
  }))
  t.test('at the offset the first request reached', (t) => takeover(t, () => PART))
})

t.test('another process holding the upload\'s lock that does not let go: 423 after takeoverTimeout, until it is gone', async (t) => {
  const server = await startServer(t, { takeoverTimeout: 300 })
  const source = randomBytes(256 * KiB)
  const half = source.length / 2
  const url = await create(server.endpoint, { 'upload-length': String(source.length) })
  t.equal((await patch(url, 0, source.subarray(0, half))).statusCode, 204, 'first half written')
  const dataPath = path.join(server.directory, idOf(url))
  const recordBefore = await readFile(`${dataPath}.meta`, 'utf8')
  const dataBefore = await sha256File(dataPath)

  // util-linux flock(1) takes the same kind of lock the store takes, on the data
  // file. -o: the shell does not inherit the lock, so killing the group frees it.
  const holder = spawn('flock', ['-x', '-o', dataPath, '-c', 'echo locked; exec sleep 30'], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(holder, 'exit')
  const killHolder = (): void => { if (holder.exitCode === null && holder.signalCode === null) process.kill(-holder.pid!, 'SIGKILL') }
  t.teardown(killHolder)
  let stdout = ''
  holder.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  await waitFor('flock to hold the lock', async () => stdout.includes('locked') ? true : undefined)

  const started = Date.now()
  const locked = await patch(url, half, source.subarray(half))
  t.comment(`423 answered in ${Date.now() - started} ms`)
  assertTusError(t, locked, 423, 'FST_TUS_UPLOAD_LOCKED', 'PATCH while another process holds the lock')
  t.match(locked.headers['retry-after'], /^[1-9][0-9]*$/, 'with Retry-After in seconds')
  t.ok(Date.now() - started >= 290, 'after the holder had takeoverTimeout to let go')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 423, 'HEAD while the lock is held is refused too: its offset might not be final')
  t.equal(head.headers['retry-after'], '1', 'with Retry-After')
  t.equal(await readFile(`${dataPath}.meta`, 'utf8'), recordBefore, 'record unchanged')
  t.equal(await sha256File(dataPath), dataBefore, 'data unchanged')

  killHolder()
  await exited
  const done = await patch(url, half, source.subarray(half))
  t.equal(done.statusCode, 204, 'once the other process is gone, the PATCH succeeds')
  t.equal(done.headers['upload-offset'], String(source.length))
  t.equal(done.headers['tus-resumable'], TUS['tus-resumable'])
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
})

t.test('two clients racing at the same offsets never corrupt the upload', async (t) => {
  const LENGTH = 2048 * KiB
  const CHUNK = 256 * KiB
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': String(LENGTH) })
  const id = idOf(url)
  // Different bytes per client, so the file shows who wrote each range.
  const sources = [randomBytes(LENGTH), randomBytes(LENGTH)]
  const expected = Buffer.alloc(LENGTH)
  const dataPathAt = async (): Promise<string> => {
    const inProgress = path.join(server.directory, id)
    return await readFile(`${inProgress}.meta`).then(() => inProgress, () => path.join(server.completedDir, id))
  }
  const tally = { won: 0, lost: 0, cutOff: 0, rounds: 0 }
  // Broken rules, collected so that one assertion reports them all.
  const problems: string[] = []
  const cutOffs = new Set<string>()

  let offset = 0
  while (offset < LENGTH && tally.rounds < 100) {
    tally.rounds++
    // One with Content-Length, one chunked: both framings in the race.
    const slow = tally.rounds % 2 === 1
    const outcomes = await Promise.all(sources.map((source, client) => {
      const body = source.subarray(offset, offset + CHUNK)
      // On odd rounds both clients are slow (a pause between small pieces), so both
      // stream at once and one supersedes the other; on even rounds they are as fast as they go.
      return within('a racing PATCH', rawSend(url, 'PATCH', patchHeaders(offset, client === 0 ? body.length : undefined), body, slow ? 8 * KiB : 64 * KiB, slow ? 2 : 0), IDLE_TIMEOUT)
    }))
    const next = await headOffset(t, url)
    const region = await readRange(await dataPathAt(), offset, next - offset)
    const writers = sources.map((source) => region.equals(source.subarray(offset, next)))

    const winners = outcomes.flatMap((outcome, client) => outcome.response?.statusCode === 204 ? [client] : [])
    if (winners.length > 1) problems.push(`two PATCHes at offset ${offset} both succeeded`)
    for (const [client, outcome] of outcomes.entries()) {
      if (outcome.response === undefined) {
        tally.cutOff++
        cutOffs.add(`${slow ? 'slow' : 'fast'} round: ${outcome.error.message}`)
        continue
      }
      const { statusCode, headers } = outcome.response
      if (statusCode === 204) {
        tally.won++
        if (headers['upload-offset'] !== String(next) || !writers[client]) problems.push(`winner at ${offset}: answered ${String(headers['upload-offset'])}, HEAD ${next}, its bytes on disk: ${String(writers[client])}`)
        continue
      }
      tally.lost++
      const code = (outcome.response.json() as { code?: string }).code
      const allowed = (statusCode === 409 && (code === 'FST_TUS_OFFSET_MISMATCH' || code === 'FST_TUS_SUPERSEDED')) || (statusCode === 423 && code === 'FST_TUS_UPLOAD_LOCKED')
      if (!allowed || headers['tus-resumable'] !== '1.0.0') problems.push(`unexpected answer to a losing PATCH: ${statusCode} ${outcome.response.text}`)
    }
    if (next < offset || next > Math.min(offset + CHUNK, LENGTH)) problems.push(`offset went from ${offset} to ${next}`)
    // Every range comes whole from one client: never interleaved bytes of both.
    if (next > offset && !writers.includes(true)) problems.push(`bytes ${offset}..${next} are from neither client alone`)
    region.copy(expected, offset)
    offset = next
  }
  t.comment(`rounds ${tally.rounds}: ${tally.won} won, ${tally.lost} refused, ${tally.cutOff} cut off (${[...cutOffs].join('; ')})`)
  t.same(problems, [], 'at most one winner per offset, only tus refusals for the others, every range from one client')
  t.equal(offset, LENGTH, 'the racing clients finished the upload')
  await assertCompleted(t, server, { id, sha256: sha256(expected), length: LENGTH })
})

t.test('a release request left by an asker that crashed does not stop a later write', async (t) => {
  const server = await startServer(t)
  const source = randomBytes(256 * KiB)
  const url = await create(server.endpoint, { 'upload-length': String(source.length) })
  const leftover = path.join(server.directory, `.${idOf(url)}.release`)
  await writeFile(leftover, '12345\n')
  // Pieces 40 ms apart: the write lasts several of the holder's 200 ms looks at the request file.
  const outcome = await within('the slow PATCH', rawSend(url, 'PATCH', patchHeaders(0, source.length), source, 16 * KiB, 40), 20_000)
  t.equal(outcome.response?.statusCode, 204, 'the write went through: the request was there before its lock, so it was not for it')
  await unlink(leftover) // the janitor's job, once it is old
  await assertCompleted(t, server, { id: idOf(url), sha256: sha256(source), length: source.length })
})

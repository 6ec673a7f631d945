// The janitor: each case it cleans (zombies, hand-overs cut short, stale,
// expired, orphaned records and data, old completed files), what it must never
// touch (young files, live writes, claimed files), two janitors at once, and
// the schedule that starts on ready and ends on close.
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { link, readFile, readdir, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyTusOptions, JanitorReport, UploadRecord } from '../types/index'
import { TUS, create, idOf, patch, send, startServer, tempDir, type TestServer } from './helpers'
import { waitFor, waitForBytesOnDisk } from './interop-helpers'
import { streamRequest } from './raw-client'
import { DAY, HOUR, backDate, editRecord, encodeMetadata, finishUpload, isoAgo, readRecordAt, trackIntervals } from './lifecycle-helpers'

type ReportKey = Exclude<keyof JanitorReport, 'errors'>
const KEYS: ReportKey[] = ['finalized', 'stale', 'expired', 'orphanedMeta', 'orphanedData', 'oldCompleted']

interface Observed { completed: string[], preFinish: UploadRecord[] }

/** A server whose janitor never runs by itself, and what its hooks saw. */
async function janitorServer (t: Test, options: Partial<FastifyTusOptions> = {}): Promise<TestServer & Observed> {
  const observed: Observed = { completed: [], preFinish: [] }
  const server = await startServer(t, {
    janitor: false,
    hooks: {
      'tus:completed': (upload) => { observed.completed.push(upload.id) },
      'tus:preFinish': (upload) => { observed.preFinish.push(upload) }
    },
    ...options
  })
  return Object.assign(server, observed)
}

/** Asserts a report: the listed ids under their keys (any order), nothing anywhere else, no errors. */
function assertReport (t: Test, report: JanitorReport, expected: Partial<Record<ReportKey, string[]>>): void {
  for (const key of KEYS) t.strictSame([...report[key]].sort(), [...expected[key] ?? []].sort(), `report.${key}`)
  t.strictSame(report.errors.map(({ id, error }) => `${id}: ${error.message}`), [], 'report.errors')
}

// ------------------------------------------------------------------ making each case on disk

/** An upload whose last byte is durable and recorded but that was never handed over (a crash in between). */
async function zombie (server: TestServer, body = 'zombie bytes'): Promise<string> {
  const id = idOf(await create(server.endpoint, { 'upload-length': String(body.length), 'upload-metadata': encodeMetadata({ filename: 'z.txt' }) }))
  await writeFile(path.join(server.directory, id), body)
  await editRecord(server.directory, id, { offset: body.length })
  return id
}

/**
 * A hand-over cut short by a crash, at each of its steps: the data linked into
 * completedDir; then the in-progress record saying finished (the commit); then
 * the finished record published in completedDir; then, published and already
 * claimed and released by a worker, only the in-progress names left behind.
 */
type Step = 'linked' | 'committed' | 'published' | 'delivered'
async function cutShort (server: TestServer, step: Step): Promise<string> {
  const id = await zombie(server, 'half handed over')
  await link(path.join(server.directory, id), path.join(server.completedDir, id))
  if (step === 'linked') return id
  const record = await readRecordAt(server.directory, id)
  const finishedAt = Date.now() - 1000
  const finished = { ...record, finishedAt: new Date(finishedAt).toISOString(), duration: finishedAt - Date.parse(record.createdAt), expiresAt: null }
  await writeFile(path.join(server.directory, `${id}.meta`), JSON.stringify(finished))
  if (step === 'committed') return id
  await writeFile(path.join(server.completedDir, `${id}.meta`), JSON.stringify(finished))
  if (step === 'published') return id
  await unlink(path.join(server.completedDir, `${id}.meta`))
  await unlink(path.join(server.completedDir, id))
  return id
}

/** An unfinished upload with some bytes, its last write `ago` ms back. */
async function idle (server: TestServer, ago: number): Promise<string> {
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const written = await patch(url, 0, 'abc')
  if (written.statusCode !== 204) throw new Error(`PATCH failed: ${written.statusCode} ${written.text}`)
  await editRecord(server.directory, idOf(url), { lastWrite: isoAgo(ago) })
  return idOf(url)
}

async function expiring (server: TestServer, inMs: number): Promise<string> {
  const url = await create(server.endpoint, { 'upload-length': '10' })
  await editRecord(server.directory, idOf(url), { expiresAt: new Date(Date.now() + inMs).toISOString() })
  return idOf(url)
}

/** A record without data, its mtime `ago` ms back. */
async function orphanRecord (dir: string, ago: number): Promise<string> {
  const id = randomUUID()
  const now = new Date().toISOString()
  const record: UploadRecord = {
    id, metadata: {}, serverMetadata: {}, length: 5, offset: 5, createdAt: now, lastWrite: now,
    finishedAt: now, duration: 1, expiresAt: null, concat: null
  }
  const file = path.join(dir, `${id}.meta`)
  await writeFile(file, JSON.stringify(record))
  await backDate(file, ago)
  return id
}

/** Data without a record, its mtime `ago` ms back. */
async function orphanData (dir: string, ago: number): Promise<string> {
  const id = randomUUID()
  await writeFile(path.join(dir, id), 'no record')
  await backDate(path.join(dir, id), ago)
  return id
}

/** A finished upload in completedDir, finished `ago` ms back. */
async function completedAgo (server: TestServer, ago: number): Promise<string> {
  const id = await finishUpload(server.endpoint, Buffer.from('done'))
  await editRecord(server.completedDir, id, { finishedAt: isoAgo(ago) })
  return id
}

const present = (dir: string, id: string): { data: boolean, record: boolean } =>
  ({ data: existsSync(path.join(dir, id)), record: existsSync(path.join(dir, `${id}.meta`)) })

// ------------------------------------------------------------------ tests

t.test('a zombie (offset == length, never handed over) is finalized: tus:preFinish, hand-over, tus:completed once', async (t) => {
  const server = await janitorServer(t)
  const id = await zombie(server)
  t.equal(server.completed.length, 0, 'no hook ran before the janitor')

  assertReport(t, await server.app.tus.janitor.run(), { finalized: [id] })
  t.strictSame(present(server.completedDir, id), { data: true, record: true }, 'data and record in completedDir')
  t.strictSame(await readdir(server.directory), [], 'nothing left in the uploads directory')
  t.equal(await readFile(path.join(server.completedDir, id), 'utf8'), 'zombie bytes', 'the bytes, untouched')
  const record = await readRecordAt(server.completedDir, id)
  t.equal(record.offset, record.length, 'the finished record')
  t.ok(record.finishedAt !== null && record.duration !== null, 'with finishedAt and duration')
  t.equal(server.preFinish.length, 1, 'tus:preFinish ran')
  t.equal(server.preFinish[0].offset, server.preFinish[0].length, 'on the complete upload')
  t.strictSame(server.completed, [id], 'tus:completed once')

  assertReport(t, await server.app.tus.janitor.run(), {})
  t.strictSame(server.completed, [id], 'a second run changes nothing and fires nothing')
  const head = await send(`${server.endpoint}/${id}`, 'HEAD', TUS)
  t.equal(head.statusCode, 200, 'the client sees it finished')
  t.equal(head.headers['upload-offset'], String('zombie bytes'.length))
})

t.test('a hand-over cut short is finished exactly once, never delivered twice', async (t) => {
  const server = await janitorServer(t)
  const linked = await cutShort(server, 'linked')
  const committed = await cutShort(server, 'committed')
  const published = await cutShort(server, 'published')
  const delivered = await cutShort(server, 'delivered')
  const committedAt = (await readRecordAt(server.directory, committed)).finishedAt
  const publishedRecord = await readRecordAt(server.completedDir, published)
  server.preFinish.length = 0

  // Published and delivered uploads were handed over before the crash: only their leftovers go.
  assertReport(t, await server.app.tus.janitor.run(), { finalized: [linked, committed] })
  t.strictSame(await readdir(server.directory), [], 'nothing left in the uploads directory')
  for (const id of [linked, committed, published]) {
    t.strictSame(present(server.completedDir, id), { data: true, record: true }, 'data and record in completedDir')
    t.equal(await readFile(path.join(server.completedDir, id), 'utf8'), 'half handed over', 'the bytes')
    const record = await readRecordAt(server.completedDir, id)
    t.ok(record.finishedAt !== null && record.offset === record.length, 'a finished record')
  }
  t.strictSame(present(server.completedDir, delivered), { data: false, record: false }, 'a delivered upload is not published again')
  t.equal((await readRecordAt(server.completedDir, committed)).finishedAt, committedAt, 'a committed finish keeps its time')
  t.strictSame(await readRecordAt(server.completedDir, published), publishedRecord, 'a published record is left as it was')
  t.strictSame(server.preFinish.map((record) => record.id), [linked], 'tus:preFinish only where the commit never happened')
  t.strictSame([...server.completed].sort(), [linked, committed].sort(), 'tus:completed once for each upload handed over now')

  assertReport(t, await server.app.tus.janitor.run(), {})
  t.equal(server.completed.length, 2, 'and never again')
})

t.test('stale, expired, orphaned and old completed files are deleted; young and live ones are kept', async (t) => {
  const server = await janitorServer(t)
  const { directory, completedDir } = server
  const stale = await idle(server, DAY + HOUR)
  const fresh = await idle(server, DAY - HOUR)
  const expired = await expiring(server, -60_000)
  const notYetExpired = await expiring(server, HOUR)
  const oldOrphanRecord = await orphanRecord(directory, 2 * HOUR)
  const youngOrphanRecord = await orphanRecord(directory, 10 * 60_000)
  const oldOrphanCompletedRecord = await orphanRecord(completedDir, 2 * HOUR) // saved by a claimer that died before releasing
  const oldOrphanData = await orphanData(directory, 2 * HOUR)
  const youngOrphanData = await orphanData(directory, 10 * 60_000)
  const oldOrphanCompletedData = await orphanData(completedDir, 2 * HOUR)
  const youngOrphanCompletedData = await orphanData(completedDir, 10 * 60_000)
  const oldCompleted = await completedAgo(server, 8 * DAY)
  const recentCompleted = await completedAgo(server, 6 * DAY)
  server.completed.length = 0

  assertReport(t, await server.app.tus.janitor.run(), {
    stale: [stale],
    expired: [expired],
    orphanedMeta: [oldOrphanRecord, oldOrphanCompletedRecord],
    orphanedData: [oldOrphanData, oldOrphanCompletedData],
    oldCompleted: [oldCompleted]
  })
  const gone = { data: false, record: false }
  t.strictSame(present(directory, stale), gone, 'stale: deleted')
  t.strictSame(present(directory, expired), gone, 'expired: deleted')
  t.strictSame(present(directory, oldOrphanRecord), gone, 'old orphaned record: deleted')
  t.strictSame(present(completedDir, oldOrphanCompletedRecord), gone, 'old orphaned record in completedDir: deleted')
  t.strictSame(present(directory, oldOrphanData), gone, 'old orphaned data: deleted')
  t.strictSame(present(completedDir, oldOrphanCompletedData), gone, 'old orphaned data in completedDir: deleted')
  t.strictSame(present(completedDir, oldCompleted), gone, 'old completed: deleted')

  const both = { data: true, record: true }
  t.strictSame(present(directory, fresh), both, 'an upload written within staleUploadAge: kept')
  t.strictSame(present(directory, notYetExpired), both, 'an upload not yet expired: kept')
  t.strictSame(present(directory, youngOrphanRecord), { data: false, record: true }, 'a young record without data: kept (it may be mid-hand-over)')
  t.strictSame(present(directory, youngOrphanData), { data: true, record: false }, 'young data without record: kept (creation writes data first)')
  t.strictSame(present(completedDir, youngOrphanCompletedData), { data: true, record: false }, 'young data in completedDir: kept')
  t.strictSame(present(completedDir, recentCompleted), both, 'a completed upload younger than completedFileAge: kept')
  t.strictSame(server.completed, [], 'no tus:completed for deletions')

  assertReport(t, await server.app.tus.janitor.run(), {})
  t.equal((await patch(`${server.endpoint}/${fresh}`, 3, 'defghij')).statusCode, 204, 'the kept upload can be finished')
})

t.test('release requests left by a crashed asker are removed once old; young ones and their uploads are kept', async (t) => {
  const server = await janitorServer(t)
  const upload = await idle(server, HOUR)
  const oldRequest = path.join(server.directory, `.${upload}.release`)
  await writeFile(oldRequest, '1\n')
  await backDate(oldRequest, 2 * HOUR)
  const youngRequest = path.join(server.directory, `.${randomUUID()}.release`)
  await writeFile(youngRequest, '1\n')
  const halfWritten = path.join(server.directory, `.${upload}.release.asker-1.tmp`)
  await writeFile(halfWritten, '')
  await backDate(halfWritten, 2 * HOUR)
  assertReport(t, await server.app.tus.janitor.run(), {})
  t.notOk(existsSync(oldRequest), 'an old request file: deleted')
  t.notOk(existsSync(halfWritten), 'an old half-made one: deleted')
  t.ok(existsSync(youngRequest), 'a young one: kept (its asker may be waiting)')
  t.strictSame(present(server.directory, upload), { data: true, record: true }, 'the upload it named: untouched')
})

t.test('an old completed file claimed right now is kept', async (t) => {
  const server = await janitorServer(t)
  const claimedId = await finishUpload(server.endpoint, Buffer.from('claimed'))
  const file = await server.app.tus.waitForFile({ timeout: 30_000 })
  t.equal(file.id, claimedId)
  const unclaimed = await finishUpload(server.endpoint, Buffer.from('unclaimed'))
  for (const id of [claimedId, unclaimed]) await editRecord(server.completedDir, id, { finishedAt: isoAgo(30 * DAY) })

  assertReport(t, await server.app.tus.janitor.run(), { oldCompleted: [unclaimed] })
  t.strictSame(present(server.completedDir, claimedId), { data: true, record: true }, 'the claimed one is untouched')
  const dest = path.join(await tempDir(t), 'out')
  await file.save(dest)
  t.equal(await readFile(dest, 'utf8'), 'claimed', 'and its claimer can still save it')
  await file.release()
  t.strictSame(await readdir(server.completedDir), [])
})

t.test('an upload being written right now is not touched, however old its record says it is', async (t) => {
  const server = await janitorServer(t)
  const url = await create(server.endpoint, { 'upload-length': String(256 * 1024) })
  const id = idOf(url)
  const body = Buffer.alloc(256 * 1024, 7)
  const raw = streamRequest(url, 'PATCH', { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0', 'content-length': String(body.length) })
  await raw.write(body.subarray(0, 64 * 1024))
  await waitForBytesOnDisk(path.join(server.directory, id), 0, body.subarray(0, 64 * 1024))
  // What the janitor reads says stale and expired; the writer's lock says busy.
  await editRecord(server.directory, id, { lastWrite: isoAgo(3 * DAY), expiresAt: isoAgo(DAY) })

  assertReport(t, await server.app.tus.janitor.run(), {})
  t.strictSame(present(server.directory, id), { data: true, record: true }, 'both files still there')

  raw.end(body.subarray(64 * 1024))
  const outcome = await raw.settled
  t.equal(outcome.response?.statusCode, 204, 'the write finishes')
  t.equal(outcome.response?.headers['upload-offset'], String(body.length))
  t.ok(existsSync(path.join(server.completedDir, id)), 'and the upload is handed over')
  t.strictSame(server.completed, [id])
})

t.test('two janitors on the same directories at once: all the work done, nothing counted twice', async (t) => {
  const a = await janitorServer(t)
  const b = await janitorServer(t, { directory: a.directory, completedDir: a.completedDir })
  const expected: Record<ReportKey, string[]> = { finalized: [], stale: [], expired: [], orphanedMeta: [], orphanedData: [], oldCompleted: [] }
  for (let i = 0; i < 8; i++) {
    expected.finalized.push(await zombie(a))
    expected.stale.push(await idle(a, 2 * DAY))
    expected.expired.push(await expiring(a, -HOUR))
    expected.orphanedMeta.push(await orphanRecord(i % 2 === 0 ? a.directory : a.completedDir, 2 * HOUR))
    expected.orphanedData.push(await orphanData(i % 2 === 0 ? a.directory : a.completedDir, 2 * HOUR))
    expected.oldCompleted.push(await completedAgo(a, 10 * DAY))
  }
  for (let i = 0; i < 4; i++) expected.finalized.push(await cutShort(a, i % 2 === 0 ? 'linked' : 'committed'))
  const leftovers = [await cutShort(a, 'published'), await cutShort(a, 'delivered')]
  a.completed.length = 0

  const [first, second] = await Promise.all([a.app.tus.janitor.run(), b.app.tus.janitor.run()])
  const everyId: string[] = []
  for (const key of KEYS) {
    t.strictSame([...first[key], ...second[key]].sort(), [...expected[key]].sort(), `${key}: together, exactly the work of one pass`)
    everyId.push(...first[key], ...second[key])
  }
  t.equal(new Set(everyId).size, everyId.length, `no id reported twice (${everyId.length} ids)`)
  t.ok(first.finalized.length + first.stale.length > 0 && second.finalized.length + second.stale.length > 0,
    `both did part of the work (${KEYS.map((key) => `${key} ${first[key].length}/${second[key].length}`).join(', ')})`)
  t.strictSame([...first.errors, ...second.errors].map(({ id, error }) => `${id}: ${error.message}`), [], 'no errors')
  t.strictSame([...a.completed, ...b.completed].sort(), [...expected.finalized].sort(), 'tus:completed once per finalized upload, over both apps')
  t.strictSame(await readdir(a.directory), [], 'the uploads directory is empty')
  t.strictSame((await readdir(a.completedDir)).sort(), [...expected.finalized, leftovers[0]].flatMap((id) => [id, `${id}.meta`]).sort(),
    'completedDir holds exactly the finalized uploads and the one published before')
})

t.test('the scheduled janitor runs by itself after ready, unref\'d, and stops on close', async (t) => {
  const PERIOD = 47 // an interval no one else uses, to find ours among the process's timers
  const intervals = trackIntervals(PERIOD)
  t.teardown(intervals.stop)
  const server = await startServer(t, { janitor: { interval: PERIOD } })
  t.equal(intervals.created(), 1, 'one interval scheduled on ready')
  t.strictSame(intervals.live().map((timer) => timer.hasRef()), [false], 'unref\'d: it never keeps the process alive')

  const id = await idle(server, 2 * DAY)
  await waitFor('the scheduled janitor to delete the stale upload', async () =>
    existsSync(path.join(server.directory, id)) || existsSync(path.join(server.directory, `${id}.meta`)) ? undefined : true)
  t.pass('a stale upload disappeared by itself')

  await server.app.close()
  t.strictSame(intervals.live(), [], 'no interval left after close')
  // And indeed nothing sweeps any more.
  const after = await orphanData(server.directory, 2 * HOUR)
  await sleep(PERIOD * 5)
  t.ok(existsSync(path.join(server.directory, after)), 'after close, nothing cleans')
  t.equal(intervals.created(), 1, 'and no new interval was made')
})

t.test('janitor: false schedules nothing, and run() still works', async (t) => {
  const intervals = trackIntervals(15 * 60_000)
  t.teardown(intervals.stop)
  const server = await janitorServer(t)
  const defaults = await startServer(t)
  t.equal(intervals.created(), 1, 'only the app with the default janitor scheduled one (every 15 min)')
  const id = await idle(server, 2 * DAY)
  assertReport(t, await server.app.tus.janitor.run(), { stale: [id] })
  await defaults.app.close()
  t.strictSame(intervals.live(), [], 'cleared on close')
})

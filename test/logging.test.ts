// Logs go through request.log with the upload id, and nothing per chunk at info.
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { TUS, create, idOf, patch, send, startServer } from './helpers'
import { editRecord, logCollector } from './lifecycle-helpers'

const INFO = 30

t.test('every line of a request that names an upload carries its id', async (t) => {
  const { lines, stream } = logCollector()
  const server = await startServer(t, {}, { logger: { level: 'debug', stream } })
  const url = await create(server.endpoint, { 'upload-length': '10', 'upload-metadata': 'filename YS50eHQ=' })
  const id = idOf(url)
  await patch(url, 0, '12345')
  await patch(url, 3, 'xx') // refused: offset mismatch
  await patch(url, 5, '67890')
  await send(url, 'HEAD', TUS)

  const created = lines.find((line) => line.msg === 'upload created')
  t.equal(created?.uploadId, id, 'creation is logged with the new id')
  t.equal(created?.level, INFO)
  const completed = lines.filter((line) => line.msg === 'upload completed')
  t.equal(completed.length, 1, 'completion is logged once')
  t.equal(completed[0].uploadId, id)
  t.equal(completed[0].level, INFO)
  const refused = lines.find((line) => line.code === 'FST_TUS_OFFSET_MISMATCH')
  t.equal(refused?.uploadId, id, 'refusals name the upload')

  // Fastify logs "incoming request" before any hook can know the id; every later line has it.
  const requestIds = new Set(lines.filter((line) => line.uploadId === id).map((line) => line.reqId))
  const later = lines.filter((line) => requestIds.has(line.reqId) && line.msg !== 'incoming request')
  t.ok(later.length >= 10, `${later.length} lines checked`)
  t.ok(later.every((line) => line.uploadId === id), 'no line of those requests lacks the upload id')
})

t.test('nothing at info level per chunk', async (t) => {
  const { lines, stream } = logCollector()
  const server = await startServer(t, {}, { logger: { level: 'info', stream }, disableRequestLogging: true })
  lines.length = 0 // forget "Server listening at"
  const url = await create(server.endpoint, { 'upload-length': '300' })
  for (let offset = 0; offset < 300; offset += 30) {
    t.equal((await patch(url, offset, Buffer.alloc(30, offset))).statusCode, 204)
  }
  t.same(lines.map((line) => line.msg), ['upload created', 'upload completed'], 'ten chunks, two lines')
})

t.test('one info line per upload created, completed, terminated and failed, with id, length, duration and client', async (t) => {
  const { lines, stream } = logCollector()
  const refusal = Object.assign(new Error('virus found'), { statusCode: 422, code: 'E_VIRUS' })
  const server = await startServer(t, {
    hooks: { 'tus:preFinish': async (upload) => { if (upload.metadata.scan !== undefined) throw refusal } }
  }, { logger: { level: 'info', stream }, disableRequestLogging: true })
  lines.length = 0
  const finished = await create(server.endpoint, { 'upload-length': '4' })
  await patch(finished, 0, 'abcd')
  const terminated = await create(server.endpoint, { 'upload-length': '9' })
  await patch(terminated, 0, 'abc')
  await send(terminated, 'DELETE', TUS)
  const failing = await create(server.endpoint, { 'upload-length': '2', 'upload-metadata': 'scan' })
  t.equal((await patch(failing, 0, 'xy')).statusCode, 422)

  const lifecycle = lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('upload '))
  t.same(lifecycle.map((line) => [line.msg, line.uploadId]), [
    ['upload created', idOf(finished)],
    ['upload completed', idOf(finished)],
    ['upload created', idOf(terminated)],
    ['upload terminated', idOf(terminated)],
    ['upload created', idOf(failing)],
    ['upload failed', idOf(failing)]
  ], 'six lines for three uploads, in order')
  t.ok(lifecycle.every((line) => line.level === INFO && line.remoteAddress === '127.0.0.1'), 'each at info, with the client address')
  const [, completed, , removed, , failed] = lifecycle
  t.match(completed, { length: 4, offset: 4, duration: Number })
  t.match(removed, { length: 9, offset: 3, duration: Number })
  t.match(failed, { length: 2, offset: 2, duration: Number, reason: 'E_VIRUS', err: { message: 'virus found' } })
  t.ok(lifecycle.every((line) => line.msg === 'upload created' || (line.duration as number) >= 0), 'durations in ms')
  t.match(lifecycle[0], { length: 4 })
})

t.test('an upload the janitor finishes gets its completed line too', async (t) => {
  const { lines, stream } = logCollector()
  const server = await startServer(t, {}, { logger: { level: 'info', stream }, disableRequestLogging: true })
  const id = idOf(await create(server.endpoint, { 'upload-length': '3' }))
  // Play a crash after the last byte was recorded, before the hand-over.
  await writeFile(path.join(server.directory, id), 'abc')
  await editRecord(server.directory, id, { offset: 3 })
  lines.length = 0
  const report = await server.app.tus.janitor.run()
  t.same(report.finalized, [id])
  const completed = lines.filter((line) => line.msg === 'upload completed')
  t.equal(completed.length, 1)
  t.match(completed[0], { uploadId: id, length: 3, level: INFO })
})

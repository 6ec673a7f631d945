// Logs go through request.log with the upload id, and nothing per chunk at info.
import t from 'tap'
import { TUS, create, idOf, patch, send, startServer } from './helpers'
import { logCollector } from './lifecycle-helpers'

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

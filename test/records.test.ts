// Reading records: any size, any content the server itself could have written,
// and a clear error (never a crash) for one that is not a record.
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { TUS, create, idOf, patch, send, startServer } from './helpers'
import { assertTusError } from './interop-helpers'

const KiB = 1024

t.test('records far bigger than the read buffer come back whole, and smaller ones after them too', async (t) => {
  const server = await startServer(t, {}, {}, (app) => {
    // A hook may attach any amount of server metadata: 200 KiB, beyond any buffer a record read starts with.
    app.tus.addHook('tus:preCreate', (request) => request.headers['x-big'] === undefined ? undefined : { serverMetadata: { note: 'é'.repeat(100 * KiB) } })
  })
  const big = await create(server.endpoint, { 'upload-length': '10', 'x-big': '1', 'upload-metadata': 'name ' + Buffer.from('ünïcode').toString('base64') })
  const small = await create(server.endpoint, { 'upload-length': '20' })
  const recordPath = (url: string): string => path.join(server.directory, `${idOf(url)}.meta`)
  t.ok((await readFile(recordPath(big))).length > 200 * KiB, 'the big record is over 200 KiB on disk')
  for (let round = 0; round < 2; round++) {
    const head = await send(big, 'HEAD', TUS)
    t.equal(head.statusCode, 200, `round ${round}: HEAD of the big record`)
    t.equal(head.headers['upload-length'], '10')
    t.equal(head.headers['upload-metadata'], 'name ' + Buffer.from('ünïcode').toString('base64'), 'its metadata, multi-byte characters intact')
    const record = await server.app.tus.store.get(idOf(big))
    t.equal(record.serverMetadata.note, 'é'.repeat(100 * KiB), 'its server metadata, every character')
    const after = await send(small, 'HEAD', TUS)
    t.equal(after.statusCode, 200)
    t.equal(after.headers['upload-length'], '20', 'a small record read after the big one is its own, not the tail of the other')
  }
})

t.test('metadata keys are the client\'s own: nothing inherited answers to them', async (t) => {
  const server = await startServer(t)
  const value = Buffer.from('x').toString('base64')
  const url = await create(server.endpoint, { 'upload-length': '1', 'upload-metadata': `__proto__ ${value},constructor ${value},name ${value}` })
  const record = await server.app.tus.store.get(idOf(url))
  t.equal(Object.getPrototypeOf(record.metadata), null, 'metadata has no prototype')
  t.same(Object.keys(record.metadata).sort(), ['__proto__', 'constructor', 'name'])
  t.equal(record.metadata.__proto__, 'x', '__proto__ is a key like any other')
  t.equal(({} as Record<string, unknown>).x, undefined, 'and no prototype was touched')
})

t.test('a record that is not one answers 500 FST_TUS_CORRUPT_RECORD, and the server goes on', async (t) => {
  const server = await startServer(t)
  const healthy = await create(server.endpoint, { 'upload-length': '5' })
  for (const content of ['{"id":', 'null', '42', '"text"', '[]', '']) {
    const url = await create(server.endpoint, { 'upload-length': '5' })
    await writeFile(path.join(server.directory, `${idOf(url)}.meta`), content)
    const what = `record ${JSON.stringify(content)}:`
    t.equal((await send(url, 'HEAD', TUS)).statusCode, 500, `${what} HEAD 500`)
    // A HEAD answer has no body: the code is read off a PATCH's.
    assertTusError(t, await patch(url, 0, 'x'), 500, 'FST_TUS_CORRUPT_RECORD', what)
    t.equal((await send(healthy, 'HEAD', TUS)).statusCode, 200, `after ${JSON.stringify(content)}, another upload is served`)
  }
})

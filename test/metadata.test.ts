// Upload-Metadata: strict parsing at creation (canonical base64, UTF-8 values,
// printable ASCII keys, a size limit), faithful storage, and HEAD giving back
// exactly what was sent. A refused POST leaves nothing on disk.
import path from 'node:path'
import t from 'tap'
import { TUS, create, send, startServer, idOf } from './helpers'
import { assertError, base64, listTree, readRecordFile } from './protocol-helpers'
import { rawRequest } from './raw-client'

t.test('a key without a value is stored as null and given back as sent', async (t) => {
  const server = await startServer(t)
  const header = 'filename cmVzdW1lLnBkZg==,is_confidential'
  const url = await create(server.endpoint, { 'upload-length': '1', 'upload-metadata': header })
  const record = await readRecordFile(server.directory, idOf(url))
  t.same(record.metadata, { filename: 'resume.pdf', is_confidential: null })
  t.equal(record.metadata.is_confidential, null)
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-metadata'], header)
})

t.test('a UTF-8 value is accepted, preserved and given back exactly', async (t) => {
  const server = await startServer(t)
  const name = 'résumé 2026.pdf'
  const header = `filename ${base64(name)},filetype ${base64('application/pdf')}`
  const url = await create(server.endpoint, { 'upload-length': '1', 'upload-metadata': header })
  const record = await readRecordFile(server.directory, idOf(url))
  t.equal(record.metadata.filename, name)
  t.equal(record.metadata.filetype, 'application/pdf')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-metadata'], header)
})

t.test('no Upload-Metadata means no metadata and none on HEAD', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '1' })
  t.same((await readRecordFile(server.directory, idOf(url))).metadata, {})
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-metadata'], undefined)
})

t.test('malformed Upload-Metadata is refused with 400 and nothing is created', async (t) => {
  const server = await startServer(t)
  const root = path.dirname(server.directory)
  const before = await listTree(root)
  const malformed: Array<[string, string]> = [
    ['not base64', 'filename !!!'],
    ['non-canonical base64 (YR== is "a", whose base64 is YQ==)', 'filename YR=='],
    ['missing padding', 'filename YQ'],
    ['base64url alphabet', 'filename -_8='],
    ['a stray character after the padding', 'filename YQ==x'],
    ['empty first pair', ',a Yg=='],
    ['empty pair in the middle', 'a Yg==,,b Yg=='],
    ['empty last pair', 'a Yg==,'],
    ['duplicate keys', 'a YQ==,a Yg=='],
    ['duplicate keys, one without value', 'a YQ==,a'],
    ['non-ASCII key', 'fé YQ=='],
    ['three space-separated parts', 'a YQ== Yg=='],
    ['two spaces between key and value', 'a  YQ=='],
    ['invalid UTF-8 bytes', `a ${base64(Buffer.from([0xff, 0xfe, 0xfd]))}`],
    ['a truncated UTF-8 sequence', `a ${base64(Buffer.from([0x61, 0xc3]))}`]
  ]
  for (const [label, header] of malformed) {
    // node:http sends the header bytes as latin1, so the non-ASCII key arrives as sent.
    const response = await rawRequest(server.origin, { method: 'POST', path: '/files', headers: { ...TUS, 'upload-length': '1', 'upload-metadata': header } })
    assertError(t, response, 400, 'FST_TUS_INVALID_METADATA', label)
    t.equal(response.headers.location, undefined, `${label}: no Location`)
  }
  t.same(await listTree(root), before, 'disk unchanged')
})

t.test('Upload-Metadata larger than maxMetadataSize is refused (default 4096)', async (t) => {
  const server = await startServer(t)
  t.equal(server.app.tus.options.maxMetadataSize, 4096)
  const root = path.dirname(server.directory)
  const before = await listTree(root)
  // A lone key is a valid header whose size in bytes is exactly its length.
  const tooLarge = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1', 'upload-metadata': 'k'.repeat(4097) })
  assertError(t, tooLarge, 400, 'FST_TUS_METADATA_TOO_LARGE')
  t.same(await listTree(root), before, 'nothing created')
  const atLimit = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1', 'upload-metadata': 'k'.repeat(4096) })
  t.equal(atLimit.statusCode, 201, 'exactly 4096 bytes is allowed')
})

t.test('a custom maxMetadataSize is honoured to the byte', async (t) => {
  const server = await startServer(t, { maxMetadataSize: 16 })
  const root = path.dirname(server.directory)
  const before = await listTree(root)
  const over = `name ${base64('0123456789')}` // 21 bytes
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1', 'upload-metadata': over }), 400, 'FST_TUS_METADATA_TOO_LARGE')
  const oneOver = `n ${base64('0123456')},ab` // 17 bytes
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1', 'upload-metadata': oneOver }), 400, 'FST_TUS_METADATA_TOO_LARGE', '17 bytes')
  t.same(await listTree(root), before, 'nothing created')
  const fits = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1', 'upload-metadata': `n ${base64('0123456')},a` }) // 16 bytes
  t.equal(fits.statusCode, 201, '16 bytes is allowed')
})

t.test('keys named like Object.prototype members are plain keys and pollute nothing', async (t) => {
  const server = await startServer(t)
  const header = `__proto__ ${base64('{"polluted":"yes"}')},constructor ${base64('c')},toString ${base64('s')},hasOwnProperty`
  const url = await create(server.endpoint, { 'upload-length': '1', 'upload-metadata': header })
  const record = await readRecordFile(server.directory, idOf(url))
  t.same(Object.keys(record.metadata).sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString'])
  t.ok(Object.hasOwn(record.metadata, '__proto__'), '__proto__ is an own key on disk')
  t.equal(Object.getOwnPropertyDescriptor(record.metadata, '__proto__')?.value, '{"polluted":"yes"}')
  t.equal(record.metadata.constructor, 'c')

  const head = await send(url, 'HEAD', TUS)
  t.equal(head.headers['upload-metadata'], header, 'read back from disk and given back unchanged')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
  t.notOk(Object.hasOwn(Object.prototype, 'polluted'))
})

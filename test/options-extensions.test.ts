// The `extensions` option: OPTIONS advertises exactly what is enabled, bad
// lists fail at register, and a request that needs a disabled extension is
// refused before it changes anything. Also: uploads that never expire.
import path from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import type { FastifyTusOptions, TusExtension } from '../types/index'
import { fastifyTus } from '../lib/plugin'
import { TUS, create, idOf, patch, send, startServer, tempDir } from './helpers'
import { OCTET, assertError, listTree, names, readRecordFile } from './protocol-helpers'

const ALL = 'creation,creation-with-upload,creation-defer-length,termination,checksum,checksum-trailer,expiration,concatenation,concatenation-unfinished'
const SHA1_OF_HELLO = 'sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00='

t.test('OPTIONS advertises every extension by default, in spec order, with the checksum algorithms', async (t) => {
  const server = await startServer(t)
  const response = await send(server.endpoint, 'OPTIONS')
  t.equal(response.statusCode, 204)
  t.equal(response.headers['tus-version'], '1.0.0')
  t.equal(response.headers['tus-extension'], ALL, 'all nine, in the order the spec lists them')
  t.equal(response.headers['tus-checksum-algorithm'], 'sha1,sha256,sha512,md5')
  t.equal(response.headers['tus-max-size'], undefined, 'no Tus-Max-Size without maxSize')
})

t.test('OPTIONS advertises Tus-Max-Size when maxSize is set', async (t) => {
  const server = await startServer(t, { maxSize: 12345 })
  const response = await send(server.endpoint, 'OPTIONS')
  t.equal(response.headers['tus-max-size'], '12345')
})

t.test('OPTIONS advertises only the enabled extensions, in spec order whatever the order given', async (t) => {
  const cases: Array<[TusExtension[], string, boolean]> = [
    [['termination', 'creation'], 'creation,termination', false],
    [['checksum-trailer', 'checksum', 'creation'], 'creation,checksum,checksum-trailer', true],
    [['concatenation-unfinished', 'concatenation'], 'concatenation,concatenation-unfinished', false],
    [['expiration', 'creation-defer-length', 'creation-with-upload', 'creation'], 'creation,creation-with-upload,creation-defer-length,expiration', false],
    [['checksum'], 'checksum', true]
  ]
  for (const [extensions, advertised, checksum] of cases) {
    const server = await startServer(t, { extensions })
    const response = await send(server.endpoint, 'OPTIONS')
    t.equal(response.statusCode, 204)
    t.equal(response.headers['tus-extension'], advertised, `${extensions.join(',')}: Tus-Extension`)
    t.equal(response.headers['tus-checksum-algorithm'], checksum ? 'sha1,sha256,sha512,md5' : undefined,
      `${extensions.join(',')}: Tus-Checksum-Algorithm only with checksum`)
  }
})

t.test('with no extension at all, Tus-Extension is omitted (the spec: MUST be omitted)', async (t) => {
  const server = await startServer(t, { extensions: [] })
  const response = await send(server.endpoint, 'OPTIONS')
  t.equal(response.statusCode, 204)
  t.equal(response.headers['tus-version'], '1.0.0')
  t.notOk('tus-extension' in response.headers, `no Tus-Extension header (got ${JSON.stringify(response.headers['tus-extension'])})`)
  t.notOk('tus-checksum-algorithm' in response.headers)
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '1' }), 400, 'FST_TUS_EXTENSION_DISABLED', 'POST without creation')
  t.strictSame(await names(server.directory), [], 'nothing created')
})

t.test('an invalid extensions option fails at register with FST_TUS_INVALID_OPTION', async (t) => {
  const root = await tempDir(t)
  const base = { directory: path.join(root, 'uploads'), completedDir: path.join(root, 'completed') }
  const invalid: unknown[] = [
    ['creation', 'teleport'],
    ['checksum-trailer'],
    ['creation', 'checksum-trailer'],
    ['concatenation-unfinished'],
    ['creation-with-upload'],
    ['creation-defer-length'],
    'creation',
    { creation: true },
    null,
    [1]
  ]
  for (const extensions of invalid) {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close().catch(() => {}))
    app.register(fastifyTus, { ...base, extensions } as unknown as FastifyTusOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_TUS_INVALID_OPTION', message: /"extensions"/ }, `${JSON.stringify(extensions)} is refused`)
  }
})

t.test('a request that needs a disabled extension: 400 FST_TUS_EXTENSION_DISABLED, nothing changed', async (t) => {
  // creation alone: everything else is off.
  const server = await startServer(t, { extensions: ['creation'] })
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const id = idOf(url)
  t.equal((await patch(url, 0, 'hello')).statusCode, 204, 'a plain PATCH works')
  const before = await listTree(server.directory)

  assertError(t, await send(url, 'DELETE', TUS), 400, 'FST_TUS_EXTENSION_DISABLED', 'DELETE without termination')
  assertError(t, await patch(url, 5, 'hello', { 'upload-checksum': SHA1_OF_HELLO }), 400, 'FST_TUS_EXTENSION_DISABLED', 'Upload-Checksum without checksum')
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '5', 'upload-concat': 'partial' }), 400, 'FST_TUS_EXTENSION_DISABLED', 'Upload-Concat: partial without concatenation')
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-concat': `final;${new URL(url).pathname}` }), 400, 'FST_TUS_EXTENSION_DISABLED', 'Upload-Concat: final without concatenation')
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-defer-length': '1' }), 400, 'FST_TUS_EXTENSION_DISABLED', 'Upload-Defer-Length without creation-defer-length')
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '5', 'content-type': OCTET }, 'hello'), 400, 'FST_TUS_EXTENSION_DISABLED', 'a POST body without creation-with-upload')

  t.strictSame(await listTree(server.directory), before, 'no upload created, none deleted, no byte written')
  t.equal((await readRecordFile(server.directory, id)).offset, 5, 'the offset is unchanged')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 200, 'the upload is still there')
  t.equal(head.headers['upload-offset'], '5')
})

t.test('a trailer checksum without checksum-trailer: 400 FST_TUS_EXTENSION_DISABLED', async (t) => {
  const server = await startServer(t, { extensions: ['creation', 'checksum'] })
  const url = await create(server.endpoint, { 'upload-length': '5' })
  assertError(t, await patch(url, 0, 'hello', { trailer: 'Upload-Checksum' }), 400, 'FST_TUS_EXTENSION_DISABLED')
  t.equal((await readRecordFile(server.directory, idOf(url))).offset, 0, 'nothing counted')
  t.equal((await patch(url, 0, 'hello', { 'upload-checksum': SHA1_OF_HELLO })).statusCode, 204, 'a header checksum is fine')
})

t.test('expiration: false, or extensions without expiration: no Upload-Expires anywhere, expiresAt null', async (t) => {
  const configs: Array<[string, Partial<FastifyTusOptions>]> = [
    ['expiration: false', { expiration: false }],
    ['extensions without expiration', { extensions: ['creation', 'creation-with-upload', 'termination'], expiration: 60_000 }]
  ]
  for (const [label, options] of configs) {
    const server = await startServer(t, options)
    t.equal(server.app.tus.options.expiration, false, `${label}: resolved expiration is false`)
    const discovery = await send(server.endpoint, 'OPTIONS')
    t.notOk(String(discovery.headers['tus-extension']).split(',').includes('expiration'), `${label}: expiration is not advertised`)
    const created = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10' })
    t.equal(created.statusCode, 201)
    t.equal(created.headers['upload-expires'], undefined, `${label}: POST has no Upload-Expires`)
    const url = String(created.headers.location)
    const written = await patch(url, 0, 'hello')
    t.equal(written.statusCode, 204)
    t.equal(written.headers['upload-expires'], undefined, `${label}: PATCH has no Upload-Expires`)
    const head = await send(url, 'HEAD', TUS)
    t.equal(head.headers['upload-expires'], undefined, `${label}: HEAD has no Upload-Expires`)
    const withData = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10', 'content-type': OCTET }, 'abc')
    t.equal(withData.statusCode, 201)
    t.equal(withData.headers['upload-expires'], undefined, `${label}: POST with data has no Upload-Expires`)
    t.equal((await readRecordFile(server.directory, idOf(url))).expiresAt, null, `${label}: record expiresAt is null`)
  }
})

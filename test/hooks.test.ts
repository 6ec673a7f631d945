// The plugin's lifecycle hooks: how they are added, the order they run in, what
// each one sees, how the hooks that may reject stop a request, and that a
// throwing listener of the others is logged and changes nothing.
import { existsSync, readFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import createError from '@fastify/error'
import Fastify, { type FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import type { FastifyTusOptions, TusHookName, UploadRecord } from '../types/index'
import { fastifyTus } from '../lib/plugin'
import { TUS, create, idOf, patch, send, startServer, tempDir, type TestServer } from './helpers'
import { waitFor } from './interop-helpers'
import { decodeMetadata, encodeMetadata, logCollector, startApp } from './lifecycle-helpers'
import { assertError, patchChunked, pathOf } from './protocol-helpers'
import { rawRequest } from './raw-client'

const OCTET = { 'content-type': 'application/offset+octet-stream' }

async function emptyDirs (t: Test, server: TestServer, message: string): Promise<void> {
  t.strictSame(await readdir(server.directory), [], `${message}: nothing in directory`)
  t.strictSame(await readdir(server.completedDir), [], `${message}: nothing in completedDir`)
}

/** The record of an upload, wherever it is right now (read synchronously: listeners must see the moment they run in). */
function recordOnDisk (server: TestServer, id: string): UploadRecord | undefined {
  for (const dir of [server.directory, server.completedDir]) {
    try {
      return JSON.parse(readFileSync(path.join(dir, `${id}.meta`), 'utf8')) as UploadRecord
    } catch {}
  }
  return undefined
}

// ------------------------------------------------------------------ adding hooks

t.test('the hooks option (a function or an array) and addHook run in the order added, one after the other', async (t) => {
  const order: string[] = []
  const server = await startApp(t, {
    hooks: {
      'tus:created': [
        async () => { await sleep(20); order.push('option 1') }, // a slow first listener: the next waits for it
        async () => { order.push('option 2') }
      ],
      'tus:completed': async () => { order.push('option completed') }
    }
  }, (app) => {
    app.tus.addHook('tus:created', async () => { order.push('addHook 1') })
    app.tus.addHook('tus:created', () => { order.push('addHook 2') }) // sync listeners are fine too
    app.tus.addHook('tus:completed', async () => { order.push('addHook completed') })
  })
  const url = await create(server.endpoint, { 'upload-length': '3' })
  t.strictSame(order, ['option 1', 'option 2', 'addHook 1', 'addHook 2'], 'tus:created listeners, in order, before the answer')
  order.length = 0
  t.equal((await patch(url, 0, 'abc')).statusCode, 204)
  t.strictSame(order, ['option completed', 'addHook completed'], 'tus:completed listeners, in order')
})

t.test('addHook after ready throws FST_TUS_HOOK_AFTER_READY', async (t) => {
  const server = await startServer(t)
  t.throws(() => server.app.tus.addHook('tus:created', async () => {}), { code: 'FST_TUS_HOOK_AFTER_READY' })

  // Also between ready() and listen().
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const root = await tempDir(t)
  await app.register(fastifyTus, { directory: path.join(root, 'u'), completedDir: path.join(root, 'c'), underPressure: false })
  app.tus.addHook('tus:created', async () => {}) // before ready: fine
  await app.ready()
  t.throws(() => app.tus.addHook('tus:completed', async () => {}), { code: 'FST_TUS_HOOK_AFTER_READY' })
})

t.test('addHook refuses an unknown hook name or a listener that is not a function with FST_TUS_INVALID_HOOK', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const root = await tempDir(t)
  await app.register(fastifyTus, { directory: path.join(root, 'u'), completedDir: path.join(root, 'c'), underPressure: false })
  const addHook = app.tus.addHook as (name: string, listener: unknown) => void
  for (const name of ['tus:nope', 'onRequest', 'preCreate', '']) {
    t.throws(() => addHook(name, async () => {}), { code: 'FST_TUS_INVALID_HOOK' }, `name ${JSON.stringify(name)}`)
  }
  for (const listener of [undefined, null, 42, 'fn', [async () => {}], {}]) {
    t.throws(() => addHook('tus:created', listener), { code: 'FST_TUS_INVALID_HOOK' }, `listener ${JSON.stringify(listener)}`)
  }
})

t.test('the hooks option refuses unknown names and non-functions with FST_TUS_INVALID_OPTION', async (t) => {
  const root = await tempDir(t)
  const fn = async (): Promise<void> => {}
  const cases: unknown[] = [
    { 'tus:nope': fn },
    { onRequest: fn },
    { 'tus:created': 'fn' },
    { 'tus:created': [fn, 42] },
    { 'tus:created': null },
    [fn],
    'hooks'
  ]
  for (const hooks of cases) {
    const app = Fastify({ logger: false })
    const options = { directory: path.join(root, 'u'), completedDir: path.join(root, 'c'), underPressure: false, hooks } as unknown as FastifyTusOptions
    const error = await app.register(fastifyTus, options).then(() => undefined, (error: NodeJS.ErrnoException) => error)
    await app.close().catch(() => {})
    t.equal(error?.code, 'FST_TUS_INVALID_OPTION', `hooks ${JSON.stringify(hooks)} is refused`)
  }
})

// ------------------------------------------------------------------ tus:preCreate

const Unauthorized = createError('APP_UNAUTHORIZED', 'log in first', 401)
const Forbidden = createError('APP_FORBIDDEN', 'not for you', 403)
const BadName = createError('APP_BAD_NAME', 'a filename is required', 400)

t.test('tus:preCreate refusing (401, 403, 400): that answer, nothing created, tus:failed gets (error, null)', async (t) => {
  const failed: Array<[Error, UploadRecord | null]> = []
  const created: string[] = []
  let refuseWith: Error = new Unauthorized()
  const server = await startServer(t, {
    hooks: {
      'tus:preCreate': () => { throw refuseWith },
      'tus:created': (upload) => { created.push(upload.id) },
      'tus:failed': (error, upload) => { failed.push([error, upload]) }
    }
  })
  for (const [error, status, code] of [[new Unauthorized(), 401, 'APP_UNAUTHORIZED'], [new Forbidden(), 403, 'APP_FORBIDDEN'], [new BadName(), 400, 'APP_BAD_NAME']] as const) {
    refuseWith = error
    failed.length = 0
    const response = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10' })
    assertError(t, response, status, code, `preCreate ${status}`)
    t.equal(response.json().message, error.message, 'the listener\'s message is the answer\'s')
    t.equal(response.headers.location, undefined, 'no Location')
    await emptyDirs(t, server, `after ${status}`)
    t.equal(failed.length, 1, 'tus:failed called once')
    t.equal(failed[0][0], error, 'with the listener\'s error')
    t.equal(failed[0][1], null, 'and no upload')
  }

  // creation-with-upload: the body is never written either.
  refuseWith = new Forbidden()
  const response = await send(server.endpoint, 'POST', { ...TUS, ...OCTET, 'upload-length': '5' }, 'hello')
  assertError(t, response, 403, 'APP_FORBIDDEN', 'preCreate 403 with a body')
  await emptyDirs(t, server, 'after a refused creation with upload')
  t.strictSame(created, [], 'tus:created never ran')

  // A plain Error with a statusCode, as in the README, also sets the answer.
  refuseWith = Object.assign(new Error('log in first'), { statusCode: 401 })
  const plain = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '10' })
  t.equal(plain.statusCode, 401, 'a plain error\'s statusCode')
  t.equal(plain.headers['tus-resumable'], '1.0.0')
  t.equal(plain.json().message, 'log in first')
  t.equal(plain.json().code, 'FST_TUS_REFUSED', 'a refusal without a code of its own gets FST_TUS_REFUSED')
})

t.test('tus:preCreate sees the request and the proposed upload; its serverMetadata is stored and never sent, its metadata replaces the client\'s', async (t) => {
  const seen: Array<{ length: number | null, metadata: Record<string, string | null>, header: unknown }> = []
  const server = await startServer(t, {
    hooks: {
      'tus:preCreate': [
        (request, upload) => {
          seen.push({ length: upload.length, metadata: { ...upload.metadata }, header: request.headers['x-tenant'] })
          return { serverMetadata: { tenant: request.headers['x-tenant'], secret: 's3cr3t' } }
        },
        (_request, upload) => {
          if (upload.metadata.rename === undefined) return undefined
          return { metadata: { filename: 'server-chosen.bin', checked: null }, serverMetadata: { renamed: true } }
        }
      ]
    }
  })
  const kept = await create(server.endpoint, { 'upload-length': '7', 'x-tenant': 'acme', 'upload-metadata': encodeMetadata({ filename: 'a.txt', empty: null }) })
  t.strictSame(seen[0], { length: 7, metadata: { filename: 'a.txt', empty: null }, header: 'acme' }, 'the listener got the request and { length, metadata }')
  const keptRecord = recordOnDisk(server, idOf(kept))!
  t.strictSame(keptRecord.serverMetadata, { tenant: 'acme', secret: 's3cr3t' }, 'serverMetadata is in the record')
  t.strictSame(keptRecord.metadata, { filename: 'a.txt', empty: null }, 'the client\'s metadata is kept')
  const head = await send(kept, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.strictSame(decodeMetadata(head.headers['upload-metadata']), { filename: 'a.txt', empty: null }, 'HEAD sends the client\'s metadata')
  t.notMatch(JSON.stringify(head.headers), /s3cr3t|acme|tenant/, 'and nothing of serverMetadata in any header')

  const replaced = await create(server.endpoint, { 'upload-length': '7', 'x-tenant': 'acme', 'upload-metadata': encodeMetadata({ filename: '../evil', rename: 'yes' }) })
  const replacedRecord = recordOnDisk(server, idOf(replaced))!
  t.strictSame(replacedRecord.metadata, { filename: 'server-chosen.bin', checked: null }, 'the returned metadata replaced the client\'s')
  t.strictSame(replacedRecord.serverMetadata, { tenant: 'acme', secret: 's3cr3t', renamed: true }, 'serverMetadata of both listeners, merged')
  const replacedHead = await send(replaced, 'HEAD', TUS)
  t.strictSame(decodeMetadata(replacedHead.headers['upload-metadata']), { filename: 'server-chosen.bin', checked: null }, 'HEAD shows the new metadata')
  t.notMatch(JSON.stringify(replacedHead.headers), /s3cr3t|renamed/, 'still no serverMetadata')
})

// ------------------------------------------------------------------ tus:created

t.test('tus:created gets the persisted record and the request, before the answer', async (t) => {
  const calls: Array<{ upload: UploadRecord, onDisk: UploadRecord | undefined, method: string, header: unknown }> = []
  let server: TestServer | undefined
  server = await startServer(t, {
    hooks: {
      'tus:created': (upload, request) => {
        calls.push({ upload, onDisk: recordOnDisk(server!, upload.id), method: request.method, header: request.headers['x-trace'] })
      }
    }
  })
  const url = await create(server.endpoint, { 'upload-length': '12', 'x-trace': 't-1', 'upload-metadata': encodeMetadata({ filename: 'x.bin' }) })
  t.equal(calls.length, 1, 'called once, before the 201')
  const [{ upload, onDisk, method, header }] = calls
  t.equal(upload.id, idOf(url), 'for the upload of the Location')
  t.ok(onDisk !== undefined, 'its record was on disk when the listener ran')
  t.strictSame(JSON.parse(JSON.stringify(upload)), onDisk, 'the listener got the persisted record')
  t.equal(upload.length, 12)
  t.equal(upload.offset, 0)
  t.equal(method, 'POST', 'and the creation request')
  t.equal(header, 't-1')
})

// ------------------------------------------------------------------ tus:preAccess

t.test('authentication as in the README: onRequest sets the user, preCreate stores the owner, preAccess refuses other users', async (t) => {
  const users = new WeakMap<FastifyRequest, string>()
  const access: Array<{ method: string, id: string, user: string | undefined }> = []
  const server = await startApp(t, {}, (app) => {
    app.addHook('onRequest', async (request) => {
      const user = request.headers['x-user']
      if (typeof user === 'string') users.set(request, user)
    })
    app.tus.addHook('tus:preCreate', async (request) => {
      const user = users.get(request)
      if (user === undefined) throw Object.assign(new Error('log in first'), { statusCode: 401 })
      return { serverMetadata: { owner: user } }
    })
    app.tus.addHook('tus:preAccess', async (request, upload) => {
      access.push({ method: request.method, id: upload.id, user: users.get(request) })
      if (upload.serverMetadata.owner !== users.get(request)) throw Object.assign(new Error('not your upload'), { statusCode: 403 })
    })
  })
  const alice = { 'x-user': 'alice' }
  const bob = { 'x-user': 'bob' }

  const anonymous = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '6' })
  t.equal(anonymous.statusCode, 401, 'no user: 401')
  t.equal(anonymous.headers['tus-resumable'], '1.0.0')
  await emptyDirs(t, server, 'after the anonymous POST')

  const url = await create(server.endpoint, { ...alice, 'upload-length': '6' })
  const id = idOf(url)
  t.equal(recordOnDisk(server, id)?.serverMetadata.owner, 'alice', 'the owner is stored')

  const aliceHead = await send(url, 'HEAD', { ...TUS, ...alice })
  t.equal(aliceHead.statusCode, 200, 'the owner may HEAD')
  t.equal(aliceHead.headers['upload-offset'], '0')
  const bobHead = await send(url, 'HEAD', { ...TUS, ...bob })
  t.equal(bobHead.statusCode, 403, 'another user may not HEAD')
  t.equal(bobHead.headers['tus-resumable'], '1.0.0', 'the refusal carries Tus-Resumable')
  t.equal(bobHead.headers['upload-offset'], undefined, 'nor learn the offset')

  const bobPatch = await patch(url, 0, 'hacked', bob)
  t.equal(bobPatch.statusCode, 403, 'another user may not PATCH')
  t.equal(bobPatch.headers['tus-resumable'], '1.0.0')
  t.equal(bobPatch.json().message, 'not your upload')
  t.equal(recordOnDisk(server, id)?.offset, 0, 'the refused PATCH wrote nothing')

  const alicePatch = await patch(url, 0, 'secret', alice)
  t.equal(alicePatch.statusCode, 204, 'the owner may PATCH')
  t.equal(alicePatch.headers['upload-offset'], '6')
  t.equal(readFileSync(path.join(server.completedDir, id), 'utf8'), 'secret', 'and her bytes are the upload')

  const bobDelete = await send(url, 'DELETE', { ...TUS, ...bob })
  t.equal(bobDelete.statusCode, 403, 'another user may not DELETE')
  t.equal(bobDelete.headers['tus-resumable'], '1.0.0')
  t.ok(existsSync(path.join(server.completedDir, id)), 'the upload is still there')

  t.strictSame(access, [
    { method: 'HEAD', id, user: 'alice' },
    { method: 'HEAD', id, user: 'bob' },
    { method: 'PATCH', id, user: 'bob' },
    { method: 'PATCH', id, user: 'alice' },
    { method: 'DELETE', id, user: 'bob' }
  ], 'tus:preAccess got (request, record) for every HEAD, PATCH and DELETE')
})

t.test('tus:preAccess refusing with a coded error: its status and code', async (t) => {
  const server = await startServer(t, { hooks: { 'tus:preAccess': () => { throw new Forbidden() } } })
  const url = await create(server.endpoint, { 'upload-length': '3' })
  assertError(t, await send(url, 'HEAD', TUS), 403, 'APP_FORBIDDEN', 'HEAD', { head: true })
  assertError(t, await patch(url, 0, 'abc'), 403, 'APP_FORBIDDEN', 'PATCH')
  t.equal(recordOnDisk(server, idOf(url))?.offset, 0, 'nothing written')
})

// ------------------------------------------------------------------ tus:preTerminate, tus:terminated

const Kept = createError('APP_KEPT', 'this upload is kept for audit', 409)

t.test('tus:preTerminate may refuse a DELETE; tus:terminated gets the removed record and the request', async (t) => {
  const calls: string[] = []
  const terminated: Array<{ upload: UploadRecord, method: string, gone: boolean }> = []
  let server: TestServer | undefined
  server = await startServer(t, {
    hooks: {
      'tus:preAccess': (request) => { if (request.method === 'DELETE') calls.push('preAccess') },
      'tus:preTerminate': (request, upload) => {
        calls.push(`preTerminate ${request.method} ${upload.offset}`)
        if (upload.metadata.audit !== undefined) throw new Kept()
      },
      'tus:terminated': (upload, request) => {
        const dir = server!.directory
        terminated.push({ upload, method: request.method, gone: !existsSync(path.join(dir, upload.id)) && !existsSync(path.join(dir, `${upload.id}.meta`)) })
      }
    }
  })
  const kept = await create(server.endpoint, { 'upload-length': '4', 'upload-metadata': encodeMetadata({ audit: null }) })
  t.equal((await patch(kept, 0, 'ab')).statusCode, 204)
  assertError(t, await send(kept, 'DELETE', TUS), 409, 'APP_KEPT', 'refused DELETE')
  t.equal(recordOnDisk(server, idOf(kept))?.offset, 2, 'the refused upload is intact')
  t.strictSame(calls, ['preAccess', 'preTerminate DELETE 2'], 'preAccess, then preTerminate with the record')
  t.strictSame(terminated, [], 'no tus:terminated for a refusal')

  const doomed = await create(server.endpoint, { 'upload-length': '4' })
  t.equal((await patch(doomed, 0, 'xyz')).statusCode, 204)
  const deleted = await send(doomed, 'DELETE', TUS)
  t.equal(deleted.statusCode, 204)
  t.equal(deleted.headers['tus-resumable'], '1.0.0')
  t.equal(terminated.length, 1, 'tus:terminated once')
  t.equal(terminated[0].upload.id, idOf(doomed), 'with the removed upload')
  t.equal(terminated[0].upload.offset, 3, 'its last record')
  t.equal(terminated[0].method, 'DELETE', 'and the request')
  t.ok(terminated[0].gone, 'called once its files are gone')
})

// ------------------------------------------------------------------ tus:progress

t.test('tus:progress with progressInterval 0: once per PATCH, with the durable offset', async (t) => {
  const seen: Array<{ offset: number, recorded: number | undefined, bytes: string }> = []
  let server: TestServer | undefined
  server = await startServer(t, {
    progressInterval: 0,
    hooks: {
      'tus:progress': (upload) => {
        // What is on disk at this moment: the record's offset and the data it covers.
        const dir = existsSync(path.join(server!.directory, upload.id)) ? server!.directory : server!.completedDir
        const bytes = readFileSync(path.join(dir, upload.id)).subarray(0, upload.offset).toString()
        seen.push({ offset: upload.offset, recorded: recordOnDisk(server!, upload.id)?.offset, bytes })
      }
    }
  })
  const url = await create(server.endpoint, { 'upload-length': '12' })
  for (const [offset, chunk] of [[0, 'abcd'], [4, 'efgh'], [8, 'ijkl']] as const) {
    t.equal((await patch(url, offset, chunk)).statusCode, 204)
  }
  t.strictSame(seen, [
    { offset: 4, recorded: 4, bytes: 'abcd' },
    { offset: 8, recorded: 8, bytes: 'abcdefgh' },
    { offset: 12, recorded: 12, bytes: 'abcdefghijkl' }
  ], 'each PATCH reported its new offset, already recorded, with its bytes on disk')

  // creation-with-upload reports too.
  seen.length = 0
  const response = await send(server.endpoint, 'POST', { ...TUS, ...OCTET, 'upload-length': '10' }, 'hello')
  t.equal(response.statusCode, 201)
  t.strictSame(seen.map((entry) => entry.offset), [5], 'the POST\'s bytes')
})

t.test('tus:progress with a long progressInterval: at most once per interval per upload, always for the last byte', async (t) => {
  const seen: Array<[string, number]> = []
  const server = await startServer(t, { progressInterval: 60_000, hooks: { 'tus:progress': (upload) => { seen.push([upload.id, upload.offset]) } } })
  const a = await create(server.endpoint, { 'upload-length': '40' })
  const b = await create(server.endpoint, { 'upload-length': '40' })
  for (let offset = 0; offset < 40; offset += 10) {
    t.equal((await patch(a, offset, Buffer.alloc(10, 97))).statusCode, 204)
    t.equal((await patch(b, offset, Buffer.alloc(10, 98))).statusCode, 204)
  }
  t.strictSame(seen, [[idOf(a), 10], [idOf(b), 10], [idOf(a), 40], [idOf(b), 40]],
    'the first PATCH of each upload, then nothing within the interval but the last byte')
})

// ------------------------------------------------------------------ tus:preFinish

const Rejected = createError('APP_REJECTED', 'the scanner refused the file', 422)

t.test('tus:preFinish sees the whole upload and can refuse it: 422, deleted from both directories, tus:failed, no tus:completed', async (t) => {
  const preFinish: Array<{ upload: UploadRecord, bytes: string, inCompleted: boolean }> = []
  const failed: Array<[Error, UploadRecord | null]> = []
  const completed: string[] = []
  let server: TestServer | undefined
  const refusal = new Rejected()
  server = await startServer(t, {
    hooks: {
      'tus:preFinish': (upload) => {
        preFinish.push({
          upload,
          bytes: readFileSync(path.join(server!.directory, upload.id), 'utf8').slice(0, upload.offset),
          inCompleted: existsSync(path.join(server!.completedDir, upload.id))
        })
        if (upload.metadata.filename === 'virus.exe') throw refusal
      },
      'tus:failed': (error, upload) => { failed.push([error, upload]) },
      'tus:completed': (upload) => { completed.push(upload.id) }
    }
  })
  const url = await create(server.endpoint, { 'upload-length': '20', 'upload-metadata': encodeMetadata({ filename: 'virus.exe' }) })
  const id = idOf(url)
  t.equal((await patch(url, 0, 'EICAR-STA')).statusCode, 204, 'a first part: no preFinish')
  t.equal(preFinish.length, 0)
  const refused = await patch(url, 9, 'NDARD-ANTIV')
  assertError(t, refused, 422, 'APP_REJECTED', 'the finishing PATCH')
  t.equal(refused.json().message, 'the scanner refused the file')

  t.equal(preFinish.length, 1, 'preFinish ran once')
  t.equal(preFinish[0].upload.id, id)
  t.equal(preFinish[0].upload.offset, 20, 'with offset == length')
  t.equal(preFinish[0].upload.length, 20)
  t.equal(preFinish[0].bytes, 'EICAR-STANDARD-ANTIV', 'every byte durable in the uploads directory')
  t.notOk(preFinish[0].inCompleted, 'before the hand-over')

  await emptyDirs(t, server, 'after the refusal')
  t.equal(failed.length, 1, 'tus:failed once')
  t.equal(failed[0][0], refusal, 'with the refusal')
  t.equal(failed[0][1]?.id, id, 'and the upload')
  t.strictSame(completed, [], 'tus:completed did not fire')
  assertError(t, await send(url, 'HEAD', TUS), 404, 'FST_TUS_UPLOAD_NOT_FOUND', 'HEAD after', { head: true })

  // An accepted one goes through.
  const ok = await create(server.endpoint, { 'upload-length': '2', 'upload-metadata': encodeMetadata({ filename: 'fine.txt' }) })
  t.equal((await patch(ok, 0, 'ok')).statusCode, 204)
  t.strictSame(completed, [idOf(ok)])
})

// ------------------------------------------------------------------ tus:completed

t.test('tus:completed fires exactly once, once the files are in completedDir, for Upload-Length 0 too', async (t) => {
  const completed: Array<{ id: string, data: boolean, record: boolean, leftover: boolean, finishedAt: string | null }> = []
  let server: TestServer | undefined
  server = await startServer(t, {
    hooks: {
      'tus:completed': (upload) => {
        completed.push({
          id: upload.id,
          data: existsSync(path.join(server!.completedDir, upload.id)),
          record: existsSync(path.join(server!.completedDir, `${upload.id}.meta`)),
          leftover: existsSync(path.join(server!.directory, `${upload.id}.meta`)) || existsSync(path.join(server!.directory, upload.id)),
          finishedAt: upload.finishedAt
        })
      }
    }
  })
  const url = await create(server.endpoint, { 'upload-length': '6' })
  t.equal((await patch(url, 0, 'abc')).statusCode, 204)
  t.strictSame(completed, [], 'not before the last byte')
  t.equal((await patch(url, 3, 'def')).statusCode, 204)
  // A client that did not get the answer asks again: already finished, nothing fires.
  const again = await patch(url, 6, '')
  t.equal(again.statusCode, 204, 'a repeated empty PATCH at the end is fine')
  t.equal(again.headers['upload-offset'], '6')

  const empty = await create(server.endpoint, { 'upload-length': '0' })
  const withBody = await send(server.endpoint, 'POST', { ...TUS, ...OCTET, 'upload-length': '4' }, 'full')
  t.equal(withBody.statusCode, 201)
  const ids = [idOf(url), idOf(empty), idOf(String(withBody.headers.location))]
  t.strictSame(completed.map((entry) => entry.id), ids, 'once per upload: PATCH, Upload-Length 0, creation-with-upload')
  for (const entry of completed) {
    t.ok(entry.data && entry.record, `${entry.id}: data and record in completedDir when the listener ran`)
    t.notOk(entry.leftover, `${entry.id}: nothing left in the uploads directory`)
    t.ok(entry.finishedAt !== null && !Number.isNaN(Date.parse(entry.finishedAt)), `${entry.id}: the finished record`)
  }
})

t.test('tus:completed fires for an upload finished by a request that then fails (bytes past Upload-Length)', async (t) => {
  const completed: string[] = []
  const server = await startApp(t, {}, (app) => { app.tus.addHook('tus:completed', (upload) => { completed.push(upload.id) }) })
  // In a PATCH, and in a creation request carrying the whole upload.
  const url = await create(server.endpoint, { 'upload-length': '10' })
  const patched = await patchChunked(url, 0, [Buffer.alloc(6, 1), Buffer.alloc(6, 2)])
  assertError(t, patched, 413, 'FST_TUS_UPLOAD_LENGTH_EXCEEDED')
  const created = await rawRequest(server.origin, {
    method: 'POST',
    path: pathOf(server.endpoint),
    headers: { ...TUS, ...OCTET, 'upload-length': '10' },
    body: [Buffer.alloc(6, 3), Buffer.alloc(6, 4)]
  })
  assertError(t, created, 413, 'FST_TUS_UPLOAD_LENGTH_EXCEEDED')
  const createdId = idOf(String(created.headers.location))
  t.same(completed, [idOf(url), createdId], 'both handed over and announced, once each')
  t.same((await readdir(server.completedDir)).sort(), [idOf(url), `${idOf(url)}.meta`, createdId, `${createdId}.meta`].sort())
})

t.test('concatenation: tus:completed for the final upload once, never for its partials', async (t) => {
  const completed: Array<{ id: string, concat: UploadRecord['concat'], bytes: string }> = []
  let server: TestServer | undefined
  server = await startServer(t, {
    hooks: {
      'tus:completed': (upload) => {
        completed.push({ id: upload.id, concat: upload.concat, bytes: readFileSync(path.join(server!.completedDir, upload.id), 'utf8') })
      }
    }
  })
  const parts: string[] = []
  for (const text of ['tus ', 'concat']) {
    const url = await create(server.endpoint, { 'upload-length': String(text.length), 'upload-concat': 'partial' })
    t.equal((await patch(url, 0, text)).statusCode, 204)
    parts.push(url)
  }
  t.strictSame(completed, [], 'finished partials are not completed uploads')
  const final = await send(server.endpoint, 'POST', { ...TUS, 'upload-concat': `final;${parts.map((url) => new URL(url).pathname).join(' ')}` })
  t.equal(final.statusCode, 201)
  const finalId = idOf(String(final.headers.location))
  t.strictSame(completed.map((entry) => entry.id), [finalId], 'the final upload, once')
  t.equal(completed[0].bytes, 'tus concat', 'assembled when the listener ran')
  t.strictSame(completed[0].concat, { final: parts.map(idOf) })
})

// ------------------------------------------------------------------ throwing listeners

t.test('a throwing listener of created, progress, completed or failed is logged with the upload id; the request goes on', async (t) => {
  const { lines, stream } = logCollector()
  const broken = (hook: TusHookName) => () => { throw new Error(`${hook} listener broke`) }
  const server = await startServer(t, {
    progressInterval: 0,
    hooks: {
      'tus:created': broken('tus:created'),
      'tus:progress': async () => { throw new Error('tus:progress listener broke') }, // a rejection, not a throw
      'tus:completed': broken('tus:completed'),
      'tus:failed': broken('tus:failed'),
      'tus:preFinish': (upload) => { if (upload.metadata.refuse !== undefined) throw new Rejected() }
    }
  }, { logger: { level: 'info', stream } })

  const url = await create(server.endpoint, { 'upload-length': '4' })
  const id = idOf(url)
  const written = await patch(url, 0, 'data')
  t.equal(written.statusCode, 204, 'the finishing PATCH succeeds although three listeners threw')
  t.equal(written.headers['upload-offset'], '4')
  t.ok(existsSync(path.join(server.completedDir, id)), 'and the upload is handed over')

  const refusedUrl = await create(server.endpoint, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ refuse: null }) })
  assertError(t, await patch(refusedUrl, 0, 'x'), 422, 'APP_REJECTED', 'a refusal whose tus:failed listener throws keeps its answer')

  const logged = (hook: TusHookName): Promise<typeof lines[number]> => waitFor(`the log of the ${hook} listener`, async () =>
    lines.find((line) => line.err?.message === `${hook} listener broke`))
  for (const [hook, uploadId] of [['tus:created', id], ['tus:progress', id], ['tus:completed', id], ['tus:failed', idOf(refusedUrl)]] as const) {
    const line = await logged(hook)
    t.equal(line.uploadId, uploadId, `${hook}: logged with the upload id`)
    t.ok(line.level >= 50, `${hook}: at error level`)
  }
})

// Concatenation under the README's ownership pattern (tus:preCreate stores an
// owner, tus:preAccess refuses other users): a final upload may only be made
// of partial uploads its creator may access. Each partial passes tus:preAccess
// with the creating request before anything is assembled; a refusal answers
// with the hook's status and leaves every partial as it was.
import { randomUUID } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import type { ProposedUpload } from '../types/index'
import { TUS, patch, send, startServer, type TestServer } from './helpers'
import { listTree, pathOf, readRecordFile } from './protocol-helpers'

declare module 'fastify' {
  interface FastifyRequest { user?: string }
}

interface Owned { server: TestServer, proposals: ProposedUpload[] }

async function ownedServer (t: Test): Promise<Owned> {
  const proposals: ProposedUpload[] = []
  const configure = (app: FastifyInstance): void => {
    app.addHook('onRequest', async (request: FastifyRequest) => {
      const user = request.headers['x-user']
      request.user = typeof user === 'string' ? user : undefined
    })
    app.tus.addHook('tus:preCreate', async (request, upload) => {
      proposals.push(upload)
      if (request.user === undefined) throw Object.assign(new Error('log in first'), { statusCode: 401 })
      return { serverMetadata: { owner: request.user } }
    })
    app.tus.addHook('tus:preAccess', async (request, upload) => {
      if (upload.serverMetadata.owner !== request.user) throw Object.assign(new Error('not your upload'), { statusCode: 403 })
    })
  }
  const server = await startServer(t, {}, {}, configure)
  return { server, proposals }
}

const as = (user: string, headers: Record<string, string> = {}): Record<string, string> => ({ ...TUS, 'x-user': user, ...headers })

async function partial (server: TestServer, user: string, body: string, finish = true): Promise<string> {
  const created = await send(server.endpoint, 'POST', as(user, { 'upload-length': String(body.length), 'upload-concat': 'partial' }))
  if (created.statusCode !== 201) throw new Error(`creation failed: ${created.statusCode} ${created.text}`)
  const url = String(created.headers.location)
  if (finish && (await patch(url, 0, body, { 'x-user': user })).statusCode !== 204) throw new Error('patch failed')
  return url
}

t.test('B cannot make a final upload of A\'s partial: 403, and A\'s partial is untouched', async (t) => {
  const { server } = await ownedServer(t)
  const a = await partial(server, 'alice', 'alice-bytes')
  const b = await partial(server, 'bob', 'bob-bytes')
  t.equal((await send(a, 'HEAD', as('bob'))).statusCode, 403, 'B cannot HEAD A\'s partial')
  const before = await listTree(server.directory)

  for (const [label, urls] of [['A\'s partial alone', [a]], ['B\'s and A\'s', [b, a]], ['A\'s, then B\'s', [a, b]]] as const) {
    const final = await send(server.endpoint, 'POST', as('bob', { 'upload-concat': `final;${urls.map(pathOf).join(' ')}` }))
    t.equal(final.statusCode, 403, `${label}: the hook's status`)
    t.equal(final.json().message, 'not your upload', `${label}: the hook's message`)
    t.equal(final.headers.location, undefined, `${label}: no upload created`)
  }
  t.same(await listTree(server.directory), before, 'every partial as it was, no final upload on disk')
  t.same(await readdir(server.completedDir), [], 'nothing handed over')
  const head = await send(a, 'HEAD', as('alice'))
  t.equal(head.statusCode, 200, 'A still has her partial')
  t.equal(head.headers['upload-offset'], String('alice-bytes'.length))
})

t.test('an unfinished partial of another user is refused too (concatenation-unfinished), and never assembled', async (t) => {
  const { server } = await ownedServer(t)
  const a = await partial(server, 'alice', 'abc', false)
  const final = await send(server.endpoint, 'POST', as('bob', { 'upload-concat': `final;${pathOf(a)}` }))
  t.equal(final.statusCode, 403)
  t.equal((await patch(a, 0, 'abc', { 'x-user': 'alice' })).statusCode, 204, 'A finishes her partial')
  t.equal((await send(a, 'HEAD', as('alice'))).headers['upload-offset'], '3', 'it is still hers, unassembled')
  t.same(await readdir(server.completedDir), [], 'nothing handed over')
})

t.test('A makes a final of her own partials; tus:preCreate sees their records and the final length', async (t) => {
  const { server, proposals } = await ownedServer(t)
  const first = await partial(server, 'alice', 'hello ')
  const second = await partial(server, 'alice', 'world')
  proposals.length = 0
  const final = await send(server.endpoint, 'POST', as('alice', { 'upload-concat': `final;${pathOf(first)} ${pathOf(second)}` }))
  t.equal(final.statusCode, 201)
  t.equal(proposals.length, 1)
  const [proposal] = proposals
  t.equal(proposal.length, 11, 'the final length is the sum of the partials\'')
  t.same(proposal.partials?.map((record) => [record.id, record.length, record.serverMetadata.owner]), [
    [pathOf(first).split('/').pop(), 6, 'alice'],
    [pathOf(second).split('/').pop(), 5, 'alice']
  ], 'the partials\' records, in order')
  const id = String(final.headers.location).split('/').pop()!
  t.equal((await readRecordFile(server.completedDir, id)).serverMetadata.owner, 'alice', 'handed over as A\'s')
})

t.test('an unknown partial is 404, before any hook', async (t) => {
  const { server, proposals } = await ownedServer(t)
  const response = await send(server.endpoint, 'POST', as('bob', { 'upload-concat': `final;/files/${randomUUID()}` }))
  t.equal(response.statusCode, 404)
  t.equal(response.json().code, 'FST_TUS_UPLOAD_NOT_FOUND')
  t.equal(proposals.length, 0, 'tus:preCreate did not run')
})

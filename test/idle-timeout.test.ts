// A client that goes silent mid-body must not hold its upload forever.
import { once } from 'node:events'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { TUS, create, idOf, send, startServer } from './helpers'
import { lockIsFree } from './process-helpers'

function openPatch (url: string, offset: number, contentLength: number): http.ClientRequest {
  const request = http.request(url, {
    method: 'PATCH',
    headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), 'content-length': String(contentLength) }
  })
  request.on('error', () => {}) // the server hangs up on purpose
  return request
}

t.test('a body silent for idleTimeout is ended, its bytes kept, its lock freed', async (t) => {
  const server = await startServer(t, { idleTimeout: 300 })
  const url = await create(server.endpoint, { 'upload-length': '1000' })
  const dataFile = path.join(server.directory, idOf(url))
  const request = openPatch(url, 0, 1000)
  const lastWrite = Date.now()
  request.write(Buffer.alloc(100, 7))
  await sleep(100)
  t.notOk(lockIsFree(dataFile), 'the writer holds the lock while bytes flow')
  await new Promise((resolve) => request.once('close', resolve))
  const silence = Date.now() - lastWrite
  t.ok(silence >= 250 && silence < 3000, `the server hung up after ${silence} ms of silence`)
  // The server records after it hung up: give it a bounded moment.
  let offset: unknown
  for (let tries = 0; tries < 50 && offset !== '100'; tries++) {
    offset = (await send(url, 'HEAD', TUS)).headers['upload-offset']
    if (offset !== '100') await sleep(20)
  }
  t.equal(offset, '100', 'the bytes that arrived are recorded')
  // The lock goes right after the record is written.
  let free = false
  for (let tries = 0; tries < 50 && !free; tries++) {
    free = lockIsFree(dataFile)
    if (!free) await sleep(20)
  }
  t.ok(free, 'another process can take the upload')
})

t.test('a slow but steady body is not cut off', async (t) => {
  const server = await startServer(t, { idleTimeout: 300 })
  const url = await create(server.endpoint, { 'upload-length': '1000' })
  const request = openPatch(url, 0, 1000)
  const response = once(request, 'response')
  for (let i = 0; i < 10; i++) {
    request.write(Buffer.alloc(100, i))
    await sleep(100)
  }
  request.end()
  const [answer] = await response as [http.IncomingMessage]
  t.equal(answer.statusCode, 204)
  t.equal(answer.headers['upload-offset'], '1000')
})

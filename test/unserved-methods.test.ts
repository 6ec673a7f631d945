// Requests the tus routes do not read a body from: a creation without data is
// accepted whatever its Content-Type (aiohttp, which tus-py-client's asyncio
// mode uses, labels an empty POST application/octet-stream), and a method no
// tus route serves at a URL is 405 with Allow, never 415 from the body parser.
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { TUS, create, idOf, patch, send, startServer } from './helpers'
import { assertError, listTree, OCTET } from './protocol-helpers'

const run = promisify(execFile)

// What tus-py-client's AsyncUploader does: session.post(url, headers=...) to create,
// then session.patch with the bytes; prints the Location and the final offset.
const AIOHTTP_CLIENT = `
import asyncio, sys, aiohttp
async def main(endpoint, data):
    async with aiohttp.ClientSession() as session:
        headers = {'Tus-Resumable': '1.0.0', 'Upload-Length': str(len(data)), 'Upload-Metadata': 'filename YS50eHQ='}
        async with session.post(endpoint, headers=headers) as response:
            print(response.status, response.request_info.headers.get('Content-Type'), response.headers.get('Location'))
            location = response.headers['Location']
        headers = {'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream'}
        async with session.patch(location, headers=headers, data=data) as response:
            print(response.status, response.headers.get('Upload-Offset'))
asyncio.run(main(sys.argv[1], sys.argv[2].encode()))
`

t.test('aiohttp (tus-py-client\'s asyncio mode) creates and finishes an upload', async (t) => {
  const server = await startServer(t)
  const { stdout } = await run('/usr/bin/python3', ['-c', AIOHTTP_CLIENT, server.endpoint, 'hello from python'])
  const [created, patched] = stdout.trim().split('\n').map((line) => line.split(' '))
  t.equal(created[0], '201', 'the creation is accepted')
  t.equal(created[1], 'application/octet-stream', 'aiohttp labelled the empty creation application/octet-stream')
  t.equal(patched[0], '204')
  t.equal(patched[1], '17')
  t.equal(await readFile(path.join(server.completedDir, idOf(created[2])), 'utf8'), 'hello from python')
})

t.test('a creation without data is accepted whatever its Content-Type; with data, only the tus type', async (t) => {
  const server = await startServer(t)
  for (const type of ['application/octet-stream', 'text/plain; charset=utf-8', 'application/json', 'garbage', '', ';;;', 'a/b; c=']) {
    for (const length of [undefined, '0']) {
      const headers: Record<string, string> = { ...TUS, 'upload-length': '5', 'content-type': type }
      if (length !== undefined) headers['content-length'] = length
      const response = await send(server.endpoint, 'POST', headers)
      t.equal(response.statusCode, 201, `Content-Type ${JSON.stringify(type)}, Content-Length ${length ?? 'absent'}: 201`)
    }
  }
  assertError(t, await send(server.endpoint, 'POST', { ...TUS, 'upload-length': '5', 'content-type': 'application/octet-stream' }, 'hello'), 415, 'FST_TUS_INVALID_CONTENT_TYPE', 'a body of another type')
  // An empty PATCH still needs the tus content type.
  const url = await create(server.endpoint, { 'upload-length': '5' })
  assertError(t, await send(url, 'PATCH', { ...TUS, 'upload-offset': '0', 'content-type': 'application/octet-stream' }), 415, 'FST_TUS_INVALID_CONTENT_TYPE', 'an empty PATCH of another type')
  t.equal((await send(url, 'PATCH', { ...TUS, 'upload-offset': '0', 'content-type': OCTET })).statusCode, 204, 'an empty PATCH of the tus type')
})

t.test('a method no tus route serves is 405 with Allow, its body unread and nothing touched', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '5' })
  t.equal((await patch(url, 0, 'ab')).statusCode, 204)
  const before = await listTree(server.directory)
  const cases: Array<[string, string, string, Record<string, string>, string | undefined]> = [
    ['PUT on an upload, with a body', url, 'PUT', { ...TUS, 'content-type': 'application/octet-stream' }, 'cde'],
    ['PUT on an upload, tus content type', url, 'PUT', { ...TUS, 'content-type': OCTET, 'upload-offset': '2' }, 'cde'],
    ['GET on an upload, no Tus-Resumable', url, 'GET', {}, undefined],
    ['GET on an upload', url, 'GET', TUS, undefined],
    ['PUT on the endpoint', server.endpoint, 'PUT', { ...TUS, 'content-type': 'text/plain' }, 'x'],
    ['DELETE on the endpoint', server.endpoint, 'DELETE', TUS, undefined],
    ['GET on the endpoint', server.endpoint, 'GET', {}, undefined]
  ]
  for (const [label, target, method, headers, body] of cases) {
    const response = await send(target, method, headers, body)
    assertError(t, response, 405, 'FST_TUS_UNSUPPORTED_METHOD', label)
    const expected = target === url ? 'DELETE, HEAD, PATCH, POST' : 'OPTIONS, POST'
    t.equal(response.headers.allow, expected, `${label}: Allow`)
    t.equal(response.headers['tus-resumable'], '1.0.0', `${label}: Tus-Resumable`)
  }
  t.same(await listTree(server.directory), before, 'nothing written or removed')
  t.equal((await send(url, 'HEAD', TUS)).headers['upload-offset'], '2')
})

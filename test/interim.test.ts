// Informational responses written before the final one, over a real HTTP
// server and a raw socket: byte for byte, never after the final head, never to
// an HTTP/1.0 client, never with a header that could split the response.
import http from 'node:http'
import t from 'tap'
import { writeInformational } from '../lib/interim'
import { exchange } from './raw-socket'

async function serve (t: { teardown (fn: () => unknown): void }, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

t.test('a 104 with headers, then the final answer', async (t) => {
  const results: boolean[] = []
  const origin = await serve(t, (_request, response) => {
    results.push(writeInformational(response, 104, 'Upload Resumption Supported', { Location: '/u/1', 'Upload-Offset': '5' }))
    results.push(writeInformational(response, 104, 'Upload Resumption Supported', { 'Upload-Offset': '9' }))
    response.writeHead(204).end()
    results.push(writeInformational(response, 104, 'Upload Resumption Supported', { 'Upload-Offset': '10' }))
  })
  const responses = await exchange(origin, 'GET / HTTP/1.1', { host: 'x' })
  t.same(responses.map((response) => response.head.split('\r\n')[0]), ['HTTP/1.1 104 Upload Resumption Supported', 'HTTP/1.1 104 Upload Resumption Supported', 'HTTP/1.1 204 No Content'])
  t.equal(responses[0].head, 'HTTP/1.1 104 Upload Resumption Supported\r\nLocation: /u/1\r\nUpload-Offset: 5\r\n\r\n', 'byte for byte')
  t.same(results, [true, true, false], 'nothing once the final answer has started')
})

t.test('HTTP/1.0 clients get none', async (t) => {
  const results: boolean[] = []
  const origin = await serve(t, (_request, response) => {
    results.push(writeInformational(response, 104, 'Upload Resumption Supported', { Location: '/u/1' }))
    response.end('ok')
  })
  const responses = await exchange(origin, 'GET / HTTP/1.0', {})
  t.equal(responses.length, 1, 'only the final answer')
  t.same(results, [false])
})

t.test('no header can end the head early, and only 1xx statuses are informational', async (t) => {
  const errors: unknown[] = []
  const origin = await serve(t, (_request, response) => {
    for (const attempt of [
      () => writeInformational(response, 104, 'x', { Location: '/u\r\nSet-Cookie: evil=1' }),
      () => writeInformational(response, 104, 'x', { 'Bad Name': '1' }),
      () => writeInformational(response, 200, 'OK', {}),
      () => writeInformational(response, 101, 'Switching Protocols', {})
    ]) {
      try { attempt() } catch (error) { errors.push(error) }
    }
    response.end()
  })
  const responses = await exchange(origin, 'GET / HTTP/1.1', { host: 'x' })
  t.same(responses.map((response) => response.status), [200], 'nothing was written')
  t.same(errors.map((error) => (error as Error).constructor.name), ['TypeError', 'TypeError', 'RangeError', 'RangeError'])
})

import t from 'tap'
import { TUS, create, patch, send, startServer } from './helpers'

t.test('create, patch, head', async (t) => {
  const server = await startServer(t)
  const url = await create(server.endpoint, { 'upload-length': '5' })
  const response = await patch(url, 0, 'hello')
  t.equal(response.statusCode, 204)
  t.equal(response.headers['upload-offset'], '5')
  const head = await send(url, 'HEAD', TUS)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '5')
})

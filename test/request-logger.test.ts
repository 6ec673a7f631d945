// serve's request loggers, made on first use: the lines they write are those an
// eager child would write, bindings and route levels included.
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { requestLoggerFactory } from '../lib/cli/request-logger'
import { send } from './helpers'

async function serverLogging (t: Test): Promise<{ origin: string, lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = Fastify({ logger: { level: 'info', stream }, disableRequestLogging: true, childLoggerFactory: requestLoggerFactory })
  t.teardown(() => app.close())
  app.get('/quiet', async () => 'ok')
  app.get('/info', async (request) => { request.log.info({ extra: 1 }, 'from a handler'); request.log.debug('not at info'); return 'ok' })
  // A route more verbose than the server: its debug lines are written.
  app.get('/verbose', { logLevel: 'debug' }, async (request) => { request.log.debug('debug on this route'); return 'ok' })
  app.get('/child', async (request) => { request.log.child({ step: 'inner' }).warn('from a grandchild'); return 'ok' })
  app.get('/bindings', async (request) => ({ bindings: (request.log as unknown as { bindings: () => Record<string, unknown> }).bindings(), level: request.log.level }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { origin: `http://127.0.0.1:${port}`, lines }
}

t.test('lines carry the request id, levels hold as on an eager child', async (t) => {
  const { origin, lines } = await serverLogging(t)
  for (const route of ['/quiet', '/info', '/verbose', '/child']) t.equal((await send(origin + route, 'GET')).statusCode, 200, route)
  const written = lines.filter((line) => line.reqId !== undefined).map(({ msg, reqId, extra, step, level }) => ({ msg, reqId, extra, step, level }))
  t.match(written, [
    { msg: 'from a handler', reqId: 'req-2', extra: 1, level: 30 },
    { msg: 'debug on this route', reqId: 'req-3', level: 20 },
    { msg: 'from a grandchild', reqId: 'req-4', step: 'inner', level: 40 }
  ], 'each line names its request; the quiet request wrote none')
  t.equal(written.length, 3, 'nothing else: no debug line at info')
  const answer = (await send(origin + '/bindings', 'GET')).json()
  t.same(answer, { bindings: { reqId: 'req-5' }, level: 'info' }, 'other uses of the logger reach the child itself')
})

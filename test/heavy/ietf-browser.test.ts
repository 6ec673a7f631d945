// tus-js-client in a real browser (headless Chromium), cross-origin, in both IETF
// modes: the CORS preflight lets the draft's request fields through and the
// answers expose its response fields, so a browser upload completes as a Node one.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import Fastify from 'fastify'
import { chromium } from 'playwright-core'
import t from 'tap'
import { idOf, startServer } from '../helpers'
import { assertCompleted, sha256 } from '../interop-helpers'

const BUNDLE = require.resolve('tus-js-client/dist/tus.min.js')
const SIZE = 700 * 1024 + 17

t.test('a cross-origin browser upload in each IETF mode', async (t) => {
  const page = Fastify()
  page.get('/', async (_request, reply) => reply.type('text/html').send('<!doctype html><script src="/tus.js"></script>'))
  page.get('/tus.js', async (_request, reply) => reply.type('text/javascript').send(await readFile(BUNDLE)))
  await page.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => page.close())
  const pageOrigin = `http://127.0.0.1:${(page.server.address() as { port: number }).port}`
  const server = await startServer(t, { cors: pageOrigin })

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'] })
  t.teardown(() => browser.close())
  const tab = await browser.newPage()
  await tab.goto(pageOrigin)

  for (const protocol of ['ietf-draft-03', 'ietf-draft-05']) {
    const url = await tab.evaluate(async ({ endpoint, protocol, size }) => {
      const bytes = new Uint8Array(size)
      for (let index = 0; index < size; index++) bytes[index] = (index * 31 + 7) % 251
      const tus = (globalThis as unknown as { tus: { Upload: new (file: Blob, options: object) => { start (): void, url: string } } }).tus
      return await new Promise<string>((resolve, reject) => {
        const upload = new tus.Upload(new Blob([bytes]), {
          endpoint, protocol, chunkSize: 256 * 1024, metadata: { filename: 'from the browser.bin' },
          onSuccess: () => resolve(upload.url), onError: (error: Error) => reject(new Error(String(error)))
        })
        upload.start()
      })
    }, { endpoint: server.endpoint, protocol, size: SIZE })
    const expected = Buffer.alloc(SIZE)
    for (let index = 0; index < SIZE; index++) expected[index] = (index * 31 + 7) % 251
    await assertCompleted(t, server, { id: idOf(url), sha256: sha256(expected), length: SIZE, metadata: { filename: 'from the browser.bin' } })
    t.ok(path.basename(url).length === 36, `${protocol}: uploaded to ${url}`)
  }
})

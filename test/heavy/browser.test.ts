// The upload page of `fastify-tus serve` in a real browser (Debian's chromium,
// headless): a 20 MiB upload to the built CLI, a reload and a pause in the
// middle of an upload that then finishes from the server's offset, and a page on
// one origin uploading to a tus server on another (picked and dropped files).
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { request } from 'undici'
import { fastifyTus } from '../../lib/plugin'
import { uploadPage } from '../../lib/cli/upload-page'
import { BodyGate, launchBrowser, openPage, pageRecord, randomFile, recordPage, waitForFinished } from '../browser-helpers'
import { tempDir } from '../helpers'
import { assertCompleted, sha256File, waitForOffset } from '../interop-helpers'
import { CLI, ensureFreshBuild, startNode } from '../process-helpers'

const MiB = 1024 * 1024

ensureFreshBuild()
// One browser for the file; each test gets a context of its own (its own localStorage).
const launched = launchBrowser(t)

interface Seen { method: string, url: string, origin?: string, offset?: string }

/** A tus server in this process, recording every request it gets; `before` runs before the plugin is registered. */
async function tusServer (t: tap.Test, options: { cors?: (origin: string) => boolean, page?: boolean, before?: (app: FastifyInstance) => void } = {}): Promise<{ app: FastifyInstance, origin: string, seen: Seen[], directory: string, completedDir: string }> {
  const root = await tempDir(t)
  const directory = path.join(root, 'uploads')
  const completedDir = path.join(root, 'completed')
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const seen: Seen[] = []
  app.addHook('onRequest', async (request) => {
    const header = (name: string): string | undefined => request.headers[name] as string | undefined
    seen.push({ method: request.method, url: request.url, origin: header('origin'), offset: header('upload-offset') })
  })
  options.before?.(app)
  await app.register(fastifyTus, { directory, completedDir, download: true, underPressure: false, cors: options.cors ?? false })
  if (options.page === true) await app.register(uploadPage, { endpoint: app.tus.options.prefix, download: true })
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, origin, seen, directory, completedDir }
}

const idOf = (url: string): string => url.slice(url.lastIndexOf('/') + 1)

async function downloaded (url: string): Promise<Buffer> {
  const response = await request(url)
  if (response.statusCode !== 200) throw new Error(`GET ${url}: ${response.statusCode} ${await response.body.text()}`)
  return Buffer.from(await response.body.arrayBuffer())
}

t.test('a 20 MiB file through the page of fastify-tus serve: progress to 100 %, the same bytes on disk and downloaded', async (t) => {
  const root = await tempDir(t)
  const completedDir = path.join(root, 'completed')
  const server = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', path.join(root, 'uploads'), '--completed-dir', completedDir, '--log-level', 'warn'],
    /^upload page: (http:\/\/127\.0\.0\.1:\d+\/)$/m, { cwd: root })
  const file = path.join(root, 'twenty.bin')
  await randomFile(file, 20 * MiB)

  const browser = await launched
  const { page, snap, errors } = await openPage(t, browser)
  await page.goto(server.match[1])
  t.equal(await page.title(), 'Upload files · fastify-tus')
  await snap('empty')
  await recordPage(page)
  await page.setInputFiles('#picker', file)
  const link = await waitForFinished(page, 'twenty.bin')
  await snap('finished')

  const record = await pageRecord(page)
  const percents = record.percents['twenty.bin']
  t.equal(percents.at(-1), 100, 'the progress bar reached 100 %')
  t.ok(percents.every((value, index) => index === 0 || value >= percents[index - 1]), `the progress only went up (${percents.length} steps)`)
  t.equal(record.states['twenty.bin'].at(-1), 'done')
  t.match(await page.locator('#finished .item', { hasText: 'twenty.bin' }).textContent(), /20\.0 MB/, 'the finished row gives the size')

  t.ok(link !== null, 'the finished upload has a download link')
  const id = idOf(link!)
  t.equal(await sha256File(path.join(completedDir, id)), await sha256File(file), 'the file on disk is byte-identical')
  t.ok((await downloaded(link!)).equals(await readFile(file)), 'the download link serves the same bytes')

  await page.reload()
  await page.locator('#finished .item', { hasText: 'twenty.bin' }).waitFor()
  t.pass('the finished list survives a reload')
  t.strictSame(errors(), [], 'the page threw no errors')
})

t.test('a reload, then a pause, in the middle of an upload: the same upload goes on each time from the offset the server has', async (t) => {
  const gate = new BodyGate()
  // The first PATCH gets 8 MiB into the server, then nothing more until the page reloads;
  // the second (the resumed upload) 1 MiB more, until it is paused.
  const FIRST = 8 * MiB
  const PAUSED = FIRST + MiB
  const first = gate.hold(0, FIRST)
  const second = gate.hold(1, MiB)
  const server = await tusServer(t, { page: true, before: (app) => gate.install(app) })
  const root = await tempDir(t)
  const file = path.join(root, 'large video.mp4')
  await randomFile(file, 48 * MiB)

  const browser = await launched
  const { page, snap, errors } = await openPage(t, browser)
  await page.goto(`${server.origin}/`)
  await page.setInputFiles('#picker', file)
  await first.reached
  await snap('held at 8 MiB')
  t.equal(server.seen.filter((request) => request.method === 'POST').length, 1, 'the upload was created')
  const uploadUrl = `${server.origin}${server.seen.find((request) => request.method === 'PATCH')!.url}`

  await page.reload()
  // The browser dropped the request: the server keeps every byte it received, and records them.
  t.equal(await waitForOffset(uploadUrl, (offset) => offset === FIRST, 30_000), FIRST, 'the server recorded the 8 MiB it got')
  // The page may have asked before the server had recorded the cut-off request; it asks again every few seconds.
  await page.locator('#interrupted .item', { hasText: 'large video.mp4' }).filter({ hasText: '8.0 MB of 48.0 MB on the server' }).waitFor({ timeout: 30_000 })
  t.pass('the page lists the interrupted upload with the offset the server has')
  await snap('interrupted after reload')

  await recordPage(page)
  await page.setInputFiles('#picker', file)
  await second.reached
  const row = page.locator('#uploads .item', { hasText: 'large video.mp4' })
  await row.filter({ hasText: 'resumed at 8.0 MB' }).waitFor()
  await snap('resumed')
  await row.locator('button.pause').click()
  await page.locator('#uploads .item[data-state="paused"]').waitFor()
  t.equal(await waitForOffset(uploadUrl, (offset) => offset === PAUSED, 30_000), PAUSED, 'paused: the server recorded the 1 MiB more it got')
  await snap('paused')
  await row.locator('button.resume').click()
  const link = await waitForFinished(page, 'large video.mp4')
  await snap('finished')

  const record = await pageRecord(page)
  t.equal(record.resumedFrom['large video.mp4'], FIRST, 'the page resumed from 8 MiB')
  const percents = record.percents['large video.mp4']
  t.ok(percents.includes(16) && percents.every((percent) => percent === 0 || percent >= 16), `its progress went on from 16 %, not from 0 (${percents.join(' ')})`)
  t.strictSame(record.states['large video.mp4'], ['uploading', 'paused', 'uploading', 'done'], 'the row went through pause and resume')
  t.ok(record.rates['large video.mp4'].some((rate) => /^[0-9.]+ [KMG]?B\/s · [0-9]+ (s|min)( [0-9]+ s)? left$/.test(rate)), 'the row showed a speed and the time left')
  t.equal(server.seen.filter((request) => request.method === 'POST').length, 1, 'no second upload was created')
  const patches = server.seen.filter((request) => request.method === 'PATCH')
  t.strictSame(patches.map((request) => request.offset), ['0', String(FIRST), String(PAUSED)], 'three PATCHes: from 0, then each from the stored offset')
  t.ok(patches.every((request) => request.url === patches[0].url), 'all to the same upload')
  t.equal(link, uploadUrl, 'the finished upload is the one created before the reload')
  await assertCompleted(t, server, {
    id: idOf(uploadUrl),
    sha256: await sha256File(file),
    length: 48 * MiB,
    metadata: { filename: 'large video.mp4', filetype: 'video/mp4' }
  })
  t.equal(await page.locator('#interrupted .item').count(), 0, 'nothing is listed as interrupted any more')
  t.strictSame(errors(), [], 'the page threw no errors')
})

t.test('cross-origin: the page on one port, the tus server on another with the cors option', async (t) => {
  // Each side must know the other's origin: the tus server asks through a function, answered once the page listens.
  let pageOrigin = ''
  const tusSide = await tusServer(t, { cors: (origin) => origin === pageOrigin })
  const pageApp = Fastify({ logger: false })
  t.teardown(() => pageApp.close())
  await pageApp.register(uploadPage, { endpoint: `${tusSide.origin}/files`, download: true })
  pageOrigin = await pageApp.listen({ port: 0, host: '127.0.0.1' })
  t.not(new URL(pageOrigin).port, new URL(tusSide.origin).port, 'two origins')

  const root = await tempDir(t)
  const file = path.join(root, 'notes – ünïcode.txt')
  await randomFile(file, 3 * MiB)
  const browser = await launched
  const { page, snap, errors } = await openPage(t, browser)
  await page.goto(`${pageOrigin}/`)
  await page.setInputFiles('#picker', file)
  const link = await waitForFinished(page, 'notes – ünïcode.txt')
  await snap('finished cross-origin')

  t.match(link, `${tusSide.origin}/files/`, 'the download link is on the tus server')
  const creation = tusSide.seen.find((request) => request.method === 'POST')
  t.equal(creation?.origin, pageOrigin, 'the creation came from the page\'s origin')
  t.ok(tusSide.seen.some((request) => request.method === 'OPTIONS' && request.origin === pageOrigin), 'after a CORS preflight')
  await assertCompleted(t, tusSide, {
    id: idOf(link!),
    sha256: await sha256File(file),
    length: 3 * MiB,
    metadata: { filename: 'notes – ünïcode.txt', filetype: 'text/plain' }
  })
  t.ok((await downloaded(link!)).equals(await readFile(file)), 'the download link serves the same bytes')

  // Several files dropped on the page at once (made in the page: a drop carries no file paths).
  const dropped = await page.evaluateHandle(`(() => {
    const transfer = new DataTransfer()
    transfer.items.add(new File(['first dropped file'], 'one.txt', { type: 'text/plain' }))
    transfer.items.add(new File([new Uint8Array(300000).map((_, i) => i % 251)], 'two.bin'))
    return transfer
  })()`)
  await page.dispatchEvent('#dropzone', 'drop', { dataTransfer: dropped })
  const links = await Promise.all(['one.txt', 'two.bin'].map((name) => waitForFinished(page, name)))
  await snap('dropped files finished')
  t.equal((await downloaded(links[0]!)).toString(), 'first dropped file', 'the first dropped file arrived')
  t.ok((await downloaded(links[1]!)).equals(Buffer.from(new Uint8Array(300000).map((_, i) => i % 251))), 'and the second')
  t.equal(await page.locator('#finished .item').count(), 3, 'three finished uploads listed')
  t.strictSame(errors(), [], 'the page threw no errors')
})

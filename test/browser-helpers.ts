// Plumbing for the browser tests: Debian's chromium through playwright-core,
// screenshots kept when a test fails, a recorder of what the upload page shows,
// and a server-side gate that holds a request body at a chosen byte.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Socket } from 'node:net'
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Test } from 'tap'

export async function launchBrowser (t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update']
  })
  t.teardown(() => browser.close())
  return browser
}

export interface OpenedPage {
  page: Page
  /** Screenshots the page into a directory that is kept (and named on stderr) when the test fails. */
  snap: (name: string) => Promise<void>
  /** The errors the page's scripts threw so far. */
  errors: () => string[]
}

export async function openPage (t: Test, browser: Browser): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (error) => { errors.push(error.message) })
  const shots = await mkdtemp(path.join(tmpdir(), 'fastify-tus-screens-'))
  let count = 0
  const snap = async (name: string): Promise<void> => {
    await page.screenshot({ path: path.join(shots, `${String(++count).padStart(2, '0')}-${name}.png`), fullPage: true })
  }
  t.teardown(async () => {
    // The last state is always worth a look when something went wrong.
    await snap('teardown').catch(() => {})
    await context.close()
    if (t.passing()) await rm(shots, { recursive: true, force: true })
    else console.error(`# screenshots of "${t.name}" kept in ${shots}`)
  })
  return { page, snap, errors: () => [...errors] }
}

/** Writes `size` random bytes to `file`, 1 MiB at a time. */
export async function randomFile (file: string, size: number): Promise<void> {
  const out = createWriteStream(file)
  for (let left = size; left > 0; left -= 1024 * 1024) {
    if (!out.write(randomBytes(Math.min(left, 1024 * 1024)))) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
}

export interface PageRecord {
  /** Every percent each upload row showed, in order, by file name. */
  percents: Record<string, number[]>
  /** Every state each upload row went through, in order, by file name. */
  states: Record<string, string[]>
  /** Every speed and time left each upload row showed, by file name. */
  rates: Record<string, string[]>
  /** The offset a resumed upload started from, by file name (the row's data-resumed-from). */
  resumedFrom: Record<string, number>
}

// Runs in the page (as a string: this project's TypeScript has no DOM types).
// Rows leave the list a moment after they finish, and polling could miss them;
// a MutationObserver sees every change.
const RECORDER = `(() => {
  const record = { percents: {}, states: {}, rates: {}, resumedFrom: {} }
  window.__record = record
  const push = (map, key, value) => {
    const list = map[key] ?? (map[key] = [])
    if (list[list.length - 1] !== value) list.push(value)
  }
  const look = () => {
    for (const row of document.querySelectorAll('#uploads .item')) {
      const name = row.querySelector('.name').textContent
      push(record.percents, name, Number(row.querySelector('.bar').getAttribute('aria-valuenow')))
      push(record.states, name, row.dataset.state)
      push(record.rates, name, row.querySelector('.rate').textContent)
      if (row.dataset.resumedFrom !== undefined) record.resumedFrom[name] = Number(row.dataset.resumedFrom)
    }
  }
  new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true })
})()`

/** Starts recording what the page's upload rows show. */
export async function recordPage (page: Page): Promise<void> {
  await page.evaluate(RECORDER)
}

export async function pageRecord (page: Page): Promise<PageRecord> {
  return await page.evaluate('window.__record') as PageRecord
}

/** Waits until the finished list shows `name`, and returns its download link. */
export async function waitForFinished (page: Page, name: string, timeout = 60_000): Promise<string | null> {
  const row = page.locator('#finished .item', { hasText: name })
  await row.waitFor({ timeout })
  const link = row.locator('a.download')
  return await link.count() === 0 ? null : await link.getAttribute('href')
}

/**
 * One held request body: `after` bytes pass into the plugin, then nothing more,
 * and the body never ends: the server has exactly `after` bytes until the client
 * gives up. The rest is still read off the socket (and dropped), so that the
 * client going away is noticed at once, as it would be without the hold.
 */
export class Hold {
  /** Resolves when the body has delivered `after` bytes to the server. */
  readonly reached: Promise<void>
  private markReached!: () => void

  constructor (readonly after: number) {
    this.reached = new Promise((resolve) => { this.markReached = resolve })
  }

  wrap (payload: Readable, socket: Socket): Readable {
    let passed = 0
    const hold = this
    const held = new Transform({
      transform (chunk: Buffer, _encoding, callback: TransformCallback) {
        const room = Math.max(0, hold.after - passed)
        passed += Math.min(room, chunk.length)
        if (room >= chunk.length) return callback(null, chunk)
        if (room > 0) this.push(chunk.subarray(0, room))
        hold.markReached()
        callback()
      },
      // Never called back: the body does not end while the client waits.
      flush () {}
    })
    socket.once('close', () => held.destroy(new Error('the client closed the connection')))
    pipeline(payload, held, () => {})
    return held
  }
}

/**
 * A deterministic server-side throttle: the n-th PATCH body (from 0) is held at
 * a chosen byte, so the test knows exactly how much the server has received
 * when the client goes away.
 */
export class BodyGate {
  private readonly holds = new Map<number, Hold>()
  private patches = 0

  hold (patchNumber: number, after: number): Hold {
    const hold = new Hold(after)
    this.holds.set(patchNumber, hold)
    return hold
  }

  /** Registers the gate as a preParsing hook on `app`; call before the plugin is registered. */
  install (app: FastifyInstance): void {
    app.addHook('preParsing', async (request, _reply, payload) => {
      if (request.method !== 'PATCH') return payload
      return this.holds.get(this.patches++)?.wrap(payload, request.raw.socket) ?? payload
    })
  }
}

// Plumbing for the interoperability and robustness tests: hashing, checking a
// finished upload on disk, and polling the server's state.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, readFile, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { TUS, send, type Response } from './helpers'

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

export async function sha256File (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Reads `length` bytes of a file from `position` (fewer at its end). */
export async function readRange (file: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(file, 'r')
  try {
    const buffer = Buffer.alloc(length)
    const { bytesRead } = await handle.read(buffer, 0, length, position)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

/** Polls `probe` until it returns something other than undefined; throws after `timeout` ms. */
export async function waitFor<T> (what: string, probe: () => Promise<T | undefined>, timeout = 5000): Promise<T> {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await sleep(10)
  }
}

/**
 * Waits until the server has written `bytes` at `position` of the data file:
 * the file is preallocated, so its size says nothing; its content does.
 */
export function waitForBytesOnDisk (file: string, position: number, bytes: Buffer, timeout = 5000): Promise<true> {
  return waitFor(`${bytes.length} bytes at ${position} of the data file`, async () => {
    const found = await readRange(file, position, bytes.length).catch(() => Buffer.alloc(0))
    return found.equals(bytes) ? true : undefined
  }, timeout)
}

/** The id of the only upload in an in-progress directory (a creation request that never got its answer). */
/** The id of the one creation whose body is streaming into completedDir (under a hidden name). */
export function waitForStreamingCreation (completedDir: string): Promise<string> {
  return waitFor('a creation streaming its body', async () => {
    const ids = (await readdir(completedDir)).map((name) => /^\.([0-9a-f-]{36})\.data\.tmp$/.exec(name)?.[1]).filter((id) => id !== undefined)
    return ids.length === 1 ? ids[0] : undefined
  })
}

/** A tus error answer: status, the FST_TUS_* code of the JSON body, and Tus-Resumable. */
export function assertTusError (t: Test, response: Response, statusCode: number, code: string, what = ''): void {
  t.equal(response.statusCode, statusCode, `${what} status ${statusCode}`)
  t.equal(response.headers['tus-resumable'], '1.0.0', `${what} Tus-Resumable on the error`)
  let body: { code?: string } = {}
  try { body = response.json() } catch {}
  t.equal(body.code, code, `${what} error code ${code}`)
}

/** HEAD of an upload: checks the answer and returns its Upload-Offset. */
export async function headOffset (t: Test, url: string): Promise<number> {
  const response = await send(url, 'HEAD', TUS)
  t.equal(response.statusCode, 200, 'HEAD 200')
  t.equal(response.headers['tus-resumable'], '1.0.0', 'HEAD carries Tus-Resumable')
  return Number(response.headers['upload-offset'])
}

/** Polls HEAD until the recorded offset satisfies `done` (the server may not have noticed an abort yet). */
export function waitForOffset (url: string, done: (offset: number) => boolean, timeout = 5000): Promise<number> {
  return waitFor('the recorded offset', async () => {
    const response = await send(url, 'HEAD', TUS)
    const offset = Number(response.headers['upload-offset'])
    return response.statusCode === 200 && done(offset) ? offset : undefined
  }, timeout)
}

export interface ExpectedUpload {
  id: string
  sha256: string
  length: number
  metadata?: Record<string, string | null>
}

/**
 * A finished upload, as the design says it must be: its data in completedDir,
 * byte for byte; a record with offset == length, finishedAt and the metadata
 * decoded as UTF-8; nothing of it left in the in-progress directory.
 */
export async function assertCompleted (t: Test, server: { directory: string, completedDir: string }, expected: ExpectedUpload): Promise<void> {
  const dataPath = path.join(server.completedDir, expected.id)
  t.equal((await stat(dataPath)).size, expected.length, 'finished file has the upload length')
  t.equal(await sha256File(dataPath), expected.sha256, 'finished file is byte-identical to the source (sha256)')
  const record = JSON.parse(await readFile(`${dataPath}.meta`, 'utf8'))
  t.equal(record.id, expected.id, 'record names the upload')
  t.equal(record.length, expected.length, 'record length')
  t.equal(record.offset, expected.length, 'record offset == length')
  t.ok(typeof record.finishedAt === 'string' && !Number.isNaN(Date.parse(record.finishedAt)), 'record has finishedAt')
  t.ok(Date.parse(record.finishedAt) >= Date.parse(record.createdAt), 'finishedAt is not before createdAt')
  t.strictSame(record.metadata, expected.metadata ?? {}, 'record metadata, decoded')
  t.strictSame(await readdir(server.directory), [], 'nothing left in the in-progress directory')
}

export const PATCH_HEADERS = { 'content-type': 'application/offset+octet-stream' } as const

// Plumbing for the raw-HTTP protocol tests: tus requests through the raw
// client, assertions on tus error answers and on what lies on disk.
import type { OutgoingHttpHeaders } from 'node:http'
import { readFile, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Test } from 'tap'
import type { UploadRecord } from '../types/index'
import type { Response } from './helpers'
import { rawRequest } from './raw-client'

export const OCTET = 'application/offset+octet-stream'
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Asserts a tus error answer: status, Tus-Resumable and the FST_TUS_* code of the JSON body (HEAD answers have none). */
export function assertError (t: Test, response: Response, statusCode: number, code: string, message = code, { head = false } = {}): void {
  t.equal(response.statusCode, statusCode, `${message}: status`)
  t.equal(response.headers['tus-resumable'], '1.0.0', `${message}: Tus-Resumable`)
  if (head) {
    t.equal(response.text, '', `${message}: no body on HEAD`)
    return
  }
  const body = response.json()
  t.equal(body.code, code, `${message}: code`)
  t.equal(body.statusCode, statusCode, `${message}: statusCode in body`)
}

/** Every entry under root, recursively, with its size: a fingerprint of what is on disk. */
export async function listTree (root: string): Promise<string[]> {
  const entries: string[] = []
  async function walk (dir: string): Promise<void> {
    for (const name of (await readdir(dir)).sort()) {
      const full = path.join(dir, name)
      const info = await stat(full)
      entries.push(`${path.relative(root, full)}${info.isDirectory() ? '/' : ` ${info.size}`}`)
      if (info.isDirectory()) await walk(full)
    }
  }
  await walk(root)
  return entries
}

export async function readRecordFile (dir: string, id: string): Promise<UploadRecord> {
  return JSON.parse(await readFile(path.join(dir, `${id}.meta`), 'utf8')) as UploadRecord
}

/** Names in a directory, sorted. */
export async function names (dir: string): Promise<string[]> {
  return (await readdir(dir)).sort()
}

export const base64 = (value: string | Buffer): string => Buffer.from(value).toString('base64')

export const pathOf = (url: string): string => new URL(url).pathname

/** Headers of a PATCH at `offset`. */
export const patchHeaders = (offset: number, extra: OutgoingHttpHeaders = {}): OutgoingHttpHeaders =>
  ({ 'tus-resumable': '1.0.0', 'content-type': OCTET, 'upload-offset': String(offset), ...extra })

/** A PATCH whose body has no Content-Length: sent chunk by chunk with chunked transfer encoding. */
export function patchChunked (url: string, offset: number, chunks: Buffer[], extra: OutgoingHttpHeaders = {}): Promise<Response> {
  return rawRequest(new URL(url).origin, { method: 'PATCH', path: pathOf(url), headers: patchHeaders(offset, extra), body: chunks })
}

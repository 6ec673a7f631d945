// Plumbing for the hook, hand-over and janitor tests: an app that can be
// configured before it listens, finished uploads made through the real server,
// records edited on disk to play the passing of time, a log collector, and
// probes of what a process leaves running (timers, inotify watches, intervals).
import { createHook } from 'node:async_hooks'
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { mkdtemp, readFile, rmdir, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { FastifyTusOptions, UploadRecord } from '../types/index'
import { TUS, send, startServer, type TestServer } from './helpers'

interface Teardown { teardown (fn: () => unknown): void }

export const HOUR = 3600_000
export const DAY = 24 * HOUR

/** startServer with a `configure` step before the app is ready: the only time tus hooks and Fastify hooks may be added. */
export async function startApp (
  t: Teardown,
  options: Partial<FastifyTusOptions>,
  configure: (app: FastifyInstance) => void | Promise<void>,
  fastifyOptions: FastifyServerOptions = {}
): Promise<TestServer> {
  return await startServer(t, options, fastifyOptions, configure)
}

/** Upload-Metadata for a map of values (null: a key without value). */
export function encodeMetadata (metadata: Record<string, string | null>): string {
  return Object.entries(metadata)
    .map(([key, value]) => value === null ? key : `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',')
}

/** An Upload-Metadata header decoded (to compare what HEAD sends back). */
export function decodeMetadata (header: unknown): Record<string, string | null> {
  const metadata: Record<string, string | null> = {}
  if (typeof header !== 'string' || header === '') return metadata
  for (const pair of header.split(',')) {
    const [key, value] = pair.trim().split(' ')
    metadata[key] = value === undefined ? null : Buffer.from(value, 'base64').toString('utf8')
  }
  return metadata
}

/** Creates and finishes an upload in one request (creation-with-upload); returns its id. */
export async function finishUpload (endpoint: string, body: Buffer, metadata?: Record<string, string | null>): Promise<string> {
  const headers: Record<string, string> = {
    ...TUS,
    'upload-length': String(body.length),
    'content-type': 'application/offset+octet-stream'
  }
  if (metadata !== undefined) headers['upload-metadata'] = encodeMetadata(metadata)
  const response = await send(endpoint, 'POST', headers, body)
  if (response.statusCode !== 201 || response.headers['upload-offset'] !== String(body.length)) {
    throw new Error(`creation with upload failed: ${response.statusCode} ${response.text}`)
  }
  const location = String(response.headers.location)
  return location.slice(location.lastIndexOf('/') + 1)
}

export async function readRecordAt (dir: string, id: string): Promise<UploadRecord> {
  return JSON.parse(await readFile(path.join(dir, `${id}.meta`), 'utf8')) as UploadRecord
}

/** Rewrites fields of a record on disk, as if it had been written at another time or state. */
export async function editRecord (dir: string, id: string, changes: Partial<UploadRecord>): Promise<UploadRecord> {
  const record = { ...await readRecordAt(dir, id), ...changes }
  await writeFile(path.join(dir, `${id}.meta`), JSON.stringify(record))
  return record
}

/** Sets a file's mtime (and atime) `ago` ms in the past. */
export async function backDate (file: string, ago: number): Promise<void> {
  const when = new Date(Date.now() - ago)
  await utimes(file, when, when)
}

export const isoAgo = (ago: number): string => new Date(Date.now() - ago).toISOString()

export interface LogLine { level: number, msg?: string, uploadId?: string | null, hook?: string, err?: { message?: string }, [key: string]: unknown }

/** A pino destination that keeps every line, parsed. */
export function logCollector (): { lines: LogLine[], stream: Writable } {
  const lines: LogLine[] = []
  const stream = new Writable({
    write (chunk, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line))
      callback()
    }
  })
  return { lines, stream }
}

/** inotify watches this process holds (fs.watch); unref'd watchers are invisible to getActiveResourcesInfo. */
export function inotifyWatches (): number {
  let watches = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (!readlinkSync(`/proc/self/fd/${fd}`).includes('inotify')) continue
      watches += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((line) => line.startsWith('inotify wd:')).length
    } catch {
      // the fd was closed while we looked
    }
  }
  return watches
}

/** Ref'd timers of this process. */
export const activeTimeouts = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length

/**
 * Follows every setInterval with the given period created from now on, until
 * `stop`; `live()` are those never cleared. Unref'd intervals are invisible to
 * getActiveResourcesInfo; async hooks see them all.
 */
export function trackIntervals (period: number): { live: () => NodeJS.Timeout[], created: () => number, stop: () => void } {
  const live = new Map<number, NodeJS.Timeout>()
  let created = 0
  const hook = createHook({
    init (asyncId, type, _trigger, resource) {
      if (type === 'Timeout' && (resource as { _repeat?: number | null })._repeat === period) {
        live.set(asyncId, resource as NodeJS.Timeout)
        created++
      }
    },
    destroy (asyncId) { live.delete(asyncId) }
  }).enable()
  return { live: () => [...live.values()], created: () => created, stop: () => { hook.disable() } }
}

/** A fresh tmpfs of `size` bytes (needs root): another filesystem, and one that fills up. */
export async function mountTmpfs (t: Teardown, size: number): Promise<string> {
  const mountPoint = await mkdtemp(path.join(tmpdir(), 'fastify-tus-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mountPoint], { stdio: 'pipe' })
  } catch (error) {
    await rmdir(mountPoint)
    throw new Error(`this test mounts a tmpfs and must run as root: ${(error as Error).message}`)
  }
  t.teardown(async () => {
    execFileSync('umount', [mountPoint], { stdio: 'pipe' })
    await rmdir(mountPoint)
  })
  return mountPoint
}

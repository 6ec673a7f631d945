// Plumbing for the `fastify-tus upload` tests: the built CLI in a child
// process against a real server, and a log of what that server was asked.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { FastifyTusOptions, UploadRecord } from '../types/index'
import { startServer, tempDir, type TestServer } from './helpers'
import { CLI, runNode, type Exit, type Ran } from './process-helpers'

interface Teardown { teardown (fn: () => unknown): void }

export interface Seen {
  method: string
  url: string
  offset: string | undefined
  concat: string | undefined
  checksum: string | undefined
  authorization: string | undefined
  status?: number
}

/** A test server that records every request it receives, and its status once answered. */
export async function loggingServer (
  t: Teardown,
  options: Partial<FastifyTusOptions> = {},
  configure: (app: FastifyInstance) => void | Promise<void> = () => {}
): Promise<TestServer & { seen: Seen[] }> {
  const seen: Seen[] = []
  const server = await startServer(t, options, {}, async (app) => {
    logRequests(app, seen)
    await configure(app)
  })
  return { ...server, seen }
}

function logRequests (app: FastifyInstance, seen: Seen[]): void {
  const entries = new WeakMap<object, Seen>()
  app.addHook('onRequest', async (request) => {
    const header = (name: string): string | undefined => request.headers[name] as string | undefined
    const entry = { method: request.method, url: request.url, offset: header('upload-offset'), concat: header('upload-concat'), checksum: header('upload-checksum'), authorization: header('authorization') }
    seen.push(entry)
    entries.set(request, entry)
  })
  app.addHook('onResponse', async (request, reply) => {
    const entry = entries.get(request)
    if (entry !== undefined) entry.status = reply.statusCode
  })
}

export interface Scratch {
  dir: string
  store: string
  /** The environment the CLI runs in: its config and temporary directories inside `dir`. */
  env: NodeJS.ProcessEnv
}

export async function scratch (t: Teardown): Promise<Scratch> {
  const dir = await tempDir(t, 'fastify-tus-cli-')
  return { dir, store: path.join(dir, 'store.json'), env: { ...process.env, XDG_CONFIG_HOME: path.join(dir, 'config'), TMPDIR: dir } }
}

export async function writeRandom (dir: string, name: string, size: number): Promise<{ file: string, bytes: Buffer }> {
  const bytes = randomBytes(size)
  const file = path.join(dir, name)
  await writeFile(file, bytes)
  return { file, bytes }
}

/** Runs `fastify-tus upload ...args` to its end. */
export async function upload (where: Scratch, args: string[], timeout = 60_000): Promise<Ran> {
  return await runNode([CLI, 'upload', ...args], { cwd: where.dir, env: where.env, timeout })
}

export interface Running {
  child: ChildProcess
  exit: Promise<Exit>
  stderr: () => string
}

/** Starts `fastify-tus upload ...args` without waiting for it; killed at teardown if still running. */
export function startUpload (t: Teardown, where: Scratch, args: string[]): Running {
  const child = spawn(process.execPath, [CLI, 'upload', ...args], { cwd: where.dir, env: where.env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  // 'close': stderr has been read to its end.
  const exit = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exit
  })
  return { child, exit, stderr: () => stderr }
}

/** The URL printed on the result line of `label`. */
export function urlOf (stdout: string, label: string): string | undefined {
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(`${label}: `))
  return line?.slice(label.length + 2).split(' ')[0]
}

export async function finished (server: TestServer, url: string): Promise<{ record: UploadRecord, data: Buffer }> {
  const id = url.slice(url.lastIndexOf('/') + 1)
  return {
    record: JSON.parse(await readFile(path.join(server.completedDir, `${id}.meta`), 'utf8')),
    data: await readFile(path.join(server.completedDir, id))
  }
}

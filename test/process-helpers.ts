// Plumbing for tests that run the built package in real child processes: the
// package root, building dist/ when it is missing, running node to completion,
// and starting a long-lived process that announces itself on stdout.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'

export const ROOT = path.join(__dirname, '..')
export const CLI = path.join(ROOT, 'dist', 'cli', 'index.js')

interface Teardown { teardown (fn: () => unknown): void }

/** Whether another process could take the upload's flock now (flock(1), which exits 0 when it is free). */
export function lockIsFree (file: string): boolean {
  try {
    execFileSync('flock', ['-n', '-x', file, 'true'])
    return true
  } catch {
    return false
  }
}

/** Builds dist/ when it is missing (npm test builds it before running tap). */
export function ensureBuilt (): void {
  if (existsSync(path.join(ROOT, 'dist', 'index.js')) && existsSync(CLI)) return
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' })
}

/** The newest modification time of the files under `dir`, recursively. */
function newestIn (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestIn(full) : statSync(full).mtimeMs)
  }
  return newest
}

/** Like ensureBuilt, and rebuilds dist/ when lib/ changed since: tests that run the CLI test today's code. */
export function ensureFreshBuild (): void {
  const built = existsSync(CLI) ? statSync(CLI).mtimeMs : 0
  if (built >= newestIn(path.join(ROOT, 'lib'))) return
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' })
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Ran extends Exit {
  stdout: string
  stderr: string
}

function collect (child: ChildProcess): { stdout: () => string, stderr: () => string } {
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  return { stdout: () => stdout, stderr: () => stderr }
}

function exitOf (child: ChildProcess): Promise<Exit> {
  // 'close', not 'exit': by then stdout and stderr have been read to the end.
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
}

/** Runs `node ...args` to its end; a process still running after `timeout` ms is killed and reported. */
export async function runNode (args: string[], options: SpawnOptions & { timeout?: number } = {}): Promise<Ran> {
  const { timeout = 20_000, ...spawnOptions } = options
  const child = spawn(process.execPath, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = collect(child)
  const exit = exitOf(child)
  const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
  const { code, signal } = await exit
  clearTimeout(timer)
  if (signal === 'SIGKILL') throw new Error(`node ${args.join(' ')} ran longer than ${timeout} ms:\n${output.stdout()}${output.stderr()}`)
  return { code, signal, stdout: output.stdout(), stderr: output.stderr() }
}

export interface Started {
  child: ChildProcess
  /** The match of `ready` in stdout. */
  match: RegExpExecArray
  exit: Promise<Exit>
  stdout: () => string
  stderr: () => string
}

/**
 * Starts `node ...args` (through `launcher`, a command that runs the rest, when given) and resolves
 * once its stdout matches `ready`; killed at teardown if still running.
 */
export async function startNode (t: Teardown, args: string[], ready: RegExp, options: SpawnOptions & { timeout?: number, launcher?: string[] } = {}): Promise<Started> {
  const { timeout = 20_000, launcher = [], ...spawnOptions } = options
  const [command, ...before] = [...launcher, process.execPath]
  const child = spawn(command, [...before, ...args], { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = collect(child)
  const exit = exitOf(child)
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exit
  })
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${ready} on stdout within ${timeout} ms:\n${output.stdout()}${output.stderr()}`)), timeout)
    const check = (): void => {
      const found = ready.exec(output.stdout())
      if (found === null) return
      clearTimeout(timer)
      child.stdout!.off('data', check)
      resolve(found)
    }
    child.stdout!.on('data', check)
    void exit.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`node ${args.join(' ')} exited (${code ?? signal}) before ${ready}:\n${output.stdout()}${output.stderr()}`))
    })
  })
  return { child, match, exit, ...output }
}

/** Resolves with the exit, or with undefined when the process is still running after `ms`. */
export async function exitWithin (started: Started, ms: number): Promise<Exit | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms) })
  try {
    return await Promise.race([started.exit, late])
  } finally {
    clearTimeout(timer)
  }
}

// Worker processes that claim finished uploads (test/fixtures/claim-worker.ts),
// each forked with this process's TypeScript loader and reporting over IPC
// what it claimed and saved.
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import type { Test } from 'tap'
import type { WorkerMessage } from './fixtures/claim-worker'

const WORKER = path.join(__dirname, 'fixtures', 'claim-worker.ts')

export interface Worker {
  child: ChildProcess
  messages: WorkerMessage[]
  stderr: () => string
  /** The first message of this kind (already received or to come). */
  next: <E extends WorkerMessage['event']> (event: E) => Promise<Extract<WorkerMessage, { event: E }>>
  exit: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  claimed: () => string[]
  saved: () => string[]
}

export interface WorkerOptions {
  /** waitForFile's pollInterval; default: its own. */
  pollInterval?: number
  /** The module to take waitForFile from (the package root, for the built package); default: lib/index.ts. */
  entry?: string
}

/** Forks a worker; `timeout` is each wait's, so a 'loop' worker ends once no file came for that long. Killed at teardown. */
export function startWorker (t: Test, completedDir: string, destDir: string, mode: 'loop' | 'one' | 'hold', timeout: number, options: WorkerOptions = {}): Worker {
  const args = [completedDir, destDir, mode, String(timeout)]
  if (options.pollInterval !== undefined || options.entry !== undefined) args.push(String(options.pollInterval ?? 1000))
  if (options.entry !== undefined) args.push(options.entry)
  // Run with this process's execArgv: the TypeScript loader tap runs us with.
  const child = fork(WORKER, args, { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
  const messages: WorkerMessage[] = []
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  child.on('message', (message: WorkerMessage) => { messages.push(message) })
  const exit = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exit
  })
  const next = <E extends WorkerMessage['event']> (event: E): Promise<Extract<WorkerMessage, { event: E }>> => new Promise((resolve, reject) => {
    const found = messages.find((message) => message.event === event)
    if (found !== undefined) return resolve(found as Extract<WorkerMessage, { event: E }>)
    const onMessage = (message: WorkerMessage): void => {
      if (message.event !== event) return
      child.off('message', onMessage)
      resolve(message as Extract<WorkerMessage, { event: E }>)
    }
    child.on('message', onMessage)
    void exit.then(({ code, signal }) => reject(new Error(`worker ${mode} exited (${code ?? signal}) before "${event}": ${JSON.stringify(messages)}\n${stderr}`)))
  })
  const ids = (event: 'claimed' | 'saved') => (): string[] => messages.flatMap((message) => message.event === event ? [message.id] : [])
  return { child, messages, stderr: () => stderr, next, exit, claimed: ids('claimed'), saved: ids('saved') }
}

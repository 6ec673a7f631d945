// Worker processes that claim finished uploads (test/fixtures/claim-worker.ts),
// each forked with this process's TypeScript loader and reporting over IPC
// what it claimed and saved.
import path from 'node:path'
import type { Test } from 'tap'
import type { WorkerMessage } from './fixtures/claim-worker'
import { forkFixture, type Forked } from './fork-helpers'

const WORKER = path.join(__dirname, 'fixtures', 'claim-worker.ts')

export interface Worker extends Forked<WorkerMessage> {
  claimed: () => string[]
  saved: () => string[]
  /** Ends a 'loop' worker's wait for more: it exits once it has saved what it claimed. */
  stop: () => void
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
  const forked = forkFixture<WorkerMessage>(t, WORKER, args)
  const ids = (event: 'claimed' | 'saved') => (): string[] => forked.messages.flatMap((message) => message.event === event ? [message.id] : [])
  const stop = (): void => { if (forked.child.connected) forked.child.send('stop') }
  return { ...forked, claimed: ids('claimed'), saved: ids('saved'), stop }
}

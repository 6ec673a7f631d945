// tus server processes for the multi-process tests (test/fixtures/tus-server.ts):
// several real processes serving one directory, each saying over IPC where it
// listens, what it handed over and what its janitor did.
import path from 'node:path'
import type { ServerMessage } from './fixtures/tus-server'
import { forkFixture, type Forked } from './fork-helpers'

interface Teardown { teardown (fn: () => unknown): void }

const SERVER = path.join(__dirname, 'fixtures', 'tus-server.ts')

export interface ServerProcess extends Forked<ServerMessage> {
  endpoint: string
  /** Ids this process announced with tus:completed, in order. */
  completed: () => string[]
  /** Closes the app; resolves with the exit. */
  stop: () => Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

export interface ServerProcessOptions {
  /** Run a janitor pass this often (ms after the last ended); default never (but the one at start). */
  janitorEvery?: number
  /** Extra environment of the process. */
  env?: NodeJS.ProcessEnv
}

/** Starts a server process on the directories and resolves once it listens; killed at teardown. */
export async function startServerProcess (t: Teardown, directory: string, completedDir: string, options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const args = [directory, completedDir]
  if (options.janitorEvery !== undefined) args.push(String(options.janitorEvery))
  const forked = forkFixture<ServerMessage>(t, SERVER, args, { ...process.env, ...options.env })
  const { endpoint } = await forked.next('listening')
  return {
    ...forked,
    endpoint,
    completed: () => forked.messages.flatMap((message) => message.event === 'completed' ? [message.id] : []),
    stop: async () => {
      if (forked.child.connected) forked.child.send('stop')
      return await forked.exit
    }
  }
}

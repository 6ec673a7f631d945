// `fastify-tus serve` as one node of a multi-node test: its own process on a
// directory that other nodes share (one local directory, or one mount each of a
// shared filesystem).
import path from 'node:path'
import { CLI, startNode, type Started } from './process-helpers'

interface Teardown { teardown (fn: () => unknown): void }

export interface TusNode {
  name: string
  /** The tus endpoint, e.g. http://127.0.0.1:PORT/files */
  endpoint: string
  port: number
  uploads: string
  completed: string
  process: Started
}

/** A node serving `<root>/uploads` and `<root>/completed`; `flags` go to `fastify-tus serve`; `timeout`: for it to listen. */
export async function startTusNode (t: Teardown, name: string, root: string, flags: string[] = [], timeout?: number): Promise<TusNode> {
  const uploads = path.join(root, 'uploads')
  const completed = path.join(root, 'completed')
  const started = await startNode(t, [CLI, 'serve', '--port', '0', '--directory', uploads, '--completed-dir', completed, '--log-level', 'warn', ...flags],
    /listening on (http:\/\/\S+)\n/, { timeout })
  const endpoint = started.match[1]
  return { name, endpoint, port: Number(new URL(endpoint).port), uploads, completed, process: started }
}

/** The error lines a node logged (it runs at level warn: any is a failure it hid from its clients). */
export function loggedErrors (node: TusNode): string[] {
  return node.process.stdout().split('\n').filter((line) => line.startsWith('{') && (JSON.parse(line) as { level: number }).level >= 50)
}

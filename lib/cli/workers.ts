// `fastify-tus serve --workers N`: N node:cluster workers on one port. The
// primary serves nothing: it starts the workers, starts another when one dies,
// and passes SIGTERM/SIGINT on for a graceful stop. Every worker is a whole
// server; they share nothing but the directories, as separate machines would.
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'

interface Listening { event: 'fastify-tus:listening', url: string }

export const isWorker = (): boolean => cluster.isWorker

/** Tells the primary that this worker serves `url`. */
export function announceWorker (url: string): void {
  const message: Listening = { event: 'fastify-tus:listening', url }
  process.send!(message)
}

/** Rethrows `error`; a worker first lets go of its channel to the primary, which would keep it alive. */
export function leaveCluster (error: unknown): never {
  if (cluster.isWorker && process.connected) cluster.worker!.disconnect()
  throw error
}

const isListening = (message: unknown): message is Listening => (message as Listening | null)?.event === 'fastify-tus:listening'

/**
 * Runs `requested` workers (0: one per CPU) until a signal stops them; resolves with the exit code.
 * A worker that dies after it served is replaced; one that dies before it listened (a bad option,
 * a port in use) stops them all, since its replacement would die the same way.
 */
export function superviseWorkers (requested: number): Promise<number> {
  const count = requested === 0 ? availableParallelism() : requested
  const live = new Set<Worker>()
  const served = new WeakSet<Worker>()
  let stopping = false
  let announced = false
  let code = 0
  return new Promise<number>((resolve) => {
    const start = (): void => {
      const worker = cluster.fork()
      live.add(worker)
      worker.on('message', (message: unknown) => {
        if (!isListening(message)) return
        served.add(worker)
        if (announced) {
          process.stdout.write(`fastify-tus worker ${worker.process.pid} listening\n`)
        } else if ([...live].every((each) => served.has(each)) && live.size === count) {
          announced = true
          process.stdout.write(`fastify-tus listening on ${message.url} (${count} workers)\n`)
        }
      })
    }
    const stop = (): void => {
      stopping = true
      for (const worker of live) worker.process.kill('SIGTERM')
      if (live.size === 0) resolve(code)
    }
    cluster.on('exit', (worker, exitCode, signal) => {
      live.delete(worker)
      if (stopping) {
        if (exitCode !== 0) code = 1
        if (live.size === 0) resolve(code)
        return
      }
      const how = signal ?? `code ${exitCode}`
      if (!served.has(worker)) {
        process.stderr.write(`fastify-tus: worker ${worker.process.pid} exited (${how}) before it listened; stopping\n`)
        code = 1
        stop()
        return
      }
      process.stderr.write(`fastify-tus: worker ${worker.process.pid} died (${how}); starting another\n`)
      start()
    })
    for (const name of ['SIGINT', 'SIGTERM'] as const) process.once(name, stop)
    for (let i = 0; i < count; i++) start()
  })
}

// A test fixture forked as a real child process with this process's TypeScript
// loader, reporting over IPC: every message kept, and a wait for the next one
// of a kind that fails when the process dies first. Killed at teardown.
import { fork, type ChildProcess } from 'node:child_process'

interface Teardown { teardown (fn: () => unknown): void }

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface Forked<M extends { event: string }> {
  child: ChildProcess
  messages: M[]
  stderr: () => string
  /** The first message of this kind after the `after`-th message (already received or to come). */
  next: <E extends M['event']> (event: E, after?: number) => Promise<Extract<M, { event: E }>>
  exit: Promise<Exit>
}

export function forkFixture<M extends { event: string }> (t: Teardown, file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Forked<M> {
  // Run with this process's execArgv: the TypeScript loader tap runs us with.
  const child = fork(file, args, { env, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
  const messages: M[] = []
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  child.on('message', (message: M) => { messages.push(message) })
  const exit = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exit
  })
  const next = <E extends M['event']> (event: E, after = 0): Promise<Extract<M, { event: E }>> => new Promise((resolve, reject) => {
    const found = messages.slice(after).find((message) => message.event === event)
    if (found !== undefined) return resolve(found as Extract<M, { event: E }>)
    const onMessage = (message: M): void => {
      if (message.event !== event) return
      child.off('message', onMessage)
      resolve(message as Extract<M, { event: E }>)
    }
    child.on('message', onMessage)
    void exit.then(({ code, signal }) => reject(new Error(`${file} exited (${code ?? signal}) before "${event}": ${JSON.stringify(messages)}\n${stderr}`)))
  })
  return { child, messages, stderr: () => stderr, next, exit }
}

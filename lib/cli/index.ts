#!/usr/bin/env node
// `fastify-tus <command>`: the command-line entry.
// Each command loads only its own modules: the upload client's (tus-js-client and
// its dependencies) cost a server several MiB of RSS and start-up time for nothing.

const USAGE = `Usage: fastify-tus <command> [options]

Commands:
  serve    run a tus upload server (fastify-tus serve --help)
  upload   upload files to a tus server, resuming across runs (fastify-tus upload --help)
`

// libuv's thread pool (4 threads unless UV_THREADPOOL_SIZE says otherwise) runs every
// fsync, and an fsync holds its thread until the disk has the bytes: with 4, concurrent
// uploads wait for a free thread rather than for the disk. Read when the pool first starts,
// which nothing has made it do yet; a size the user set is kept. Workers inherit it.
const THREAD_POOL_SIZE = '64'

function useThreadPool (): void {
  process.env.UV_THREADPOOL_SIZE ??= THREAD_POOL_SIZE
}

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === 'serve') {
    useThreadPool()
    const { sweepArrayBuffersInScavenges } = await import('../array-buffer-sweeping')
    sweepArrayBuffersInScavenges()
    return await (await import('./serve')).runServe(rest)
  }
  if (command === 'upload') return await (await import('./upload')).runUpload(rest)
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(USAGE)
    return command === undefined ? 1 : 0
  }
  process.stderr.write(`Unknown command "${command}"\n\n${USAGE}`)
  return 1
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (error: Error) => {
  process.stderr.write(`fastify-tus: ${error.message}\n`)
  process.exitCode = 1
})

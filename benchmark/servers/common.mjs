// Plumbing shared by the benchmark servers: arguments, the ready line, exit.
import { parseArgs } from 'node:util'

/** `--dir <root>` (the run's fresh temporary directory) and any extra string options. */
export function serverArgs (extra = {}) {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, ...extra }, strict: true })
  if (values.dir === undefined) throw new Error('--dir is required')
  return values
}

/** Prints the port (the harness waits for this line) and exits cleanly on SIGTERM, so --cpu-prof writes its profile. */
export function ready (server) {
  // Long single uploads must not be cut by Node's default 300 s request timeout on a slow disk.
  server.requestTimeout = 0
  process.on('SIGTERM', () => process.exit(0))
  process.stdout.write(`${server.address().port}\n`)
}

export const TUS_HEADERS = { 'Tus-Resumable': '1.0.0' }

// `fastify-tus upload`: a tus client on the command line, built on
// tus-js-client. It speaks tus over HTTP like any client (it knows nothing of
// the server's store) and resumes across runs from the URLs it remembers.
import { parseFlags } from './flags'
import { createProgress, formatBytes } from './progress-bars'
import { createRandomFile, type RandomFile } from './random-file'
import { requireChecksum } from './upload-errors'
import { uploadFile, retryDelays, type Context, type Outcome, type Target } from './upload-file'
import { UPLOAD_FLAGS, defaultUploadOptions, uploadHelp } from './upload-flags'
import { UploadStore } from './upload-store'

const DEFAULT_RANDOM_SIZE = 1024 * 1024

export async function runUpload (args: string[]): Promise<number> {
  const parsed = parseFlags(args, UPLOAD_FLAGS, defaultUploadOptions(), true)
  if (parsed === undefined) {
    process.stdout.write(uploadHelp())
    return 0
  }
  const { options, positionals: files } = parsed
  const { endpoint } = options
  if (endpoint === undefined) throw new Error('--endpoint URL is required (see fastify-tus upload --help)')
  if (files.length > 0 && options.size !== undefined) throw new Error('--size is for random data: leave it out when giving a FILE')
  if (options.checksum !== undefined) {
    await requireChecksum({ endpoint, headers: options.headers }, options.checksum, retryDelays(options.retries))
  }
  const random = files.length === 0 ? await createRandomFile(options.size ?? DEFAULT_RANDOM_SIZE) : undefined
  const targets: Target[] = random === undefined
    ? files.map((file) => ({ path: file, label: file, temporary: false }))
    : [{ path: random.path, label: `random data (${random === undefined ? 0 : options.size ?? DEFAULT_RANDOM_SIZE} bytes)`, temporary: true }]
  const context: Context = { options: { ...options, endpoint }, store: new UploadStore(options.store), progress: createProgress() }
  const outcomes = await uploadAll(targets, context, random)
  for (const outcome of outcomes) report(outcome)
  const failed = outcomes.filter((outcome) => !outcome.ok).length
  if (failed > 0) process.stderr.write(`fastify-tus upload: ${failed} of ${outcomes.length} ${outcomes.length === 1 ? 'upload' : 'uploads'} failed\n`)
  return failed === 0 ? 0 : 1
}

/** One file after the other (each may itself be --parallel); a failed file does not stop the others. */
async function uploadAll (targets: Target[], context: Context, random: RandomFile | undefined): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  const stopOnSignal = interruptible(context, random)
  try {
    for (const target of targets) outcomes.push(await uploadFile(target, context))
  } finally {
    stopOnSignal()
    context.progress.stop()
    await random?.remove()
  }
  return outcomes
}

/**
 * Ctrl-C or SIGTERM: leave the terminal as it was and exit at once (130 or
 * 143). What the server holds and the remembered URLs stay for the next run.
 * Returns the function that removes the listeners.
 */
function interruptible (context: Context, random: RandomFile | undefined): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    context.progress.stop()
    random?.removeSync()
    const resume = random === undefined ? ': run the same command again to resume' : ''
    process.stderr.write(`fastify-tus upload: interrupted by ${signal}${resume}\n`)
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  return () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

function report (outcome: Outcome): void {
  if (!outcome.ok) {
    process.stderr.write(`fastify-tus upload: ${outcome.target.label}: ${outcome.message}\n`)
    return
  }
  const resumed = outcome.resumedAt > 0 ? `, resumed at byte ${outcome.resumedAt}` : ''
  process.stdout.write(`${outcome.target.label}: ${outcome.url} (${outcome.size} bytes, ${formatBytes(outcome.size)}, in ${outcome.seconds.toFixed(1)} s${resumed})\n`)
}

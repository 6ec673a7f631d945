// A worker process with no server: it claims each finished upload exactly once
// (any number of workers, in any number of processes, share the work) and moves
// it to ./dest under its client-given name. Run beside any fastify-tus server
// that uses the same completedDir.
import path from 'node:path'
import { waitForFile } from 'fastify-tus'

async function main (): Promise<void> {
  const completedDir = process.env.COMPLETED_DIR ?? './completed'
  const controller = new AbortController()
  process.once('SIGTERM', () => controller.abort())
  console.log(`worker waiting on ${completedDir}`)

  try {
    for (;;) {
      const file = await waitForFile(completedDir, { signal: controller.signal })
      try {
        const dest = path.join('./dest', file.name)
        await file.save(dest)
        console.log(`saved ${file.id} as ${dest}`)
      } finally {
        await file.release()
      }
    }
  } catch (error) {
    if ((error as Error).name !== 'AbortError') throw error
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

// The smallest upload server: tus on /files, finished uploads in ./completed.
// Run: npx tsx examples/basic.ts (or compile it); PORT picks the port (0: any free one).
import Fastify from 'fastify'
import tus from 'fastify-tus'

async function main (): Promise<void> {
  const app = Fastify({ logger: true })
  await app.register(tus, { directory: './uploads', completedDir: './completed' })
  app.tus.addHook('tus:completed', (upload) => {
    app.log.info({ id: upload.id, name: upload.metadata.filename }, 'a file arrived')
  })

  const address = await app.listen({ port: Number(process.env.PORT ?? 1080), host: '127.0.0.1' })
  console.log(`listening on ${address}/files`)
  process.once('SIGTERM', () => { void app.close() })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

// An upload page in an application of your own: Uppy's Dashboard with its tus
// plugin, served from the uppy package, uploading to the plugin on /files.
import { createReadStream } from 'node:fs'
import Fastify from 'fastify'
import tus from 'fastify-tus'

const uppyDist = (file: string): string => require.resolve(`uppy/dist/${file}`)

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Upload</title>
  <link rel="stylesheet" href="/assets/uppy.min.css">
</head>
<body>
  <div id="uploader"></div>
  <script type="module">
    import { Uppy, Dashboard, Tus } from '/assets/uppy.min.mjs'
    new Uppy()
      .use(Dashboard, { inline: true, target: '#uploader' })
      .use(Tus, { endpoint: '/files', chunkSize: 8 * 1024 * 1024 })
  </script>
</body>
</html>
`
const ASSETS: Record<string, string> = {
  'uppy.min.css': 'text/css; charset=utf-8',
  'uppy.min.mjs': 'text/javascript; charset=utf-8'
}

async function main (): Promise<void> {
  const app = Fastify({ logger: true })
  await app.register(tus, { directory: './uploads', completedDir: './completed' })
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
  app.get<{ Params: { file: string } }>('/assets/:file', async (request, reply) => {
    const type = ASSETS[request.params.file]
    if (type === undefined) return await reply.code(404).send()
    return await reply.type(type).header('Cache-Control', 'public, max-age=86400').send(createReadStream(uppyDist(request.params.file)))
  })

  const address = await app.listen({ port: Number(process.env.PORT ?? 1080), host: '127.0.0.1' })
  console.log(`listening on ${address}/files`)
  process.once('SIGTERM', () => { void app.close() })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

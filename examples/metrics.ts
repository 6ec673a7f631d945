// Ready for an orchestrator: Prometheus metrics on /metrics, a health route on
// /health (503 under pressure or below the free-space floor) through
// @fastify/under-pressure's own health check, and a graceful stop on SIGTERM.
import Fastify from 'fastify'
import underPressure from '@fastify/under-pressure'
import { Registry, collectDefaultMetrics } from 'prom-client'
import tus from 'fastify-tus'

const registry = new Registry()
collectDefaultMetrics({ register: registry })

async function main (): Promise<void> {
  const app = Fastify({ logger: true })
  // Registered before the plugin, so that the plugin sheds load through this one.
  await app.register(underPressure, {
    maxEventLoopDelay: 1000,
    exposeStatusRoute: '/health',
    // Called once at register (before the plugin exists) and on every GET /health.
    healthCheck: async () => !app.hasDecorator('tus') || (await app.tus.health()).ok
  })
  await app.register(tus, {
    directory: './uploads',
    completedDir: './completed',
    metrics: { registry },
    minFreeSpace: 1024 ** 3 // refuse new uploads below 1 GiB free
  })
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))

  const address = await app.listen({ port: Number(process.env.PORT ?? 1080), host: '127.0.0.1' })
  console.log(`listening on ${address}/files`)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => { void app.close() })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

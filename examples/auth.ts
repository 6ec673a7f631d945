// Authentication and ownership: every request needs a known bearer token, and
// an upload can only be resumed, read or deleted by the user who created it.
import Fastify, { type FastifyRequest } from 'fastify'
import tus from 'fastify-tus'

// In a real app: sessions, JWTs, an identity provider.
const USERS = new Map([['Bearer alice-token', 'alice'], ['Bearer bob-token', 'bob']])
const userOf = new WeakMap<FastifyRequest, string>()

function httpError (statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode })
}

async function main (): Promise<void> {
  const app = Fastify({ logger: true })
  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS') return // CORS preflights carry no credentials
    const user = USERS.get(request.headers.authorization ?? '')
    if (user === undefined) throw httpError(401, 'Unauthorized')
    userOf.set(request, user)
  })
  await app.register(tus, {
    directory: './uploads',
    completedDir: './completed',
    hooks: {
      // The owner goes into serverMetadata: stored with the upload, never shown to clients.
      'tus:preCreate': async (request) => ({ serverMetadata: { owner: userOf.get(request) } }),
      'tus:preAccess': async (request, upload) => {
        if (upload.serverMetadata.owner !== userOf.get(request)) throw httpError(403, 'This upload belongs to someone else')
      }
    }
  })

  const address = await app.listen({ port: Number(process.env.PORT ?? 1080), host: '127.0.0.1' })
  console.log(`listening on ${address}/files`)
  process.once('SIGTERM', () => { void app.close() })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

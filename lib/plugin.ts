// The plugin: resolves options, opens the store, decorates the instance with
// `tus` and registers the routes in their own encapsulated context.
import { setMaxListeners } from 'node:events'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import underPressure from '@fastify/under-pressure'
import type { FastifyTusOptions, ResolvedTusOptions, TusHookHandlers, TusHookName, TusServer, UploadRecord, WaitForFileOptions } from '../types/index'
import { sweepArrayBuffersInScavenges } from './array-buffer-sweeping'
import { corsOptions } from './cors'
import { FST_TUS_SHUTTING_DOWN } from './errors'
import { FreeSpaceFloor } from './free-space'
import { Hooks } from './hooks'
import { StoreJanitor } from './janitor'
import { TusMetrics } from './metrics'
import { resolveOptions } from './options'
import { protocolRoutes } from './protocols/routes'
import { FileStore } from './store/index'
import { canPreallocate } from './store/space'
import { waitForFile } from './wait-for-file'

async function tus (app: FastifyInstance, input: FastifyTusOptions): Promise<void> {
  const options = resolveOptions(input)
  sweepArrayBuffersInScavenges()
  // The plugin's own listeners come before the application's, so that counts never depend on them.
  const metrics = options.metrics === false ? undefined : new TusMetrics(options.metrics)
  const hooks = new Hooks()
  metrics?.listen(hooks)
  hooks.addAll(options.hooks)
  const store = new FileStore({
    ...options,
    // Runs for every hand-over, from a request or from the janitor; a refusal fails the upload.
    beforeFinish: async (record: UploadRecord) => {
      try {
        await hooks.run('tus:preFinish', record)
      } catch (error) {
        await hooks.failed(app.log, error as Error, record)
        throw error
      }
    }
  })
  await store.open()
  if (options.preallocate && !canPreallocate) {
    app.log.warn('fastify-tus: the fallocate addon is not available; creation checks free space with statvfs instead')
  }
  const janitor = new StoreJanitor(store, hooks, options.janitor, app.log, (report) => metrics?.janitorReport(report))
  const floor = new FreeSpaceFloor(options.directory, options.minFreeSpace)
  await floor.start()
  // Waits started through the app end when the app closes; any number may be pending.
  const closing = new AbortController()
  setMaxListeners(0, closing.signal)

  app.addHook('onReady', async () => {
    hooks.seal()
    janitor.start()
  })
  // Before the server closes (it waits for the answers): bodies still streaming end, their bytes recorded, answered 503.
  app.addHook('preClose', async () => {
    store.stopWrites(new FST_TUS_SHUTTING_DOWN())
  })
  app.addHook('onClose', async () => {
    closing.abort()
    floor.stop()
    await janitor.stop()
    await store.close()
  })

  const server: TusServer = Object.freeze({
    options,
    store,
    janitor,
    addHook: (name: TusHookName, listener: TusHookHandlers[TusHookName]) => hooks.add(name, listener),
    waitForFile: async (waitOptions: WaitForFileOptions = {}) => {
      const file = await waitForFile(options.completedDir, {
        ...waitOptions,
        signal: waitOptions.signal === undefined ? closing.signal : AbortSignal.any([waitOptions.signal, closing.signal])
      })
      metrics?.claims.inc()
      return file
    },
    health: () => floor.health()
  })
  app.decorate('tus', server)

  await app.register((child) => protocolContext(child, { options, store, hooks, metrics, floor }), { prefix: options.prefix })
}

interface ContextParts {
  options: ResolvedTusOptions
  store: FileStore
  hooks: Hooks
  metrics: TusMetrics | undefined
  floor: FreeSpaceFloor
}

// The encapsulated context of the tus routes: CORS, shedding, metrics and the free-space floor around them.
async function protocolContext (child: FastifyInstance, { options, store, hooks, metrics, floor }: ContextParts): Promise<void> {
  // An application that already answers CORS with @fastify/cors covers these routes with its own settings.
  if (options.cors !== false && !child.hasRequestDecorator('corsPreflightEnabled')) {
    await child.register(cors, corsOptions(options.cors, options.ietf))
    // @fastify/cors's own route answers preflights on upload URLs with a bare 200; tus's OPTIONS is 204.
    child.addHook('onSend', async (request, reply) => {
      if (request.method === 'OPTIONS' && reply.statusCode === 200) reply.code(204)
    })
  }
  // An application that already sheds load with under-pressure covers these routes too.
  if (options.underPressure !== false && !child.hasDecorator('isUnderPressure')) {
    await child.register(underPressure, { ...options.underPressure })
  }
  metrics?.instrument(child)
  if (options.minFreeSpace > 0) floor.guard(child)
  await child.register(protocolRoutes, { options, store, hooks, received: metrics === undefined ? undefined : (bytes) => { metrics.bytes.inc(bytes) } })
}

export const fastifyTus = fp(tus, { fastify: '5.x', name: 'fastify-tus' })

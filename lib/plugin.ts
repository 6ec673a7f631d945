// The plugin: resolves options, opens the store, decorates the instance with
// `tus` and registers the protocols' routes in their own encapsulated context.
import { setMaxListeners } from 'node:events'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import underPressure from '@fastify/under-pressure'
import type { FastifyTusOptions, TusHookHandlers, TusHookName, TusServer, UploadRecord, WaitForFileOptions } from '../types/index'
import { corsOptions } from './cors'
import { Hooks } from './hooks'
import { StoreJanitor } from './janitor'
import { resolveOptions } from './options'
import { protocolRoutes } from './protocols/routes'
import { FileStore } from './store/index'
import { canPreallocate } from './store/space'
import { waitForFile } from './wait-for-file'

async function tus (app: FastifyInstance, input: FastifyTusOptions): Promise<void> {
  const options = resolveOptions(input)
  const hooks = new Hooks(options.hooks)
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
  const janitor = new StoreJanitor(store, hooks, options.janitor, app.log)
  // Waits started through the app end when the app closes; any number may be pending.
  const closing = new AbortController()
  setMaxListeners(0, closing.signal)

  app.addHook('onReady', async () => {
    hooks.seal()
    janitor.start()
  })
  app.addHook('onClose', async () => {
    closing.abort()
    await janitor.stop()
    await store.close()
  })

  const server: TusServer = Object.freeze({
    options,
    store,
    janitor,
    addHook: (name: TusHookName, listener: TusHookHandlers[TusHookName]) => hooks.add(name, listener),
    waitForFile: (waitOptions: WaitForFileOptions = {}) => waitForFile(options.completedDir, {
      ...waitOptions,
      signal: waitOptions.signal === undefined ? closing.signal : AbortSignal.any([waitOptions.signal, closing.signal])
    })
  })
  app.decorate('tus', server)

  await app.register(async (child) => {
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
    await child.register(protocolRoutes, { options, store, hooks })
  }, { prefix: options.prefix })
}

export const fastifyTus = fp(tus, { fastify: '5.x', name: 'fastify-tus' })

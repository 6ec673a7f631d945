// The plugin: resolves options, opens the store, decorates the instance with
// `tus` and registers the routes in their own encapsulated context.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import type { FastifyTusOptions, TusServer } from '../types/index'
import { resolveOptions } from './options'
import { tusRoutes } from './routes'
import { FileStore } from './store/index'
import { canPreallocate } from './store/space'

async function tus (app: FastifyInstance, input: FastifyTusOptions): Promise<void> {
  const options = resolveOptions(input)
  const store = new FileStore(options)
  await store.open()
  if (options.preallocate && !canPreallocate) {
    app.log.warn('fastify-tus: the fallocate addon is not available; creation checks free space with statvfs instead')
  }
  app.addHook('onClose', () => store.close())

  const server: TusServer = Object.freeze({ options, store })
  app.decorate('tus', server)

  await app.register(async (child) => {
    // An application that already sheds load with under-pressure covers these routes too.
    if (options.underPressure !== false && !child.hasDecorator('isUnderPressure')) {
      await child.register(underPressure, { ...options.underPressure })
    }
    await child.register(tusRoutes, { options, store })
  }, { prefix: options.prefix })
}

export const fastifyTus = fp(tus, { fastify: '5.x', name: 'fastify-tus' })

// The public type contract, checked the way a user's editor sees it.
import Fastify, { type FastifyInstance, type FastifyPluginCallback } from 'fastify'
import type { Readable } from 'node:stream'
import { Registry } from 'prom-client'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import tus, {
  fastifyTus,
  type FastifyTusOptions,
  type ResolvedTusOptions,
  type TusHealth,
  type TusServer,
  type TusStore,
  type UploadMetadata,
  type UploadRecord,
  type WriteUploadResult
} from '.'
import tusRequired = require('.')

const app = Fastify()
const directory = './uploads'
const completedDir = './completed'

// Every way of importing gives the same plugin, and each registers.
expectType<typeof fastifyTus>(tus)
expectType<typeof fastifyTus>(tusRequired.fastifyTus)
expectType<typeof fastifyTus>(tusRequired.default)
expectAssignable<FastifyPluginCallback<FastifyTusOptions>>(tus)
app.register(tus, { directory, completedDir })
app.register(fastifyTus, { directory, completedDir })
app.register(tusRequired, { directory, completedDir })
app.register(tusRequired.fastifyTus, { directory, completedDir })
app.register(tus, {
  prefix: '/uploads',
  directory,
  completedDir,
  directoryMode: 0o700,
  maxSize: 1024,
  maxChunkSize: 512,
  maxMetadataSize: 1024,
  fsync: false,
  preallocate: false,
  takeoverTimeout: 2000,
  ietf: false,
  maxReserved: '10%',
  reservationTimeout: 60_000,
  underPressure: { maxEventLoopDelay: 500, healthCheck: async () => true, healthCheckInterval: 1000 }
})
app.register(tus, { directory, completedDir, underPressure: false })
app.register(tus, { directory, completedDir, maxReserved: 1024 ** 3 })
// Downloads of finished uploads: a switch.
app.register(tus, { directory, completedDir, download: true })
app.register(tus, { directory, completedDir, download: false })
expectError(app.register(tus, { directory, completedDir, download: 'yes' }))
expectError(app.register(tus, { directory, completedDir, download: { range: true } }))
expectNotAssignable<FastifyTusOptions>({ directory, completedDir, download: 1 })

// Both directories are required.
expectError(app.register(tus, { directory }))
expectError(app.register(tus, { completedDir }))
expectError(app.register(tus, {}))
expectNotAssignable<FastifyTusOptions>({ directory })
expectNotAssignable<FastifyTusOptions>({ completedDir })

// Option types are checked.
expectError(app.register(tus, { directory, completedDir, maxSize: '1' }))
expectError(app.register(tus, { directory, completedDir, maxChunkSize: '1' }))
expectError(app.register(tus, { directory, completedDir, fsync: 'yes' }))
expectError(app.register(tus, { directory, completedDir, preallocate: 1 }))
expectError(app.register(tus, { directory, completedDir, takeoverTimeout: '5s' }))
expectError(app.register(tus, { directory, completedDir, ietf: 'on' }))
expectType<number | `${number}%`>(app.tus.options.maxReserved)
expectType<number>(app.tus.options.reservationTimeout)
expectError(app.register(tus, { directory, completedDir, maxReserved: 'a lot' }))
expectError(app.register(tus, { directory, completedDir, reservationTimeout: '1s' }))
expectError(app.register(tus, { directory, completedDir, underPressure: 5 }))
expectError(app.register(tus, { directory, completedDir, underPressure: true }))
expectError(app.register(tus, { directory, completedDir, prefix: 5 }))
expectError(app.register(tus, { directory: 5, completedDir }))
expectNotAssignable<FastifyTusOptions>({ directory, completedDir, maxSize: '1' })
expectNotAssignable<FastifyTusOptions>({ directory, completedDir, fsync: 'yes' })
expectNotAssignable<FastifyTusOptions>({ directory, completedDir, underPressure: 5 })

// The decorator, as the application sees it.
expectType<TusServer>(app.tus)
expectType<ResolvedTusOptions>(app.tus.options)
expectType<boolean>(app.tus.options.ietf)
expectType<TusStore>(app.tus.store)
expectType<string>(app.tus.options.prefix)
expectType<number>(app.tus.options.maxSize)
expectType<boolean>(app.tus.options.fsync)
expectType<boolean>(app.tus.options.download)
expectError(app.tus.options.download = true)
expectType<string>(app.tus.store.directory)
expectType<string>(app.tus.store.completedDir)

// Resolved options, the server and the store cannot be changed by the application.
expectError(app.tus.options = app.tus.options)
expectError(app.tus.options.maxSize = 5)
expectError(app.tus.options.prefix = '/x')
expectError(app.tus.options.fsync = false)
expectError(app.tus.store = app.tus.store)
expectError(app.tus.store.directory = '/x')

// Store methods.
expectType<Promise<UploadRecord>>(app.tus.store.get('id'))
expectType<Promise<UploadRecord>>(app.tus.store.create({ length: 5 }))
expectType<Promise<UploadRecord>>(app.tus.store.create({ length: null, metadata: { name: 'a', flag: null }, serverMetadata: { owner: 1 } }))
expectError(app.tus.store.create({}))
expectError(app.tus.store.create({ length: '5' }))
expectError(app.tus.store.get(5))

declare const stream: Readable
expectType<Promise<WriteUploadResult>>(app.tus.store.write('id', stream, { offset: 0 }))
expectType<Promise<WriteUploadResult>>(app.tus.store.write('id', null, { offset: 5, length: 10 }))
expectType<Promise<WriteUploadResult>>(app.tus.store.write('id', stream, { offset: 0, length: null, maxBytes: 10, contentLength: 10 }))
expectError(app.tus.store.write('id', 'data', { offset: 0 }))
expectError(app.tus.store.write('id', Buffer.from('data'), { offset: 0 }))
expectError(app.tus.store.write('id', undefined, { offset: 0 }))
expectError(app.tus.store.write('id', stream, {}))
expectError(app.tus.store.write('id', stream, { offset: '0' }))

// Record fields.
declare const record: UploadRecord
expectType<string>(record.id)
expectType<number | null>(record.length)
expectType<number>(record.offset)
expectType<UploadMetadata>(record.metadata)
expectType<string | null>(record.metadata.filename)
expectType<Record<string, unknown>>(record.serverMetadata)
expectType<string>(record.createdAt)
expectType<string>(record.lastWrite)
expectType<string | null>(record.finishedAt)
expectType<number | null>(record.duration)
expectType<string | null>(record.expiresAt)
expectType<null | { partial: true } | { final: string[] }>(record.concat)
expectAssignable<UploadRecord['concat']>(null)
expectAssignable<UploadRecord['concat']>({ partial: true })
expectAssignable<UploadRecord['concat']>({ final: ['a', 'b'] })
expectNotAssignable<UploadRecord['concat']>({ partial: false })
expectNotAssignable<UploadRecord['concat']>({ final: 'a' })
expectNotAssignable<UploadMetadata>({ filename: 5 })
expectAssignable<UploadMetadata>({ filename: 'a.txt', empty: null })

declare const result: WriteUploadResult
expectType<UploadRecord>(result.record)
expectType<number>(result.written)
expectType<boolean>(result.finished)

// The decorator exists on every instance type, e.g. inside another plugin.
async function inner (instance: FastifyInstance): Promise<void> {
  expectType<UploadRecord>(await instance.tus.store.get('id'))
}
app.register(inner)

// Metrics into prom-client's default registry or one of the application's; a free-space floor; health.
app.register(tus, { directory, completedDir, metrics: true })
app.register(tus, { directory, completedDir, metrics: { registry: new Registry() } })
app.register(tus, { directory, completedDir, metrics: {} })
app.register(tus, { directory, completedDir, minFreeSpace: 1024 ** 3 })
expectError(app.register(tus, { directory, completedDir, metrics: { registry: 'default' } }))
expectError(app.register(tus, { directory, completedDir, minFreeSpace: '1G' }))
expectType<Registry | false>(app.tus.options.metrics)
expectType<number>(app.tus.options.minFreeSpace)
expectType<Promise<TusHealth>>(app.tus.health())
expectType<boolean>((await app.tus.health()).ok)
expectType<number>((await app.tus.health()).freeBytes)

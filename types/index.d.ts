/// <reference types="node" />
import type { FastifyPluginCallback } from 'fastify'
import type { FastifyUnderPressureOptions } from '@fastify/under-pressure'
import type { Readable } from 'node:stream'

declare module 'fastify' {
  interface FastifyInstance {
    /** The tus upload server registered by fastify-tus. */
    tus: fastifyTus.TusServer
  }
}

type FastifyTus = FastifyPluginCallback<fastifyTus.FastifyTusOptions>

declare namespace fastifyTus {
  export interface FastifyTusOptions {
    /** URL prefix of the tus routes. Default `'/files'`. */
    prefix?: string
    /** Directory of uploads in progress; created if missing. Required. */
    directory: string
    /** Directory finished uploads are moved to; same filesystem as `directory`. Required. */
    completedDir: string
    /** Mode of directories the plugin creates. Default `0o755`. */
    directoryMode?: number
    /** Largest upload accepted, in bytes. Default: no limit. */
    maxSize?: number
    /** Largest request body accepted by one PATCH (or POST with data), in bytes. Default: no limit. */
    maxChunkSize?: number
    /** Largest Upload-Metadata header accepted, in bytes. Default `4096`. */
    maxMetadataSize?: number
    /** Make every acknowledged byte durable with fsync before its offset is recorded. Default `true`. */
    fsync?: boolean
    /** Reserve the whole Upload-Length on disk at creation (507 when it does not fit). Default `true`. */
    preallocate?: boolean
    /** A request body that sends nothing for this many ms is ended, its bytes kept, its lock freed; 0 for never. Default `60000`. */
    idleTimeout?: number
    /** Options for @fastify/under-pressure on the tus routes, or `false` for none. Default `{ maxEventLoopDelay: 1000 }`. */
    underPressure?: FastifyUnderPressureOptions | false
  }

  /** Options after defaults are applied; frozen. */
  export interface ResolvedTusOptions {
    readonly prefix: string
    readonly directory: string
    readonly completedDir: string
    readonly directoryMode: number
    readonly maxSize: number
    readonly maxChunkSize: number
    readonly maxMetadataSize: number
    readonly fsync: boolean
    readonly preallocate: boolean
    readonly idleTimeout: number
    readonly underPressure: FastifyUnderPressureOptions | false
  }

  /** Upload-Metadata, decoded: key to UTF-8 value, or `null` for a key sent without value. */
  export type UploadMetadata = Record<string, string | null>

  /** The record of an upload, stored as `<id>.meta` beside its data. */
  export interface UploadRecord {
    id: string
    metadata: UploadMetadata
    /** Data the application attached; never sent to the client. */
    serverMetadata: Record<string, unknown>
    /** Total size in bytes, `null` while deferred (Upload-Defer-Length). */
    length: number | null
    /** Bytes received and durable. The truth, whatever the data file's size says. */
    offset: number
    /** ISO 8601 timestamps. */
    createdAt: string
    lastWrite: string
    finishedAt: string | null
    /** Milliseconds from creation to finish. */
    duration: number | null
    expiresAt: string | null
    concat: null | { partial: true } | { final: string[] }
  }

  export interface CreateUploadInput {
    length: number | null
    metadata?: UploadMetadata
    serverMetadata?: Record<string, unknown>
  }

  export interface WriteUploadInput {
    /** Offset the client claims; must equal the record's offset. */
    offset: number
    /** Sets the length of a deferred upload. */
    length?: number | null
    /** Largest number of bytes this request may carry. Default: no limit. */
    maxBytes?: number
    /** Bytes the source announces (Content-Length): refused before reading when over a limit. */
    contentLength?: number
  }

  export interface WriteUploadResult {
    record: UploadRecord
    /** Bytes of this request now durable and recorded. */
    written: number
    /** True when this write finished the upload and it is now in completedDir. */
    finished: boolean
  }

  /** The filesystem store: records, data files, locks. Knows nothing of HTTP. */
  export interface TusStore {
    readonly directory: string
    readonly completedDir: string
    /** Creates a new upload, reserving its space when the length is known. */
    create (input: CreateUploadInput): Promise<UploadRecord>
    /** Reads the record of an upload, in progress or finished; rejects with FST_TUS_UPLOAD_NOT_FOUND. */
    get (id: string): Promise<UploadRecord>
    /** Appends a stream to an upload under its lock, finishing it when the last byte is durable. */
    write (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult>
  }

  /** `app.tus`: the public face of the plugin. */
  export interface TusServer {
    readonly options: ResolvedTusOptions
    readonly store: TusStore
  }

  export const fastifyTus: FastifyTus
  export { fastifyTus as default }
}

declare function fastifyTus (...params: Parameters<FastifyTus>): ReturnType<FastifyTus>
export = fastifyTus

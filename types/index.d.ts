/// <reference types="node" />
import type { FastifyPluginCallback, FastifyRequest } from 'fastify'
import type { FastifyUnderPressureOptions } from '@fastify/under-pressure'
import type { Readable } from 'node:stream'
import type { Registry } from 'prom-client'

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
    /**
     * Budget of disk space reserved by preallocation and not written yet, over all uploads in
     * `directory` (every process sharing it counts the same uploads): bytes, or a percentage of
     * the size of the filesystem holding `directory`. A creation that would go over it is 507
     * `FST_TUS_RESERVATION_EXCEEDED`. Default `'25%'`.
     */
    maxReserved?: number | `${number}%`
    /** An upload without a write for this many ms gives its unwritten reservation back to the filesystem (taken again when it resumes); 0 for never. Default `600000` (10 min). */
    reservationTimeout?: number
    /** A request body that sends nothing for this many ms is ended, its bytes kept, its lock freed; 0 for never. Default `60000`. */
    idleTimeout?: number
    /**
     * How long a HEAD, PATCH or DELETE waits for another request holding the upload (in this
     * process, another process or another machine sharing the directory) to let go, in ms; after
     * it, 423 with Retry-After. Default `5000`.
     */
    takeoverTimeout?: number
    /** Lifecycle hooks, by name; the same as calling `app.tus.addHook` for each. */
    hooks?: TusHooksOption
    /** Least time between two `tus:progress` calls for one upload, in ms. Default `1000`. */
    progressInterval?: number
    /** Cleanup of abandoned and old uploads, or `false` to never schedule it. */
    janitor?: JanitorOptions | false
    /** The tus extensions to offer, advertised in Tus-Extension. Default: all of them. */
    extensions?: TusExtension[]
    /** An unfinished upload expires after this many ms without a write (Upload-Expires, then 410), or `false`. Default `86400000` (24 h). */
    expiration?: number | false
    /** CORS for browser clients: `true` for any origin, an origin, a list of origins, or a function deciding per origin. Default `false`. */
    cors?: boolean | string | string[] | ((origin: string) => boolean | Promise<boolean>)
    /** Serve finished uploads still waiting in `completedDir` at `GET <prefix>/<id>` (Range, ETag, Content-Disposition). Default `false`. */
    download?: boolean
    /** Options for @fastify/under-pressure on the tus routes, or `false` for none. Default `{ maxEventLoopDelay: 1000 }`. */
    underPressure?: FastifyUnderPressureOptions | false
    /** Also serve the IETF resumable-upload draft (interop versions 3 to 9) on the same prefix. Default `true`. */
    ietf?: boolean
    /** Prometheus metrics through prom-client: `true` for its default registry, or `{ registry }`. Default `false`. */
    metrics?: boolean | TusMetricsOptions
    /** Creations are refused (503 + Retry-After) while the upload filesystem has fewer free bytes than this; 0 for no floor. Default `0`. */
    minFreeSpace?: number
  }

  export interface TusMetricsOptions {
    /** The prom-client Registry to register the metrics in. Default: prom-client's default registry. */
    registry?: Registry
  }

  /** What `app.tus.health()` reports. */
  export interface TusHealth {
    /** False while the free space is below minFreeSpace. */
    ok: boolean
    /** Free bytes of the upload filesystem (for an unprivileged writer). */
    freeBytes: number
    minFreeSpace: number
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
    readonly maxReserved: number | `${number}%`
    readonly reservationTimeout: number
    readonly idleTimeout: number
    readonly takeoverTimeout: number
    readonly underPressure: FastifyUnderPressureOptions | false
    readonly hooks: Readonly<TusHooksOption>
    readonly progressInterval: number
    readonly janitor: Readonly<Required<JanitorOptions>> | false
    readonly extensions: readonly TusExtension[]
    /** `false` when the expiration extension is off. */
    readonly expiration: number | false
    readonly cors: false | true | string | readonly string[] | ((origin: string) => boolean | Promise<boolean>)
    readonly ietf: boolean
    readonly download: boolean
    /** The registry the metrics are in, or `false`. */
    readonly metrics: Registry | false
    readonly minFreeSpace: number
  }

  export type TusExtension =
    | 'creation' | 'creation-with-upload' | 'creation-defer-length' | 'termination' | 'checksum'
    | 'checksum-trailer' | 'expiration' | 'concatenation' | 'concatenation-unfinished'

  /** Upload-Checksum algorithms. */
  export type ChecksumAlgorithm = 'sha1' | 'sha256' | 'sha512' | 'md5'

  export interface JanitorOptions {
    /** Time between two scheduled runs, in ms. Default `900000` (15 min). */
    interval?: number
    /** An unfinished upload with no write for this long is deleted, in ms. Default `86400000` (24 h). */
    staleUploadAge?: number
    /** A finished upload nobody claimed for this long is deleted, in ms. Default `604800000` (7 days). */
    completedFileAge?: number
  }

  /** What one janitor run did, by upload id. */
  export interface JanitorReport {
    /** Uploads whose last byte was durable but that were never handed over: handed over now. */
    finalized: string[]
    /** Unfinished uploads without a write for staleUploadAge: deleted. */
    stale: string[]
    /** Uploads past their expiry: deleted. */
    expired: string[]
    /** Records whose data file is gone: deleted. */
    orphanedMeta: string[]
    /** Data files without a record, older than an hour: deleted. */
    orphanedData: string[]
    /** Finished uploads older than completedFileAge and not claimed: deleted. */
    oldCompleted: string[]
    errors: Array<{ id: string | null, error: Error }>
  }

  export interface Janitor {
    /** Runs one cleanup now; safe to run in several processes at once. */
    run (): Promise<JanitorReport>
  }

  /** An upload about to be created, as tus:preCreate sees it. */
  export interface ProposedUpload {
    /** For a final upload, the sum of its partial uploads' lengths. */
    length: number | null
    metadata: UploadMetadata
    /** A final upload's partial uploads, in order, each already passed through `tus:preAccess`; absent for any other upload. */
    partials?: readonly UploadRecord[]
  }

  /** What tus:preCreate may return. */
  export interface PreCreateResult {
    /** Replaces the client's metadata. */
    metadata?: UploadMetadata
    /** Stored beside the client's metadata, never sent to the client. */
    serverMetadata?: Record<string, unknown>
  }

  type Awaitable<T> = T | Promise<T>

  /** Each hook's listener. Hooks run in the order added; those marked may reject stop the request by throwing an error with a `statusCode`. */
  export interface TusHookHandlers {
    /** Before a record exists. May reject. */
    'tus:preCreate': (request: FastifyRequest, upload: ProposedUpload) => Awaitable<PreCreateResult | undefined | void>
    /** The record is persisted. */
    'tus:created': (upload: UploadRecord, request: FastifyRequest) => Awaitable<void>
    /** Before HEAD, PATCH or DELETE touch an upload (ownership checks). May reject. */
    'tus:preAccess': (request: FastifyRequest, upload: UploadRecord) => Awaitable<void>
    /** Bytes are durable; at most every progressInterval ms per upload, and once when the last byte is. */
    'tus:progress': (upload: UploadRecord) => Awaitable<void>
    /** The last byte is durable, before hand-over. May reject: the upload fails and is deleted. */
    'tus:preFinish': (upload: UploadRecord) => Awaitable<void>
    /** The finished upload is in completedDir; once per upload, in the process that finished it. */
    'tus:completed': (upload: UploadRecord) => Awaitable<void>
    /** Before DELETE removes an upload. May reject. */
    'tus:preTerminate': (request: FastifyRequest, upload: UploadRecord) => Awaitable<void>
    /** An upload was removed by DELETE. */
    'tus:terminated': (upload: UploadRecord, request: FastifyRequest) => Awaitable<void>
    /** An upload was refused by a hook or could not be written (a full disk, an I/O error). */
    'tus:failed': (error: Error, upload: UploadRecord | null) => Awaitable<void>
  }

  export type TusHookName = keyof TusHookHandlers

  export type TusHooksOption = { [K in TusHookName]?: TusHookHandlers[K] | Array<TusHookHandlers[K]> }

  export interface WaitForFileOptions {
    /** Reject with FST_TUS_WAIT_TIMEOUT after this many ms. Default: wait for ever. */
    timeout?: number
    /** Abort the wait: rejects with an AbortError. */
    signal?: AbortSignal
    /** How often to look again when no file-system event comes (other machines), in ms. Default `1000`. */
    pollInterval?: number
  }

  /** A finished upload claimed by this process (an exclusive lock) until released. */
  export interface ClaimedFile extends AsyncDisposable {
    readonly id: string
    /** The client's filename made safe for a file system (no separators, no control characters), or the id. */
    readonly name: string
    /** Where the data is now. */
    readonly path: string
    readonly record: UploadRecord
    /** Moves the data to `destination` (rename, or copy + fsync across filesystems); returns it. Once. */
    save (destination: string): Promise<string>
    /** Moves the record (JSON) to `destination`; returns it. Once. */
    saveRecord (destination: string): Promise<string>
    /** Deletes what is left in completedDir and lets go of the claim. Safe to call twice. */
    release (): Promise<void>
  }

  /** Claims the oldest finished upload in `completedDir`, waiting for one if there is none. */
  export function waitForFile (completedDir: string, options?: WaitForFileOptions): Promise<ClaimedFile>

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
    /**
     * Preallocation: `true` while the data file holds blocks up to `length`, `false` once an idle
     * upload gave them back (taken again when it resumes); absent when nothing was reserved.
     */
    reserved?: boolean
  }

  export interface CreateUploadInput {
    /** Ignored for a final upload, whose length is the sum of its partial uploads'. */
    length: number | null
    metadata?: UploadMetadata
    serverMetadata?: Record<string, unknown>
    /** A partial upload, or a final upload made of these partial uploads (ids). */
    concat?: { partial: true } | { final: string[] }
    /** Let a final upload be created before all its partial uploads are finished. Default `false`. */
    allowUnfinishedPartials?: boolean
  }

  export interface Checksum {
    algorithm: ChecksumAlgorithm
    digest: Buffer
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
    /** Called each time written bytes are durable and recorded (during long writes and at the end). */
    onProgress?: (record: UploadRecord) => void
    /**
     * Called for each upload this write hands over to completedDir (this one, or the final
     * upload a finished partial completes), as soon as it is there: also when the request
     * then fails, e.g. with bytes past Upload-Length.
     */
    onHandedOver?: (record: UploadRecord) => Promise<void>
    /** The body's expected digest, or a function giving it once the body has ended (an HTTP trailer). A mismatch discards the whole body. */
    checksum?: Checksum | (() => Checksum | undefined)
  }

  export interface WriteUploadResult {
    record: UploadRecord
    /** Bytes of this request now durable and recorded. */
    written: number
    /** True when this write received the upload's last byte. */
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
    /**
     * Reads the record once no request writes the upload: one still streaming into it, in any
     * process or machine sharing the directory, is asked to let go and records what it received,
     * so the offset is final. FST_TUS_UPLOAD_LOCKED when its holder does not let go within
     * `takeoverTimeout`. HEAD uses it.
     */
    current (id: string): Promise<UploadRecord>
    /** Appends a stream to an upload under its lock, finishing it when the last byte is durable. */
    write (id: string, source: Readable | null, input: WriteUploadInput): Promise<WriteUploadResult>
    /**
     * Creates an upload with the data of its creation request (creation-with-upload). A body
     * that is the whole upload is handed over directly; `onCreated` runs once the record is persisted.
     */
    createWithData (input: CreateUploadInput, source: Readable, write: WriteUploadInput & { onCreated?: (record: UploadRecord) => Promise<void> }): Promise<WriteUploadResult>
    /** Deletes an upload, in progress or finished and unclaimed; resolves with its last record. */
    terminate (id: string): Promise<UploadRecord>
  }

  /** `app.tus`: the public face of the plugin. */
  export interface TusServer {
    readonly options: ResolvedTusOptions
    readonly store: TusStore
    readonly janitor: Janitor
    /** Adds a lifecycle hook; throws FST_TUS_HOOK_AFTER_READY once the server is ready. */
    addHook<K extends TusHookName> (name: K, listener: TusHookHandlers[K]): void
    /** Claims the oldest finished upload of this server's completedDir. */
    waitForFile (options?: WaitForFileOptions): Promise<ClaimedFile>
    /** Free space of the upload filesystem against minFreeSpace, sampled now. */
    health (): Promise<TusHealth>
  }

  export const fastifyTus: FastifyTus
  export { fastifyTus as default }
}

declare function fastifyTus (...params: Parameters<FastifyTus>): ReturnType<FastifyTus>
export = fastifyTus

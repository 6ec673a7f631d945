// Turns what the user passed into a frozen, fully defaulted options object, or
// throws naming the option; nothing after this re-checks an option.
import path from 'node:path'
import type { FastifyTusOptions, ResolvedTusOptions, TusExtension, TusHookName, TusHooksOption } from '../types/index'
import { FST_TUS_INVALID_OPTION } from './errors'
import { HOOK_NAMES } from './hooks'
import { metricsRegistry } from './metrics'

const KNOWN = new Set([
  'prefix', 'directory', 'completedDir', 'directoryMode', 'maxSize', 'maxChunkSize',
  'maxMetadataSize', 'fsync', 'preallocate', 'maxReserved', 'reservationTimeout', 'idleTimeout', 'takeoverTimeout', 'underPressure', 'hooks', 'progressInterval', 'janitor',
  'extensions', 'expiration', 'cors', 'download', 'ietf', 'metrics', 'minFreeSpace'
])
export const EXTENSIONS: readonly TusExtension[] = [
  'creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'checksum', 'checksum-trailer',
  'expiration', 'concatenation', 'concatenation-unfinished'
]
// An extension that builds on another needs it.
const NEEDS: Partial<Record<TusExtension, TusExtension>> = {
  'creation-with-upload': 'creation',
  'creation-defer-length': 'creation',
  'checksum-trailer': 'checksum',
  'concatenation-unfinished': 'concatenation'
}
const JANITOR_DEFAULTS = { interval: 15 * 60_000, staleUploadAge: 24 * 3600_000, completedFileAge: 7 * 24 * 3600_000 }

export function resolveOptions (input: FastifyTusOptions | undefined): ResolvedTusOptions {
  if (input === null || typeof input !== 'object') {
    throw new FST_TUS_INVALID_OPTION('options', 'expected an object with at least directory and completedDir')
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new FST_TUS_INVALID_OPTION(key, 'unknown option')
  }
  const directory = requiredPath(input, 'directory')
  const completedDir = requiredPath(input, 'completedDir')
  if (directory === completedDir) {
    throw new FST_TUS_INVALID_OPTION('completedDir', 'must differ from directory')
  }
  // Nothing expires without an expiration: the extension is not offered then.
  const extensions = extensionsOption(input.extensions).filter((name) => name !== 'expiration' || input.expiration !== false)
  return Object.freeze({
    prefix: prefixOption(input.prefix),
    directory,
    completedDir,
    directoryMode: integer(input, 'directoryMode', 0o755, 0, 0o7777),
    maxSize: limit(input, 'maxSize'),
    maxChunkSize: limit(input, 'maxChunkSize'),
    maxMetadataSize: integer(input, 'maxMetadataSize', 4096, 1, 1024 * 1024),
    fsync: boolean(input, 'fsync', true),
    preallocate: boolean(input, 'preallocate', true),
    maxReserved: maxReservedOption(input.maxReserved),
    reservationTimeout: integer(input, 'reservationTimeout', 600_000, 0, 2 ** 31 - 1),
    idleTimeout: integer(input, 'idleTimeout', 60_000, 0, 2 ** 31 - 1),
    takeoverTimeout: integer(input, 'takeoverTimeout', 5000, 0, 2 ** 31 - 1),
    underPressure: underPressureOption(input.underPressure),
    hooks: hooksOption(input.hooks),
    progressInterval: integer(input, 'progressInterval', 1000, 0, 2 ** 31 - 1),
    janitor: janitorOption(input.janitor),
    extensions: Object.freeze(extensions),
    expiration: extensions.includes('expiration') ? expirationOption(input.expiration) : false,
    cors: corsOption(input.cors),
    download: boolean(input, 'download', false),
    ietf: boolean(input, 'ietf', true),
    metrics: metricsOption(input.metrics),
    minFreeSpace: integer(input, 'minFreeSpace', 0, 0, Number.MAX_SAFE_INTEGER)
  })
}

function requiredPath (input: FastifyTusOptions, name: 'directory' | 'completedDir'): string {
  const value = input[name]
  if (typeof value !== 'string' || value.length === 0) {
    throw new FST_TUS_INVALID_OPTION(name, 'a directory path is required')
  }
  return path.resolve(value)
}

function prefixOption (value: unknown): string {
  if (value === undefined) return '/files'
  if (typeof value !== 'string' || !/^\/[A-Za-z0-9\-._~/]*$/.test(value) || value.includes('//')) {
    throw new FST_TUS_INVALID_OPTION('prefix', 'must be a URL path starting with "/", like "/files"')
  }
  return value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value
}

function integer (input: FastifyTusOptions, name: keyof FastifyTusOptions, fallback: number, min: number, max: number): number {
  const value = input[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new FST_TUS_INVALID_OPTION(name, `must be an integer from ${min} to ${max}`)
  }
  return value
}

// A byte limit: a positive integer, or absent for none (Infinity internally).
function limit (input: FastifyTusOptions, name: 'maxSize' | 'maxChunkSize'): number {
  const value = input[name]
  if (value === undefined || value === Infinity) return Infinity
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new FST_TUS_INVALID_OPTION(name, 'must be a positive integer number of bytes')
  }
  return value
}

// Bytes (Infinity for no budget), or a percentage of the filesystem's size.
function maxReservedOption (value: unknown): ResolvedTusOptions['maxReserved'] {
  if (value === undefined) return '25%'
  if (value === Infinity || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) return value
  const percent = typeof value === 'string' ? /^(\d+(?:\.\d+)?)%$/.exec(value)?.[1] : undefined
  if (percent === undefined || Number(percent) <= 0 || Number(percent) > 100) {
    throw new FST_TUS_INVALID_OPTION('maxReserved', 'must be a number of bytes, Infinity, or a percentage of the filesystem like "25%"')
  }
  return value as `${number}%`
}

function boolean (input: FastifyTusOptions, name: 'fsync' | 'preallocate' | 'download' | 'ietf', fallback: boolean): boolean {
  const value = input[name]
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new FST_TUS_INVALID_OPTION(name, 'must be true or false')
  return value
}

function underPressureOption (value: unknown): ResolvedTusOptions['underPressure'] {
  if (value === undefined) return Object.freeze({ maxEventLoopDelay: 1000 })
  if (value === false) return false
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FST_TUS_INVALID_OPTION('underPressure', 'must be @fastify/under-pressure options or false')
  }
  return Object.freeze({ ...value })
}

function hooksOption (value: unknown): Readonly<TusHooksOption> {
  if (value === undefined) return Object.freeze({})
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FST_TUS_INVALID_OPTION('hooks', 'must be an object of hook names to functions')
  }
  for (const [name, listeners] of Object.entries(value)) {
    if (!HOOK_NAMES.includes(name as TusHookName)) {
      throw new FST_TUS_INVALID_OPTION(`hooks.${name}`, `not a hook; the hooks are ${HOOK_NAMES.join(', ')}`)
    }
    const list: unknown[] = Array.isArray(listeners) ? listeners : [listeners]
    if (!list.every((listener) => typeof listener === 'function')) {
      throw new FST_TUS_INVALID_OPTION(`hooks.${name}`, 'must be a function or an array of functions')
    }
  }
  return Object.freeze({ ...value })
}

function janitorOption (value: unknown): ResolvedTusOptions['janitor'] {
  if (value === false) return false
  if (value === undefined) return Object.freeze({ ...JANITOR_DEFAULTS })
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FST_TUS_INVALID_OPTION('janitor', 'must be { interval, staleUploadAge, completedFileAge } (ms) or false')
  }
  const resolved = { ...JANITOR_DEFAULTS }
  for (const [key, number] of Object.entries(value)) {
    if (!(key in JANITOR_DEFAULTS)) throw new FST_TUS_INVALID_OPTION(`janitor.${key}`, 'unknown option')
    if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 1 || (key === 'interval' && number > 2 ** 31 - 1)) {
      throw new FST_TUS_INVALID_OPTION(`janitor.${key}`, 'must be a positive integer number of ms (an interval at most 2^31 - 1)')
    }
    resolved[key as keyof typeof JANITOR_DEFAULTS] = number
  }
  return Object.freeze(resolved)
}

function extensionsOption (value: unknown): readonly TusExtension[] {
  if (value === undefined) return EXTENSIONS
  if (!Array.isArray(value)) throw new FST_TUS_INVALID_OPTION('extensions', `must be an array of ${EXTENSIONS.join(', ')}`)
  for (const name of value) {
    if (!EXTENSIONS.includes(name)) throw new FST_TUS_INVALID_OPTION('extensions', `"${String(name)}" is not one of ${EXTENSIONS.join(', ')}`)
    const needed = NEEDS[name as TusExtension]
    if (needed !== undefined && !value.includes(needed)) throw new FST_TUS_INVALID_OPTION('extensions', `"${String(name)}" needs "${needed}"`)
  }
  // In the spec's order, whatever the order given, so that Tus-Extension is stable.
  return Object.freeze(EXTENSIONS.filter((name) => value.includes(name)))
}

function expirationOption (value: unknown): number | false {
  if (value === undefined) return 24 * 3600_000
  if (value === false) return false
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new FST_TUS_INVALID_OPTION('expiration', 'must be a positive integer number of ms, or false')
  }
  return value
}

function corsOption (value: unknown): ResolvedTusOptions['cors'] {
  if (value === undefined || value === false) return false
  const valid = value === true || typeof value === 'string' || typeof value === 'function' ||
    (Array.isArray(value) && value.length > 0 && value.every((origin) => typeof origin === 'string'))
  if (!valid) throw new FST_TUS_INVALID_OPTION('cors', 'must be true (any origin), an origin, a list of origins, a function (origin) => boolean, or false')
  return Array.isArray(value) ? Object.freeze([...value]) : value as ResolvedTusOptions['cors']
}

function metricsOption (value: unknown): ResolvedTusOptions['metrics'] {
  const registry = (value as { registry?: unknown } | null)?.registry
  const valid = value === undefined || typeof value === 'boolean' ||
    (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).every((key) => key === 'registry') &&
      (registry === undefined || typeof (registry as { getSingleMetric?: unknown } | null)?.getSingleMetric === 'function'))
  if (!valid) throw new FST_TUS_INVALID_OPTION('metrics', 'must be true, false, or { registry } with a prom-client Registry')
  return metricsRegistry(value as Parameters<typeof metricsRegistry>[0]) ?? false
}

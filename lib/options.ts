// Turns what the user passed into a frozen, fully defaulted options object, or
// throws naming the option; nothing after this re-checks an option.
import path from 'node:path'
import type { FastifyTusOptions, ResolvedTusOptions } from '../types/index'
import { FST_TUS_INVALID_OPTION } from './errors'

const KNOWN = new Set([
  'prefix', 'directory', 'completedDir', 'directoryMode', 'maxSize', 'maxChunkSize',
  'maxMetadataSize', 'fsync', 'preallocate', 'idleTimeout', 'underPressure'
])

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
    idleTimeout: integer(input, 'idleTimeout', 60_000, 0, 2 ** 31 - 1),
    underPressure: underPressureOption(input.underPressure)
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
  if (value === undefined) return Infinity
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new FST_TUS_INVALID_OPTION(name, 'must be a positive integer number of bytes')
  }
  return value
}

function boolean (input: FastifyTusOptions, name: 'fsync' | 'preallocate', fallback: boolean): boolean {
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

// Reserving disk space for an upload: posix_fallocate through the package's own
// addon, or, where it could not be built, a free-space check with statvfs.
import { constants } from 'node:os'
import { statVFS } from 'fs-ext'

interface FallocateAddon { fallocate (fd: number, offset: number, length: number): Promise<void> }

function loadAddon (): FallocateAddon | undefined {
  // The fallback can be chosen on purpose, e.g. where fallocate misbehaves.
  if (process.env.FASTIFY_TUS_NO_FALLOCATE === '1') return undefined
  try {
    return require('../../build/Release/fallocate.node') as FallocateAddon
  } catch {
    return undefined
  }
}

const addon = loadAddon()
const errnoNames = new Map(Object.entries(constants.errno).map(([name, errno]) => [errno, name]))

/** True when posix_fallocate is available; without it creation only checks free space. */
export const canPreallocate = addon !== undefined

function statFs (directory: string, bytes: (stats: { f_bavail: number, f_blocks: number, f_frsize: number }) => number): Promise<number> {
  return new Promise((resolve, reject) => {
    statVFS(directory, (error, stats) => {
      if (error) reject(error)
      else resolve(bytes(stats))
    })
  })
}

export const freeBytes = (directory: string): Promise<number> => statFs(directory, (stats) => stats.f_bavail * stats.f_frsize)

/** The size of the filesystem holding `directory`. */
export const totalBytes = (directory: string): Promise<number> => statFs(directory, (stats) => stats.f_blocks * stats.f_frsize)

/**
 * Makes room for `length` bytes in the open file; rejects with code ENOSPC when
 * the disk cannot hold them. True when the blocks are reserved, false when only
 * free space could be checked.
 */
export async function reserve (fd: number, directory: string, length: number): Promise<boolean> {
  if (addon !== undefined) {
    try {
      await addon.fallocate(fd, 0, length)
      return true
    } catch (error) {
      const code = errnoNames.get((error as { errno: number }).errno)
      // A filesystem that cannot reserve is asked how much is free instead.
      if (code !== 'EOPNOTSUPP') throw Object.assign(error as Error, { code })
    }
  }
  if (await freeBytes(directory) < length) {
    throw Object.assign(new Error('not enough free space'), { code: 'ENOSPC' })
  }
  return false
}

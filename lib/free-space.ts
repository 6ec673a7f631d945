// The free-space floor: the upload filesystem's free bytes, sampled on an
// unref'd timer (creations read the last sample, never a syscall each), and
// what the health check reports.
import { statfs } from 'node:fs/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TusHealth } from '../types/index'
import { FST_TUS_LOW_DISK_SPACE } from './errors'

const SAMPLE_INTERVAL = 1000

export async function freeSpaceOf (directory: string): Promise<number> {
  const stats = await statfs(directory)
  // bavail: what an unprivileged writer may still use, not the root reserve.
  return stats.bavail * stats.bsize
}

export class FreeSpaceFloor {
  private timer: NodeJS.Timeout | undefined
  private free = Infinity

  constructor (private readonly directory: string, readonly minFreeSpace: number, private readonly interval = SAMPLE_INTERVAL) {}

  /** Takes the first sample, then one every interval while the floor is on. */
  async start (): Promise<void> {
    if (this.minFreeSpace === 0 || this.timer !== undefined) return
    await this.sample()
    this.timer = setInterval(() => { void this.sample() }, this.interval).unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** True while the last sample was below the floor. */
  get low (): boolean {
    return this.free < this.minFreeSpace
  }

  /** Refuses creations on the context's routes while below the floor; uploads already made have their space reserved. */
  guard (context: FastifyInstance): void {
    context.addHook('onRequest', async (request) => {
      if (this.low && isCreation(request)) throw new FST_TUS_LOW_DISK_SPACE()
    })
  }

  /** A fresh sample: health checks are rare enough to afford one. */
  async health (): Promise<TusHealth> {
    const freeBytes = await freeSpaceOf(this.directory)
    this.free = freeBytes
    return { ok: freeBytes >= this.minFreeSpace, freeBytes, minFreeSpace: this.minFreeSpace }
  }

  private async sample (): Promise<number> {
    try {
      this.free = await freeSpaceOf(this.directory)
    } catch {
      // A filesystem that cannot be asked (gone, or unsupported) is not held against creations.
      this.free = Infinity
    }
    return this.free
  }
}

// Creation is the POST on the prefix itself (of any protocol); a POST on an upload URL is a method override.
function isCreation (request: FastifyRequest): boolean {
  return (request.routeOptions.config as { uploadRoute?: string } | undefined)?.uploadRoute === 'create'
}

// tus:progress at most every `interval` ms per upload (in this process), and
// always for the last byte.
import type { UploadRecord } from '../../types/index'

const MAX_TRACKED = 10_000

export class ProgressThrottle {
  private readonly last = new Map<string, number>()

  constructor (private readonly interval: number) {}

  due (record: UploadRecord): boolean {
    const now = Date.now()
    if (record.length !== null && record.offset === record.length) {
      this.last.delete(record.id)
      return true
    }
    const previous = this.last.get(record.id)
    if (previous !== undefined && now - previous < this.interval) return false
    // Map order is insertion order: re-inserting keeps the oldest first, for pruning abandoned uploads.
    this.last.delete(record.id)
    this.last.set(record.id, now)
    if (this.last.size > MAX_TRACKED) this.last.delete(this.last.keys().next().value!)
    return true
  }
}

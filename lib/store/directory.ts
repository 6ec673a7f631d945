// A directory the store writes in, kept open so that making its entries durable
// costs one fsync and no open. Concurrent requests share fsyncs (group commit):
// a caller needs one that starts after its own change, so callers that arrive
// while one runs all wait for the same next one.
import { mkdir, open, type FileHandle } from 'node:fs/promises'

export class Directory {
  readonly path: string
  private handle: FileHandle | undefined
  private running: Promise<void> | undefined
  private next: Promise<void> | undefined

  constructor (directoryPath: string) {
    this.path = directoryPath
  }

  async open (mode: number): Promise<void> {
    await mkdir(this.path, { recursive: true, mode })
    this.handle = await open(this.path, 'r')
  }

  /** Makes every name created, renamed or removed in the directory before this call durable. */
  sync (): Promise<void> {
    if (this.next !== undefined) return this.next
    if (this.running === undefined) return this.begin()
    const after = (): Promise<void> => {
      this.next = undefined
      return this.begin()
    }
    this.next = this.running.then(after, after)
    return this.next
  }

  private begin (): Promise<void> {
    const running = this.handle!.sync()
    this.running = running
    const done = (): void => { if (this.running === running) this.running = undefined }
    running.then(done, done)
    return running
  }

  async close (): Promise<void> {
    await this.handle?.close()
    this.handle = undefined
  }
}

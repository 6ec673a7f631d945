// A directory the store writes in, kept open so that making its entries durable
// costs one fsync and no open.
import { mkdir, open, type FileHandle } from 'node:fs/promises'

export class Directory {
  readonly path: string
  private handle: FileHandle | undefined

  constructor (directoryPath: string) {
    this.path = directoryPath
  }

  async open (mode: number): Promise<void> {
    await mkdir(this.path, { recursive: true, mode })
    this.handle = await open(this.path, 'r')
  }

  /** Makes every name created, renamed or removed in the directory so far durable. */
  async sync (): Promise<void> {
    await this.handle!.sync()
  }

  async close (): Promise<void> {
    await this.handle?.close()
    this.handle = undefined
  }
}

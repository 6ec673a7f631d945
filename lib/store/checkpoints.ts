// Periodic durability during one long write, so a crash in the middle of a
// multi-gigabyte PATCH resumes near where it stopped. Runs beside the writes.
export class Checkpoints {
  private last = 0
  private chain: Promise<void> = Promise.resolve()
  private error: unknown

  constructor (private readonly every: number, private readonly persist: (written: number) => Promise<void>) {}

  reached (written: number): void {
    if (written - this.last < this.every) return
    this.last = written
    this.chain = this.chain.then(() => this.persist(written)).catch((error) => { this.error ??= error })
  }

  async settled (): Promise<void> {
    await this.chain
    if (this.error !== undefined) throw this.error
  }
}

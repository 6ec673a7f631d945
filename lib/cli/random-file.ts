// What `fastify-tus upload` sends when given no file: a temporary file of
// random bytes, written in small blocks (never the whole size in memory).
import { randomFillSync } from 'node:crypto'
import { createWriteStream, promises as fs, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

const BLOCK = 64 * 1024

function * randomBlocks (size: number): Generator<Buffer> {
  for (let left = size; left > 0; left -= BLOCK) yield randomFillSync(Buffer.allocUnsafe(Math.min(BLOCK, left)))
}

export interface RandomFile {
  path: string
  remove (): Promise<void>
  /** For a process about to exit. */
  removeSync (): void
}

export async function createRandomFile (size: number): Promise<RandomFile> {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'fastify-tus-upload-'))
  const file = path.join(dir, `random-${size}.bin`)
  try {
    await pipeline(Readable.from(randomBlocks(size)), createWriteStream(file))
  } catch (error) {
    await fs.rm(dir, { recursive: true, force: true })
    throw error
  }
  return {
    path: file,
    remove: () => fs.rm(dir, { recursive: true, force: true }),
    removeSync: () => { rmSync(dir, { recursive: true, force: true }) }
  }
}

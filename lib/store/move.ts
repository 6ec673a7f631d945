// Moving a file durably: rename where it can, else copy to a temporary file
// beside the destination, fsync, rename into place and unlink the source, so a
// failure never leaves a partial file under the destination's name.
import { randomBytes } from 'node:crypto'
import { copyFile, open, rename, unlink } from 'node:fs/promises'
import path from 'node:path'

export async function syncDirectory (directory: string): Promise<void> {
  const handle = await open(directory, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export async function moveFile (source: string, destination: string): Promise<void> {
  const target = path.resolve(destination)
  try {
    await rename(source, target)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error
    await copyAcross(source, target)
  }
  await syncDirectory(path.dirname(target))
  await syncDirectory(path.dirname(source))
}

async function copyAcross (source: string, target: string): Promise<void> {
  const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await copyFile(source, temporary)
    const handle = await open(temporary, 'r+')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temporary, target)
  } catch (error) {
    await unlink(temporary).catch(() => {})
    throw error
  }
  await unlink(source)
}

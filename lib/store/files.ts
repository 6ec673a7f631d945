// File operations that treat "not there" as an answer rather than a failure:
// every process sharing the directory may have removed the file a moment ago.
import { open, unlink, type FileHandle } from 'node:fs/promises'

export async function openIfPresent (file: string, flags: string): Promise<FileHandle | undefined> {
  try {
    return await open(file, flags)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** True when the file was there to delete. */
export async function unlinkIfPresent (file: string): Promise<boolean> {
  try {
    await unlink(file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}

// One writer per upload: an exclusive flock on the upload's data file. The data
// file is never replaced (records are), so every process locks the same inode,
// and the kernel frees the lock when its holder dies.
import { closeSync, openSync } from 'node:fs'
import { flock, flockSync } from 'fs-ext'

/** Takes the lock without waiting (shared: one that only exclusive holders refuse); false when another open file description holds it. */
export function tryLock (fd: number, mode: 'exnb' | 'shnb' = 'exnb'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    flock(fd, mode, (error) => {
      if (error === null) resolve(true)
      else if (error.code === 'EAGAIN' || error.code === 'EWOULDBLOCK') resolve(false)
      else reject(error)
    })
  })
}

/** Waits for the lock, for work that every contender must see done once (assembling a final upload). */
export function lock (fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    flock(fd, 'ex', (error) => { if (error === null) resolve(); else reject(error) })
  })
}

/**
 * Whether nobody writes the file right now: a shared lock taken and dropped in place (microseconds
 * on a local disk, like the record reads beside it), for readers that must not wait on the thread
 * pool when nobody writes. Undefined when the file is gone.
 */
export function unlockedNow (file: string): boolean | undefined {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  try {
    flockSync(fd, 'shnb')
    return true
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false
    throw error
  } finally {
    closeSync(fd)
  }
}

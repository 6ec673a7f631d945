// Where `fastify-tus upload` remembers upload URLs between runs, by file
// fingerprint: tus-js-client's UrlStorage over one small JSON file. Changes
// are made under an exclusive flock of a sibling lock file (the store itself
// is replaced by rename, so a lock on it would be on an inode that goes away)
// and land by an atomic rename, so two runs writing at once lose nothing and
// a reader never sees half a file.
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import { homedir } from 'node:os'
import path from 'node:path'
import { flock } from 'fs-ext'
import type { PreviousUpload, UrlStorage } from 'tus-js-client'

export function defaultStorePath (): string {
  const config = process.env.XDG_CONFIG_HOME
  const base = config !== undefined && path.isAbsolute(config) ? config : path.join(homedir(), '.config')
  return path.join(base, 'fastify-tus', 'uploads.json')
}

type StoredUpload = Omit<PreviousUpload, 'urlStorageKey'>

interface StoreFile {
  version: 1
  /** By fingerprint: one remembered upload per file. */
  uploads: Record<string, StoredUpload>
}

export class UploadStore implements UrlStorage {
  constructor (readonly path: string) {}

  async findAllUploads (): Promise<PreviousUpload[]> {
    const { uploads } = await this.read()
    return Object.entries(uploads).map(([key, upload]) => ({ ...upload, urlStorageKey: key }))
  }

  async findUploadsByFingerprint (fingerprint: string): Promise<PreviousUpload[]> {
    const { uploads } = await this.read()
    const upload = uploads[fingerprint]
    return upload === undefined ? [] : [{ ...upload, urlStorageKey: fingerprint }]
  }

  async removeUpload (urlStorageKey: string): Promise<void> {
    await this.change((uploads) => { delete uploads[urlStorageKey] })
  }

  /** Remembers `upload` for `fingerprint`, replacing what was remembered for it. */
  async addUpload (fingerprint: string, upload: PreviousUpload): Promise<string> {
    const { urlStorageKey: _key, ...stored } = upload
    await this.change((uploads) => { uploads[fingerprint] = stored })
    return fingerprint
  }

  private async read (): Promise<StoreFile> {
    let text: string
    try {
      text = await fs.readFile(this.path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, uploads: {} }
      throw error
    }
    const parsed = JSON.parse(text)
    if (parsed === null || typeof parsed !== 'object' || parsed.version !== 1 || typeof parsed.uploads !== 'object') {
      throw new Error(`${this.path} is not an upload store`)
    }
    return parsed
  }

  private async change (edit: (uploads: StoreFile['uploads']) => void): Promise<void> {
    // The store holds upload URLs, which may be all it takes to write to an upload: private to the user.
    await fs.mkdir(path.dirname(this.path), { recursive: true, mode: 0o700 })
    const lock = await fs.open(`${this.path}.lock`, 'a', 0o600)
    try {
      await new Promise<void>((resolve, reject) => flock(lock.fd, 'ex', (error) => { if (error === null) resolve(); else reject(error) }))
      const store = await this.read()
      edit(store.uploads)
      const temporary = `${this.path}.${randomBytes(6).toString('hex')}.tmp`
      try {
        const file = await fs.open(temporary, 'w', 0o600)
        try {
          await file.writeFile(`${JSON.stringify(store, null, 2)}\n`)
          await file.sync()
        } finally {
          await file.close()
        }
        await fs.rename(temporary, this.path)
      } catch (error) {
        await fs.rm(temporary, { force: true })
        throw error
      }
    } finally {
      // Closing the descriptor releases the flock.
      await lock.close()
    }
  }
}

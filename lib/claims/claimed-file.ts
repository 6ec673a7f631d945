// One claim on a finished upload: an exclusive non-blocking flock on its data
// file, so the kernel (or the shared filesystem's lock server) arbitrates
// between threads, processes and machines, and a claimer that dies lets go
// without anyone's help. The claimed file saves, and releases, once.
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { ClaimedFile, UploadRecord } from '../../types/index'
import { FST_TUS_ALREADY_RELEASED, FST_TUS_ALREADY_SAVED } from '../errors'
import { tryLock } from '../store/lock'
import { moveFile, syncDirectory } from '../store/move'
import { readRecord, recordName } from '../store/record'

/** The upload claimed; 'busy' when someone else holds it; undefined when it is gone (claimed and released, or no data). */
export async function tryClaim (directory: string, id: string): Promise<ClaimedFile | 'busy' | undefined> {
  let handle: FileHandle
  try {
    handle = await open(path.join(directory, id), 'r')
  } catch {
    return undefined
  }
  try {
    if (!await tryLock(handle.fd)) {
      await handle.close()
      return 'busy'
    }
    // Released (deleted) between our open and our lock: the inode is no longer the upload.
    const [{ nlink }, record] = await Promise.all([handle.stat(), readRecord(directory, id)])
    if (nlink === 0 || record === undefined) {
      await handle.close()
      return undefined
    }
    return new Claim(directory, record, handle)
  } catch (error) {
    await handle.close()
    throw error
  }
}

/** A filesystem-safe name from the client's filename: no separators, no control characters. */
export function safeName (record: UploadRecord): string {
  const raw = record.metadata.filename ?? record.metadata.name ?? ''
  // eslint-disable-next-line no-control-regex
  let name = raw.replace(/[/\\\x00-\x1f\x7f]/g, '_').trim()
  while (Buffer.byteLength(name) > 255) name = name.slice(0, -1)
  return name === '' || name === '.' || name === '..' ? record.id : name
}

class Claim implements ClaimedFile {
  readonly id: string
  readonly name: string
  readonly record: UploadRecord
  path: string
  private readonly recordPath: string
  private dataSaved = false
  private recordSaved = false
  private released = false

  constructor (private readonly directory: string, record: UploadRecord, private readonly handle: FileHandle) {
    this.id = record.id
    this.record = record
    this.name = safeName(record)
    this.path = path.join(directory, record.id)
    this.recordPath = path.join(directory, recordName(record.id))
  }

  async save (destination: string): Promise<string> {
    this.usable('data', this.dataSaved)
    await mkdir(path.dirname(path.resolve(destination)), { recursive: true })
    await moveFile(this.path, destination)
    this.dataSaved = true
    this.path = path.resolve(destination)
    return this.path
  }

  async saveRecord (destination: string): Promise<string> {
    this.usable('record', this.recordSaved)
    await mkdir(path.dirname(path.resolve(destination)), { recursive: true })
    await moveFile(this.recordPath, destination)
    this.recordSaved = true
    return path.resolve(destination)
  }

  async release (): Promise<void> {
    if (this.released) return
    this.released = true
    try {
      // Record first: without it no other claimer considers the upload, even after a crash here.
      if (!this.recordSaved) await unlink(this.recordPath).catch(ignoreMissing)
      if (!this.dataSaved) await unlink(this.path).catch(ignoreMissing)
      await syncDirectory(this.directory)
    } finally {
      await this.handle.close()
    }
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.release()
  }

  private usable (what: 'data' | 'record', saved: boolean): void {
    if (this.released) throw new FST_TUS_ALREADY_RELEASED(this.id)
    if (saved) throw new FST_TUS_ALREADY_SAVED(what, this.id)
  }
}

function ignoreMissing (error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error
}

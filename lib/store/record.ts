// Records (<id>.meta) are read with one read and replaced atomically: write a
// temporary file, fsync it, rename it over the record, fsync the directory.
import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import type { UploadRecord } from '../../types/index'
import { FST_TUS_CORRUPT_RECORD } from '../errors'
import type { Directory } from './directory'

export const recordName = (id: string): string => `${id}.meta`

/** The record, or undefined when there is none. */
export async function readRecord (directory: string, id: string): Promise<UploadRecord | undefined> {
  let text: string
  try {
    text = await readFile(path.join(directory, recordName(id)), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  try {
    return JSON.parse(text, (key, value) => key === 'metadata' ? Object.assign(Object.create(null), value) : value) as UploadRecord
  } catch (error) {
    throw new FST_TUS_CORRUPT_RECORD(id, (error as Error).message)
  }
}

/** Replaces the record atomically; with fsync, durably (the directory's fsync also persists any name created in it before). */
export async function writeRecord (directory: Directory, record: UploadRecord, fsync: boolean): Promise<void> {
  // Dot-prefixed so that scans for records never see a half-written one.
  const temporary = path.join(directory.path, `.${record.id}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temporary, 'wx', 0o644)
  try {
    await handle.writeFile(JSON.stringify(record))
    if (fsync) await handle.sync()
  } catch (error) {
    await handle.close()
    await unlink(temporary).catch(() => {})
    throw error
  }
  await handle.close()
  await rename(temporary, path.join(directory.path, recordName(record.id)))
  if (fsync) await directory.sync()
}

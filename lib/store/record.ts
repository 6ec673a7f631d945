// Records (<id>.meta) are read with one read and replaced atomically: write a
// temporary file, fsync it, rename it over the record, fsync the directory.
// A record is a few hundred bytes: its open, read, write, close and rename are
// made in place (microseconds on a local disk, far less CPU than a trip through
// the thread pool); only the fsyncs, which wait for the disk, go to the pool.
import { randomBytes } from 'node:crypto'
import { closeSync, fsync as fsyncFd, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import type { UploadRecord } from '../../types/index'
import { FST_TUS_CORRUPT_RECORD } from '../errors'
import type { Directory } from './directory'

const fsync = promisify(fsyncFd)

export const recordName = (id: string): string => `${id}.meta`

/** The record, or undefined when there is none. */
export async function readRecord (directory: string, id: string): Promise<UploadRecord | undefined> {
  let text: string
  try {
    text = readFileSync(path.join(directory, recordName(id)), 'utf8')
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
export async function writeRecord (directory: Directory, record: UploadRecord, durable: boolean): Promise<void> {
  // Dot-prefixed so that scans for records never see a half-written one.
  const temporary = path.join(directory.path, `.${record.id}.${randomBytes(6).toString('hex')}.tmp`)
  const fd = openSync(temporary, 'wx', 0o644)
  try {
    writeFileSync(fd, JSON.stringify(record))
    if (durable) await fsync(fd)
  } catch (error) {
    closeSync(fd)
    unlinkSync(temporary)
    throw error
  }
  closeSync(fd)
  renameSync(temporary, path.join(directory.path, recordName(record.id)))
  if (durable) await directory.sync()
}

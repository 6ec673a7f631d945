// Records (<id>.meta) are read whole in place and replaced atomically: write a
// temporary file, fsync it, rename it over the record, fsync the directory.
// A record is a few hundred bytes: its open, read, write, close and rename are
// made in place (microseconds on a local disk, far less CPU than a trip through
// the thread pool); only what waits for the disk goes to the pool: the fsyncs,
// and the creation of a durable record's temporary file (it waits for the journal).
import { randomBytes } from 'node:crypto'
import { closeSync, fsync as fsyncFd, open as openFd, openSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import type { UploadRecord } from '../../types/index'
import { FST_TUS_CORRUPT_RECORD } from '../errors'
import type { Directory } from './directory'

const fsync = promisify(fsyncFd)
const open = promisify(openFd)
// Temporary names unique across processes and machines sharing the directory, without a random draw per write.
const writer = `${randomBytes(6).toString('hex')}-${process.pid}`
let written = 0

export const recordName = (id: string): string => `${id}.meta`

// A record replaced through another client of a network filesystem (NFS,
// GlusterFS) may be gone between lookup and open: ESTALE, worth another look.
const ESTALE = -constants.errno.ESTALE
const STALE_RETRIES = 5

/** The record, or undefined when there is none. */
export async function readRecord (directory: string, id: string): Promise<UploadRecord | undefined> {
  let text: string | undefined
  for (let attempt = 0; text === undefined; attempt++) {
    try {
      // A slash joins any directory name to a file name; path.join normalizing it too was a few % of a HEAD.
      text = readText(`${directory}/${recordName(id)}`)
    } catch (error) {
      const { code, errno } = error as NodeJS.ErrnoException
      if (code === 'ENOENT') return undefined
      if (errno !== ESTALE || attempt === STALE_RETRIES) throw error
    }
  }
  let record: UploadRecord
  try {
    // No reviver: one made JSON.parse several times slower, for the one object that needs it.
    record = JSON.parse(text)
  } catch (error) {
    throw new FST_TUS_CORRUPT_RECORD(id, (error as Error).message)
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new FST_TUS_CORRUPT_RECORD(id, 'not a JSON object')
  // Client-chosen keys: no inherited ones among them.
  if (typeof record.metadata === 'object' && record.metadata !== null) record.metadata = Object.assign(Object.create(null), record.metadata)
  return record
}

// Every record is read into this one buffer, grown when a record outgrows it:
// the reads are synchronous, so no two share it. Opening, reading and closing in
// turn answered about 30 % more HEADs per second than readFileSync.
let readBuffer = Buffer.allocUnsafe(16 * 1024)

function readText (file: string): string {
  const fd = openSync(file, 'r')
  try {
    let length = 0
    for (;;) {
      if (length === readBuffer.length) readBuffer = Buffer.concat([readBuffer, Buffer.allocUnsafe(readBuffer.length)])
      // Until end of file: a network filesystem may answer a read with fewer bytes than are there.
      const bytes = readSync(fd, readBuffer, length, readBuffer.length - length, length)
      if (bytes === 0) return readBuffer.toString('utf8', 0, length)
      length += bytes
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Replaces the record atomically. With `durable`, its content is fsynced before
 * the rename (another request's directory fsync may persist the new name at any
 * time, and must never find an empty record behind it); with `named` too, the
 * directory is fsynced, which makes the name and every earlier change in the
 * directory durable.
 */
export async function writeRecord (directory: Directory, record: UploadRecord, durable: boolean, named = durable, covered?: Promise<void>): Promise<void> {
  await replaceFile(directory, recordName(record.id), JSON.stringify(record), durable, named, covered)
}

/** Replaces `<directory>/<name>` with `text` atomically, as writeRecord does a record. */
export async function replaceFile (directory: Directory, name: string, text: string, durable: boolean, named = durable, covered?: Promise<void>): Promise<void> {
  // Dot-prefixed so that scans for records never see a half-written one.
  const temporary = path.join(directory.path, `.${name}.${writer}-${written++}.tmp`)
  // Creating a name waits for the filesystem's journal, which other requests' fsyncs keep
  // committing: off the event loop when fsyncing (in place, it was a fifth of the main
  // thread's time with 32 creations with data at once).
  const fd = durable ? await open(temporary, 'wx', 0o644) : openSync(temporary, 'wx', 0o644)
  try {
    writeFileSync(fd, text)
    // `covered` (the data the record speaks of, being made durable) runs beside this fsync;
    // the record takes its name only once both are done.
    await Promise.all([durable ? fsync(fd) : undefined, covered])
  } catch (error) {
    closeSync(fd)
    unlinkSync(temporary)
    throw error
  }
  closeSync(fd)
  renameSync(temporary, path.join(directory.path, name))
  if (durable && named) await directory.sync()
}

// The disk ceiling: the sink's protocol, but each body goes to <dir>/files/<id>
// at its offset and is fsynced before the answer; a new file's name is made
// durable too, by a directory fsync that concurrent uploads share (one in
// flight, the others join the next). No record, no lock.
import { createWriteStream, mkdirSync, openSync, fsync } from 'node:fs'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { serverArgs, tusLikeServer } from './common.mjs'

const directory = path.join(serverArgs().dir, 'files')
mkdirSync(directory, { recursive: true })
const directoryFd = openSync(directory, 'r')
const fsyncFd = promisify(fsync)

// Group commit: a caller needs a directory fsync that starts after its file was
// created, so callers that arrive while one runs all wait for the same next one.
let running
let next
function syncDirectory () {
  if (next !== undefined) return next
  if (running === undefined) return begin()
  const after = () => { next = undefined; return begin() }
  next = running.then(after, after)
  return next
}
function begin () {
  const current = fsyncFd(directoryFd)
  running = current
  const done = () => { if (running === current) running = undefined }
  current.then(done, done)
  return current
}

// Resolves once the bytes are durable (`flush` fsyncs before the close), and a new file's name too.
tusLikeServer(async (req, id, offset, created) => {
  const out = createWriteStream(path.join(directory, id), { flags: created ? 'w' : 'r+', start: offset, mode: 0o644, highWaterMark: 1024 * 1024, flush: true })
  await pipeline(req, out)
  if (created) await syncDirectory()
  return out.bytesWritten
})

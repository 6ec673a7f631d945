// The disk ceiling: the sink's protocol, but each body goes to <dir>/files/<id>
// at its offset and is fdatasync'ed before the answer; no record, no lock.
import { createWriteStream, mkdirSync } from 'node:fs'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { serverArgs, tusLikeServer } from './common.mjs'

const directory = path.join(serverArgs().dir, 'files')
mkdirSync(directory, { recursive: true })

// Resolves once the bytes are durable (`flush` fsyncs before the close).
tusLikeServer(async (req, id, offset, created) => {
  const out = createWriteStream(path.join(directory, id), { flags: created ? 'w' : 'r+', start: offset, mode: 0o644, highWaterMark: 1024 * 1024, flush: true })
  await pipeline(req, out)
  return out.bytesWritten
})

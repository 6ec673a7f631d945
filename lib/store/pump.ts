// Moves a request body into an UploadSink. Unlike stream.pipeline it does not
// destroy the request when the sink refuses more bytes, so the server can still
// answer (413, 507) on the same socket.
import { finished, type Readable } from 'node:stream'
import type { UploadSink } from './sink'

export function pump (source: Readable, sink: UploadSink): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      source.unpipe(sink)
      source.pause()
      sink.destroy()
      reject(error)
    }
    const stopWatching = finished(source, (error) => { if (error) fail(error) })
    sink.once('error', fail)
    sink.once('finish', () => {
      stopWatching()
      resolve()
    })
    source.pipe(sink)
  })
}

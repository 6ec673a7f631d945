// Moves a request body into an UploadSink. Unlike stream.pipeline it does not
// destroy the request when the sink refuses more bytes, so the server can still
// answer (413, 507) on the same socket; and when the request dies, the bytes it
// had delivered are still written before the failure is reported.
import { finished, type Readable } from 'node:stream'
import type { UploadSink } from './sink'

export function pump (source: Readable, sink: UploadSink): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false
    const stop = (): boolean => {
      if (failed) return false
      failed = true
      source.unpipe(sink)
      source.pause()
      return true
    }
    // The sink refused (a limit, a full disk): nothing more will be written.
    const sinkFailed = (error: Error): void => {
      if (!stop()) return
      sink.destroy()
      reject(error)
    }
    // The request failed (an abort, a takeover): what it delivered is still written.
    const sourceFailed = (error: Error): void => {
      if (!stop()) return
      sink.removeListener('error', sinkFailed)
      const settle = (): void => reject(error)
      sink.once('finish', settle)
      sink.once('error', settle)
      sink.end()
    }
    const stopWatching = finished(source, (error) => { if (error) sourceFailed(error) })
    sink.once('error', sinkFailed)
    sink.once('finish', () => {
      stopWatching()
      if (!failed) resolve()
    })
    source.pipe(sink)
  })
}

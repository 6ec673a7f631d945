// What the one info line of an upload's created, completed, terminated or
// failed event says about it: its id, length, offset and age.
import type { FastifyBaseLogger } from 'fastify'
import type { UploadRecord } from '../types/index'

export interface UploadSummary {
  uploadId?: string | null
  length: number | null
  offset: number | null
  /** ms from creation to finish (or to now, for an upload that did not finish). */
  duration: number | null
}

/** The upload's fields for `log`; its id unless the logger already carries it. */
export function summary (log: FastifyBaseLogger, upload: UploadRecord | null): UploadSummary {
  // pino's loggers tell their bindings; Fastify's logger type does not say so.
  const bound = (log as { bindings?: () => Record<string, unknown> }).bindings?.().uploadId
  if (upload === null) return { ...(bound !== undefined ? {} : { uploadId: null }), length: null, offset: null, duration: null }
  return {
    // Another upload's request may finish this one (a final assembled from its partials): then it is named.
    ...(bound === upload.id ? {} : { uploadId: upload.id }),
    length: upload.length,
    offset: upload.offset,
    duration: upload.duration ?? Date.now() - Date.parse(upload.createdAt)
  }
}

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

/** The upload's fields for `log`; its id only when the logger does not carry it already. */
export function summary (log: FastifyBaseLogger, upload: UploadRecord | null): UploadSummary {
  // pino's loggers tell their bindings; Fastify's logger type does not say so.
  const named = (log as { bindings?: () => Record<string, unknown> }).bindings?.().uploadId !== undefined
  if (upload === null) return { ...(named ? {} : { uploadId: null }), length: null, offset: null, duration: null }
  return {
    ...(named ? {} : { uploadId: upload.id }),
    length: upload.length,
    offset: upload.offset,
    duration: upload.duration ?? Date.now() - Date.parse(upload.createdAt)
  }
}

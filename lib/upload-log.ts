// What the one info line of an upload's created, completed, terminated or
// failed event says about it: its id, length, offset and age.
import type { UploadRecord } from '../types/index'

export interface UploadSummary {
  uploadId: string | null
  length: number | null
  offset: number | null
  /** ms from creation to finish (or to now, for an upload that did not finish). */
  duration: number | null
}

export function summary (upload: UploadRecord | null): UploadSummary {
  if (upload === null) return { uploadId: null, length: null, offset: null, duration: null }
  return {
    uploadId: upload.id,
    length: upload.length,
    offset: upload.offset,
    duration: upload.duration ?? Date.now() - Date.parse(upload.createdAt)
  }
}

// Upload ids are random v4 UUIDs; anything else from a URL never reaches the filesystem.
import { randomUUID } from 'node:crypto'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

export const newUploadId = (): string => randomUUID()

export function isUploadId (id: unknown): boolean {
  return typeof id === 'string' && UUID_V4.test(id)
}

// Problem details (RFC 9457), the body of every refusal the IETF protocol
// sends. `type` is one of the draft's problem types where one applies, else
// about:blank (whose title is the status text); `code` is the plugin's own
// FST_TUS_* code, an extension member. No I/O.
import { STATUS_CODES } from 'node:http'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

export interface ProblemDocument {
  type: string
  title: string
  status: number
  detail: string
  code: string
  [extension: string]: unknown
}

const TITLES: Record<string, string> = {
  'mismatching-upload-offset': 'offset from request does not match offset of resource',
  'inconsistent-upload-length': 'inconsistent length values for upload',
  'completed-upload': 'upload is already completed'
}

export interface ProblemInput {
  status: number
  code: string
  detail: string
  /** A problem type URI; its fragment names the kind. about:blank when absent. */
  type?: string
  extensions?: Record<string, unknown>
}

export function problemDocument ({ status, code, detail, type, extensions = {} }: ProblemInput): ProblemDocument {
  const kind = type?.slice(type.indexOf('#') + 1)
  const title = (kind !== undefined ? TITLES[kind] : undefined) ?? STATUS_CODES[status] ?? 'Error'
  // Standard members are written after the extensions, so that no extension can replace one.
  return { ...extensions, type: type ?? 'about:blank', title, status, detail, code }
}

// Plumbing for the IETF draft tests: the interop versions real clients send,
// each version's field names, and requests written as raw bytes.
import type { Test } from 'tap'
import type { RawResponse } from './raw-socket'

/** Every interop version the plugin speaks: 3 (iOS 17), 4, 5 and 6 (iOS 18, tus-js-client), 7, 8 (iOS 26), 9. */
export const VERSIONS = [3, 4, 5, 6, 7, 8, 9] as const
export type Version = typeof VERSIONS[number]

export const PROBLEM = 'https://iana.org/assignments/http-problem-types#'

/** The completeness field of a request or response: version 3 says Upload-Incomplete, with the opposite value. */
export function completeField (version: number, complete: boolean): Record<string, string> {
  return version === 3 ? { 'upload-incomplete': complete ? '?0' : '?1' } : { 'upload-complete': complete ? '?1' : '?0' }
}

export function isComplete (version: number, headers: Record<string, string | string[] | undefined>): boolean | undefined {
  const value = version === 3 ? headers['upload-incomplete'] : headers['upload-complete']
  if (value !== '?0' && value !== '?1') return undefined
  return (value === '?1') !== (version === 3)
}

/** Headers of an append at `offset`: labelled application/partial-upload, which versions 3 to 5 do not need but accept. */
export function appendFields (version: number, offset: number, complete: boolean, extra: Record<string, string | number> = {}): Record<string, string | number> {
  return { 'upload-draft-interop-version': version, 'upload-offset': offset, 'content-type': 'application/partial-upload', ...completeField(version, complete), ...extra }
}

/** The Upload-Limit a version announces for a server with `limits`, or none before version 6. */
export function expectedLimit (version: number, members: string): string | undefined {
  return version >= 6 ? members : undefined
}

/** A 104 announcing an upload, exactly as the draft's section on interop versions says it must be written. */
export function announcement (version: number, location: string, limit: string | undefined): string {
  return 'HTTP/1.1 104 Upload Resumption Supported\r\n' +
    `Location: ${location}\r\n` +
    `Upload-Draft-Interop-Version: ${version}\r\n` +
    (limit === undefined ? '' : `Upload-Limit: ${limit}\r\n`) +
    '\r\n'
}

/** Asserts a problem document: status, media type, problem type (about:blank where the version has none) and FST_TUS_* code. */
export function assertProblem (t: Test, response: RawResponse | { statusCode: number, headers: Record<string, unknown>, json (): any }, status: number, code: string, type: string | undefined, what: string): any {
  const statusCode = 'status' in response ? response.status : response.statusCode
  t.equal(statusCode, status, `${what}: status`)
  t.match(String(response.headers['content-type']), /^application\/problem\+json/, `${what}: a problem document`)
  const body = response.json()
  t.equal(body.type, type === undefined ? 'about:blank' : `${PROBLEM}${type}`, `${what}: problem type`)
  t.equal(body.status, status, `${what}: status member`)
  t.equal(body.code, code, `${what}: code member`)
  return body
}

// What differs between the interop versions of the IETF resumable-upload draft
// (the integer clients send in Upload-Draft-Interop-Version). Draft number and
// interop version are not the same: tus-js-client's 'ietf-draft-03' sends 5 and
// 'ietf-draft-05' sends 6; URLSession sends 3 (iOS 17), 5 or 6 (iOS 18), 8 (iOS 26).

const PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types'

export type ProblemKind = 'mismatching-upload-offset' | 'inconsistent-upload-length' | 'completed-upload'

export interface InteropVersion {
  readonly version: number
  /** The drafts that use it. */
  readonly drafts: string
  /** Drafts -00 and -01 said `Upload-Incomplete` (true while parts are missing); later ones `Upload-Complete`. */
  readonly completeHeader: 'upload-complete' | 'upload-incomplete'
  /** From -04 on, an append must be labelled `application/partial-upload`. */
  readonly partialUploadType: boolean
  /** From -04 on, `Upload-Limit` announces the limits; the lifetime key was renamed in -06. */
  readonly limits: false | { readonly lifetimeKey: 'expires' | 'max-age' }
  /** The problem types (RFC 9457) this version defines. */
  readonly problems: ReadonlySet<ProblemKind>
}

function version (version: number, drafts: string, rest: Partial<InteropVersion>): InteropVersion {
  return Object.freeze({
    version,
    drafts,
    completeHeader: 'upload-complete',
    partialUploadType: true,
    limits: Object.freeze({ lifetimeKey: 'max-age' }),
    problems: new Set<ProblemKind>(['mismatching-upload-offset', 'inconsistent-upload-length']),
    ...rest
  } as const)
}

const OLD = { partialUploadType: false, limits: false, problems: new Set<ProblemKind>() } as const

export const INTEROP_VERSIONS: ReadonlyMap<number, InteropVersion> = new Map([
  version(3, '-01', { ...OLD, completeHeader: 'upload-incomplete' }),
  version(4, '-02', OLD),
  version(5, '-03', OLD),
  version(6, '-04, -05', { limits: Object.freeze({ lifetimeKey: 'expires' }), problems: new Set(['mismatching-upload-offset', 'completed-upload']) }),
  version(7, '-06 to -08', { problems: new Set(['mismatching-upload-offset', 'inconsistent-upload-length', 'completed-upload']) }),
  version(8, '-09 to -11', { problems: new Set(['mismatching-upload-offset', 'inconsistent-upload-length', 'completed-upload']) }),
  // -12 removed the completed-upload problem type.
  version(9, '-12', {})
].map((entry) => [entry.version, entry]))

export const SUPPORTED_VERSIONS: readonly number[] = Object.freeze([...INTEROP_VERSIONS.keys()])

/** The version a request speaks, or undefined when it sends none, or one this server does not support. */
export function interopVersionOf (header: string | string[] | undefined): InteropVersion | undefined {
  // A bare decimal only: "06" or "6;x" are not a version we could echo back as received.
  if (typeof header !== 'string' || !/^[1-9][0-9]?$/.test(header.trim())) return undefined
  return INTEROP_VERSIONS.get(Number(header.trim()))
}

export function problemTypeUri (kind: ProblemKind): string {
  return `${PROBLEM_TYPES}#${kind}`
}

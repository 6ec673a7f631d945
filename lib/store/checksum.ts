// Upload-Checksum: the digest of one request's body, computed while it streams
// to disk (no second read). A body whose trailer will name the algorithm is
// hashed with every supported one, since which is only known at its end.
import { createHash, type Hash } from 'node:crypto'
import type { ChecksumAlgorithm } from '../../types/index'
import { FST_TUS_CHECKSUM_MISMATCH, FST_TUS_INVALID_CHECKSUM } from '../errors'

export interface Checksum {
  algorithm: ChecksumAlgorithm
  digest: Buffer
}

export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['sha1', 'sha256', 'sha512', 'md5']

/** A checksum known before the body, or one read from a trailer after it (undefined when none came). */
export type ExpectedChecksum = Checksum | (() => Checksum | undefined)

export class ChecksumVerifier {
  private readonly hashes: Map<ChecksumAlgorithm, Hash>

  constructor (private readonly expected: ExpectedChecksum) {
    const algorithms = typeof expected === 'function' ? CHECKSUM_ALGORITHMS : [expected.algorithm]
    this.hashes = new Map(algorithms.map((algorithm) => [algorithm, createHash(algorithm)]))
  }

  update (buffers: readonly Buffer[]): void {
    for (const hash of this.hashes.values()) for (const buffer of buffers) hash.update(buffer)
  }

  /** Throws FST_TUS_CHECKSUM_MISMATCH (460) unless the body hashed to the expected digest. */
  verify (): void {
    const expected = typeof this.expected === 'function' ? this.expected() : this.expected
    if (expected === undefined) throw new FST_TUS_INVALID_CHECKSUM('the Upload-Checksum trailer announced by the request never came')
    const actual = this.hashes.get(expected.algorithm)!.digest()
    if (!actual.equals(expected.digest)) throw new FST_TUS_CHECKSUM_MISMATCH(expected.algorithm)
  }
}

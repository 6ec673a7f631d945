// Seeded randomness for tests that print their seed, so that a failing run's
// choices can be replayed (timing aside).
import { createCipheriv, createHash } from 'node:crypto'

export function random (seed: number): () => number {
  let state = seed >>> 0
  return () => { // mulberry32
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
}

export const between = (rand: () => number, low: number, high: number): number => low + Math.floor(rand() * (high - low + 1))

/** Deterministic pseudo-random bytes named by key (AES-CTR keystream: fast, incompressible). */
export function bytesOf (key: string, length: number): Buffer {
  const digest = createHash('sha256').update(key).digest()
  return createCipheriv('aes-128-ctr', digest.subarray(0, 16), digest.subarray(16)).update(Buffer.alloc(length))
}

// The value of `serve --trust-proxy`: which proxies' X-Forwarded-* headers
// Fastify believes (its trustProxy option).
import { isIP } from 'node:net'

// proxy-addr's (Fastify's) names for address ranges.
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

/** `true`/`false`, or a comma-separated list of addresses, CIDRs and range names. */
export function trustProxyFlag (value: string): boolean | string[] {
  if (value === 'true') return true
  if (value === 'false') return false
  // Fastify takes a hop count but, unable to check who sent the headers then, believes none of them.
  if (/^[0-9]+$/.test(value)) throw new Error(`--trust-proxy takes no hop count ("${value}"): give the proxies' addresses or CIDRs, or true`)
  const entries = value.split(',').map((entry) => entry.trim())
  for (const entry of entries) {
    if (!trustable(entry)) {
      throw new Error(`--trust-proxy: "${entry}" is not an address, a CIDR (10.0.0.0/8) or one of ${[...RANGE_NAMES].join(', ')}`)
    }
  }
  return entries
}

function trustable (entry: string): boolean {
  if (RANGE_NAMES.has(entry)) return true
  const [address, prefix, extra] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  if (prefix === undefined) return true
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)
}

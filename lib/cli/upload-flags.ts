// The flags of `fastify-tus upload`, one row each, as for serve.
import { flagsHelp, integerFlag, positiveFlag, type Flag } from './flags'
import { defaultStorePath } from './upload-store'

export type ChecksumAlgorithm = 'sha1' | 'sha256' | 'sha512' | 'md5'
const CHECKSUMS: readonly ChecksumAlgorithm[] = ['sha1', 'sha256', 'sha512', 'md5']

export interface UploadOptions {
  endpoint: string | undefined
  chunkSize: number
  parallel: number
  /** From --metadata; filename and filetype come from the file unless set here. */
  metadata: Record<string, string>
  checksum: ChecksumAlgorithm | undefined
  headers: Record<string, string>
  retries: number
  store: string
  resume: boolean
  /** Bytes of random data to upload when no FILE is given. */
  size: number | undefined
}

// The client sets these itself; one from --header would break the protocol.
const MANAGED_HEADERS = /^(tus-resumable|upload-.*|content-type|content-length|transfer-encoding|host|x-http-method-override)$/i

function metadataEntry (value: string): [string, string] {
  const equals = value.indexOf('=')
  const key = equals === -1 ? '' : value.slice(0, equals)
  // Upload-Metadata keys are printable ASCII without spaces or commas.
  if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(key)) throw new Error(`--metadata needs key=value with a key of printable ASCII, no spaces or commas, got "${value}"`)
  return [key, value.slice(equals + 1)]
}

function headerEntry (value: string): [string, string] {
  const match = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):\s*(.*)$/.exec(value)
  if (match === null) throw new Error(`--header needs "Name: value", got "${value}"`)
  if (MANAGED_HEADERS.test(match[1])) throw new Error(`--header: ${match[1]} is set by the tus client itself`)
  return [match[1], match[2].trim()]
}

function endpointFlag (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new Error(`--endpoint needs an http(s) URL, got "${value}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--endpoint needs an http(s) URL, got "${value}"`)
  return value
}

export const UPLOAD_FLAGS: ReadonlyArray<Flag<UploadOptions>> = [
  { name: 'endpoint', value: 'URL', help: 'the tus server\'s upload URL, e.g. http://127.0.0.1:1080/files (required)', apply: (o, v: string) => { o.endpoint = endpointFlag(v) } },
  { name: 'chunk-size', value: 'BYTES', help: 'largest PATCH body (default: the whole file in one)', apply: (o, v: string) => { o.chunkSize = positiveFlag('--chunk-size', v) } },
  { name: 'parallel', value: 'N', help: 'upload each file as N partial uploads at once, then join them (concatenation)', apply: (o, v: string) => { o.parallel = positiveFlag('--parallel', v) } },
  {
    name: 'metadata',
    value: 'KEY=VALUE',
    multiple: true,
    help: 'Upload-Metadata entry (repeatable; filename and filetype come from the file unless given)',
    apply: (o, v: string[]) => { for (const entry of v) { const [key, value] = metadataEntry(entry); o.metadata[key] = value } }
  },
  {
    name: 'checksum',
    value: 'ALGO',
    help: `send Upload-Checksum with every chunk: ${CHECKSUMS.join(', ')} (each chunk is read twice)`,
    apply: (o, v: string) => {
      if (!CHECKSUMS.includes(v as ChecksumAlgorithm)) throw new Error(`--checksum needs one of ${CHECKSUMS.join(', ')}, got "${v}"`)
      o.checksum = v as ChecksumAlgorithm
    }
  },
  {
    name: 'header',
    value: '"NAME: VALUE"',
    multiple: true,
    help: 'an HTTP header for every request, e.g. "Authorization: Bearer ..." (repeatable)',
    apply: (o, v: string[]) => { for (const entry of v) { const [name, value] = headerEntry(entry); o.headers[name] = value } }
  },
  { name: 'retries', value: 'N', help: 'retries of a failed request, waiting 0.5 s, 1 s, 2 s ... up to 10 s (default 5)', apply: (o, v: string) => { o.retries = integerFlag('--retries', v) } },
  { name: 'store', value: 'PATH', help: 'where upload URLs are remembered (default: fastify-tus/uploads.json in $XDG_CONFIG_HOME or ~/.config)', apply: (o, v: string) => { o.store = v } },
  { name: 'no-resume', help: 'start new uploads instead of resuming remembered ones', apply: (o) => { o.resume = false } },
  { name: 'size', value: 'BYTES', help: 'without FILE: bytes of random data to upload (default 1048576)', apply: (o, v: string) => { o.size = integerFlag('--size', v) } }
]

export function defaultUploadOptions (): UploadOptions {
  return {
    endpoint: undefined,
    chunkSize: Infinity,
    parallel: 1,
    metadata: {},
    checksum: undefined,
    headers: {},
    retries: 5,
    store: defaultStorePath(),
    resume: true,
    size: undefined
  }
}

export function uploadHelp (): string {
  return flagsHelp('Usage: fastify-tus upload [FILE...] --endpoint URL [options]\n\nUploads each FILE (or, without one, a temporary file of random data) and prints\none line per file with its upload URL. Running the same command again resumes\nwhere a killed or cut-off run stopped.', UPLOAD_FLAGS)
}

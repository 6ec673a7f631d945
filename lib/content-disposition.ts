// The filename of a Content-Disposition header (RFC 6266), with the extended
// `filename*` form (RFC 8187: charset'language'percent-encoded) preferred over
// the plain one, as RFC 6266 asks. Strict: a malformed header has no filename.
// No I/O.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const ATTR_CHAR = /^[!#$&+\-.^_`|~0-9A-Za-z]$/
const utf8 = new TextDecoder('utf-8', { fatal: true })
const latin1 = new TextDecoder('latin1')

type Header = string | string[] | undefined

/** The decoded filename, or undefined when the header is absent, malformed or names none. */
export function dispositionFilename (value: Header): string | undefined {
  if (typeof value !== 'string') return undefined
  const params = parseDisposition(value)
  if (params === undefined) return undefined
  const extended = params.get('filename*')
  if (extended !== undefined) {
    const decoded = decodeExtValue(extended)
    if (decoded !== undefined) return decoded
  }
  return params.get('filename')
}

// `type *( ";" param )`, parameters lower-cased by name; a name given twice is malformed.
function parseDisposition (value: string): Map<string, string> | undefined {
  let rest = value.trim()
  const type = /^[^;\s]+/.exec(rest)?.[0]
  if (type === undefined || !TOKEN.test(type)) return undefined
  rest = rest.slice(type.length)
  const params = new Map<string, string>()
  while (rest.trim() !== '') {
    const match = /^\s*;\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*/.exec(rest)
    if (match === null) return undefined
    const name = match[1].toLowerCase()
    rest = rest.slice(match[0].length)
    let parsed: { value: string, length: number } | undefined
    if (rest.startsWith('"')) {
      // An ext-value is never quoted (RFC 8187 section 3.2).
      parsed = name.endsWith('*') ? undefined : quotedString(rest)
    } else {
      const token = /^[^;\s]+/.exec(rest)?.[0]
      parsed = token !== undefined && (name.endsWith('*') || TOKEN.test(token)) ? { value: token, length: token.length } : undefined
    }
    if (parsed === undefined || params.has(name)) return undefined
    params.set(name, parsed.value)
    rest = rest.slice(parsed.length)
  }
  return params
}

function quotedString (input: string): { value: string, length: number } | undefined {
  let value = ''
  for (let at = 1; at < input.length; at++) {
    const char = input[at]
    if (char === '"') return { value, length: at + 1 }
    if (char === '\\') {
      at++
      if (at >= input.length) return undefined
      value += input[at]
    } else {
      const code = char.charCodeAt(0)
      if ((code < 0x20 && code !== 0x09) || code === 0x7f) return undefined
      value += char
    }
  }
  return undefined
}

// RFC 8187: `charset "'" [ language ] "'" value-chars`, charset UTF-8 or ISO-8859-1.
function decodeExtValue (value: string): string | undefined {
  const match = /^([!#$%&+\-^_`{}~0-9A-Za-z]+)'([A-Za-z0-9-]*)'(.*)$/.exec(value)
  if (match === null) return undefined
  const charset = match[1].toLowerCase()
  if (charset !== 'utf-8' && charset !== 'iso-8859-1') return undefined
  const bytes: number[] = []
  const chars = match[3]
  for (let at = 0; at < chars.length; at++) {
    const char = chars[at]
    if (char === '%') {
      const hex = chars.slice(at + 1, at + 3)
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined
      bytes.push(parseInt(hex, 16))
      at += 2
    } else if (ATTR_CHAR.test(char)) {
      bytes.push(char.charCodeAt(0))
    } else {
      return undefined
    }
  }
  try {
    return (charset === 'utf-8' ? utf8 : latin1).decode(Uint8Array.from(bytes))
  } catch {
    return undefined
  }
}

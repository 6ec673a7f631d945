// The parts of RFC 9651 Structured Field Values that the IETF resumable-upload
// draft needs: Items (Integer, Boolean, Token, String, with parameters) and
// Dictionaries, parsed strictly (anything malformed is undefined: the draft says
// an invalid field is ignored) and serialised canonically. No I/O.

export type BareItem = number | boolean | string | Token
export interface Item { value: BareItem, params: Map<string, BareItem> }

/** A Token, kept apart from a String so that serialising gives the same form back. */
export class Token {
  constructor (readonly name: string) {}
}

type Header = string | string[] | undefined

const KEY_START = /[a-z*]/
const KEY_CHAR = /[a-z0-9_\-.*]/
const TOKEN_START = /[A-Za-z*]/
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/
const MAX_INTEGER = 999_999_999_999_999

class ParseError extends Error {}

class Parser {
  private at = 0
  constructor (private readonly input: string) {}

  get done (): boolean { return this.at >= this.input.length }
  peek (): string { return this.input[this.at] ?? '' }
  private fail (): never { throw new ParseError() }

  skip (chars: string): void {
    while (!this.done && chars.includes(this.peek())) this.at++
  }

  expect (char: string): void {
    if (this.peek() !== char) this.fail()
    this.at++
  }

  item (): Item {
    return { value: this.bareItem(), params: this.params() }
  }

  bareItem (): BareItem {
    const char = this.peek()
    if (char === '-' || (char >= '0' && char <= '9')) return this.integer()
    if (char === '"') return this.string()
    if (char === '?') return this.boolean()
    if (TOKEN_START.test(char)) return this.token()
    return this.fail()
  }

  params (): Map<string, BareItem> {
    const params = new Map<string, BareItem>()
    while (this.peek() === ';') {
      this.at++
      this.skip(' ')
      const key = this.key()
      let value: BareItem = true
      if (this.peek() === '=') {
        this.at++
        value = this.bareItem()
      }
      params.set(key, value)
    }
    return params
  }

  key (): string {
    if (!KEY_START.test(this.peek())) this.fail()
    const start = this.at
    while (!this.done && KEY_CHAR.test(this.peek())) this.at++
    return this.input.slice(start, this.at)
  }

  // Integers only: a Decimal (a dot) is not a valid value for any field parsed here.
  private integer (): number {
    const match = /^-?[0-9]{1,15}(?![0-9.])/.exec(this.input.slice(this.at))
    if (match === null) return this.fail()
    this.at += match[0].length
    return Number(match[0])
  }

  private string (): string {
    this.at++
    let value = ''
    for (;;) {
      const char = this.peek()
      if (char === '') this.fail()
      this.at++
      if (char === '"') return value
      if (char === '\\') {
        const escaped = this.peek()
        if (escaped !== '"' && escaped !== '\\') this.fail()
        this.at++
        value += escaped
      } else {
        const code = char.charCodeAt(0)
        if (code < 0x20 || code > 0x7e) this.fail()
        value += char
      }
    }
  }

  private boolean (): boolean {
    const value = this.input.slice(this.at, this.at + 2)
    if (value !== '?0' && value !== '?1') this.fail()
    this.at += 2
    return value === '?1'
  }

  private token (): Token {
    const start = this.at
    while (!this.done && TOKEN_CHAR.test(this.peek())) this.at++
    return new Token(this.input.slice(start, this.at))
  }
}

function parse<T> (value: Header, read: (parser: Parser) => T): T | undefined {
  // Node joins a repeated header with ", ": for an Item that is invalid, as it should be.
  if (typeof value !== 'string') return undefined
  const parser = new Parser(value)
  try {
    parser.skip(' ')
    const result = read(parser)
    parser.skip(' ')
    return parser.done ? result : undefined
  } catch (error) {
    if (error instanceof ParseError) return undefined
    throw error
  }
}

export function parseItem (value: Header): Item | undefined {
  return parse(value, (parser) => parser.item())
}

export function parseDictionary (value: Header): Map<string, Item> | undefined {
  return parse(value, (parser) => {
    const members = new Map<string, Item>()
    while (!parser.done) {
      const key = parser.key()
      // A key alone is a true Boolean.
      if (parser.peek() === '=') {
        parser.expect('=')
        members.set(key, parser.item())
      } else {
        members.set(key, { value: true, params: parser.params() })
      }
      parser.skip(' \t')
      if (parser.done) break
      parser.expect(',')
      parser.skip(' \t')
      if (parser.done) throw new ParseError() // a trailing comma
    }
    return members
  })
}

/** A Boolean item, or undefined when absent or not exactly one valid Boolean (parameters are allowed and ignored). */
export function parseBoolean (value: Header): boolean | undefined {
  const item = parseItem(value)
  return typeof item?.value === 'boolean' ? item.value : undefined
}

/** A non-negative Integer item, or undefined when absent or invalid. */
export function parseNonNegativeInteger (value: Header): number | undefined {
  const item = parseItem(value)
  return typeof item?.value === 'number' && item.value >= 0 ? item.value : undefined
}

export function serializeBoolean (value: boolean): string {
  return value ? '?1' : '?0'
}

function serializeBareItem (value: BareItem): string {
  if (typeof value === 'boolean') return serializeBoolean(value)
  if (value instanceof Token) return value.name
  if (typeof value === 'string') return `"${value.replace(/[\\"]/g, (char) => `\\${char}`)}"`
  if (!Number.isInteger(value) || Math.abs(value) > MAX_INTEGER) throw new RangeError(`${value} is not a structured-field Integer`)
  return String(value)
}

/** A Dictionary of bare items, in insertion order; a true Boolean is written as the bare key. */
export function serializeDictionary (members: Iterable<[string, BareItem]>): string {
  const parts: string[] = []
  for (const [key, value] of members) {
    if (!/^[a-z*][a-z0-9_\-.*]*$/.test(key)) throw new RangeError(`"${key}" is not a structured-field key`)
    parts.push(value === true ? key : `${key}=${serializeBareItem(value)}`)
  }
  return parts.join(', ')
}

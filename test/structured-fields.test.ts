// The Structured Field parser and serialiser the IETF protocol uses (RFC 9651):
// what is valid, what is not (and is then ignored, as the draft says), and the
// canonical forms written back.
import t from 'tap'
import { Token, parseBoolean, parseDictionary, parseItem, parseNonNegativeInteger, serializeBoolean, serializeDictionary } from '../lib/structured-fields'

t.test('Booleans', async (t) => {
  t.equal(parseBoolean('?1'), true)
  t.equal(parseBoolean('?0'), false)
  t.equal(parseBoolean(' ?1 '), true, 'surrounding spaces are allowed')
  t.equal(parseBoolean('?1;note="x"'), true, 'parameters are allowed and ignored')
  for (const invalid of ['?2', '1', 'true', '?', '?1 ?0', '?1, ?0', '', '?1;', '"?1"']) {
    t.equal(parseBoolean(invalid), undefined, `${JSON.stringify(invalid)} is not a Boolean`)
  }
  t.equal(parseBoolean(undefined), undefined, 'absent')
  t.equal(parseBoolean(['?1', '?1']), undefined, 'repeated')
  t.equal(serializeBoolean(true), '?1')
  t.equal(serializeBoolean(false), '?0')
})

t.test('non-negative Integers', async (t) => {
  t.equal(parseNonNegativeInteger('0'), 0)
  t.equal(parseNonNegativeInteger('123456'), 123456)
  t.equal(parseNonNegativeInteger('007'), 7, 'leading zeros are valid in a structured Integer')
  t.equal(parseNonNegativeInteger('999999999999999'), 999999999999999, 'fifteen digits')
  for (const invalid of ['-1', '1.5', '1e3', '1000000000000000', 'abc', '', '1 2', '+1', '0x10']) {
    t.equal(parseNonNegativeInteger(invalid), undefined, `${JSON.stringify(invalid)} is not a non-negative Integer`)
  }
})

t.test('Items of every bare type', async (t) => {
  t.same(parseItem('"a \\"quoted\\" \\\\ string"')?.value, 'a "quoted" \\ string', 'String with escapes')
  t.equal(parseItem('"bad \\n escape"'), undefined, 'only \\" and \\\\ escape')
  t.equal(parseItem('"unterminated'), undefined)
  const token = parseItem('text/plain;q=1')
  t.ok(token?.value instanceof Token && token.value.name === 'text/plain', 'Token')
  t.equal(token?.params.get('q'), 1, 'its parameter')
  t.equal(parseItem('@1234'), undefined, 'Dates are not needed here: not accepted')
})

t.test('Dictionaries', async (t) => {
  const limits = parseDictionary('max-size=1000, min-size=0,expires=10;x, flag')!
  t.same([...limits.keys()], ['max-size', 'min-size', 'expires', 'flag'])
  t.equal(limits.get('max-size')!.value, 1000)
  t.equal(limits.get('expires')!.params.get('x'), true, 'a bare parameter is true')
  t.equal(limits.get('flag')!.value, true, 'a bare key is true')
  for (const invalid of ['max-size=1000,', 'Max=1', 'a=1 b=2', '=1', 'a=1,,b=2']) {
    t.equal(parseDictionary(invalid), undefined, `${JSON.stringify(invalid)} is not a Dictionary`)
  }
  t.equal(serializeDictionary([['max-size', 1000], ['max-age', 3600]]), 'max-size=1000, max-age=3600')
  t.equal(serializeDictionary([['min-size', 0], ['flag', true], ['name', 'x"y'], ['kind', new Token('a/b')]]), 'min-size=0, flag, name="x\\"y", kind=a/b')
  t.throws(() => serializeDictionary([['Bad', 1]]), RangeError, 'keys are lower case')
  t.throws(() => serializeDictionary([['big', 2 ** 53]]), RangeError, 'Integers have at most fifteen digits')
  t.same(parseDictionary(serializeDictionary([['max-size', 5], ['min-size', 0]]))!.get('max-size')!.value, 5, 'round trip')
})

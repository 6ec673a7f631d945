// Filenames from Content-Disposition (RFC 6266), with RFC 8187's extended form
// preferred; a malformed header gives no filename rather than a wrong one.
import t from 'tap'
import { dispositionFilename } from '../lib/content-disposition'

const CASES: Array<[string, string, string | undefined]> = [
  ['a token', 'inline; filename=photo.jpg', 'photo.jpg'],
  ['a quoted string', 'attachment; filename="my photo.jpg"', 'my photo.jpg'],
  ['quoted-pair escapes', 'inline; filename="a \\"b\\".txt"', 'a "b".txt'],
  ['names are case-insensitive', 'INLINE; FileName="x.txt"', 'x.txt'],
  ['no filename', 'inline', undefined],
  ['other parameters are not the filename', 'inline; name="field"', undefined],
  // RFC 8187's extended form wins over the plain one.
  ['UTF-8', 'inline; filename="fallback.jpg"; filename*=UTF-8\'\'f%C3%AAte%20%E2%82%AC.jpg', 'fête €.jpg'],
  ['a language tag, a lower-case charset', 'inline; filename*=utf-8\'en\'na%C3%AFve.txt', 'naïve.txt'],
  ['ISO-8859-1', 'inline; filename*=ISO-8859-1\'\'caf%E9.txt', 'café.txt'],
  ['invalid UTF-8: the plain form is used', 'inline; filename*=UTF-8\'\'%FF%FE.txt; filename="safe.txt"', 'safe.txt'],
  ['an unknown charset: the plain form is used', 'inline; filename*=KOI8-R\'\'%C1.txt; filename=ok.txt', 'ok.txt'],
  ['a broken percent escape and no plain form', 'inline; filename*=UTF-8\'\'bad%2', undefined],
  ['an extended value is never quoted', 'inline; filename*="UTF-8\'\'quoted.txt"', undefined]
]

t.test('filenames, plain, quoted and extended', async (t) => {
  for (const [what, header, filename] of CASES) t.equal(dispositionFilename(header), filename, what)
})

t.test('malformed headers', async (t) => {
  for (const header of ['', '; filename=x', 'inline; filename', 'inline; filename="open', 'inline; filename=a b', 'inline; filename=a; filename=b', 'inline filename=x']) {
    t.equal(dispositionFilename(header), undefined, JSON.stringify(header))
  }
  t.equal(dispositionFilename(undefined), undefined, 'absent')
  t.equal(dispositionFilename(['inline; filename=a', 'inline; filename=b']), undefined, 'sent twice')
})

// Filenames from Content-Disposition (RFC 6266), with RFC 8187's extended form
// preferred; a malformed header gives no filename rather than a wrong one.
import t from 'tap'
import { dispositionFilename } from '../lib/content-disposition'

t.test('plain and quoted filenames', async (t) => {
  t.equal(dispositionFilename('inline; filename=photo.jpg'), 'photo.jpg', 'a token')
  t.equal(dispositionFilename('attachment; filename="my photo.jpg"'), 'my photo.jpg', 'a quoted string')
  t.equal(dispositionFilename('inline; filename="a \\"b\\".txt"'), 'a "b".txt', 'quoted-pair escapes')
  t.equal(dispositionFilename('INLINE; FileName="x.txt"'), 'x.txt', 'names are case-insensitive')
  t.equal(dispositionFilename('inline'), undefined, 'no filename')
  t.equal(dispositionFilename('inline; name="field"'), undefined, 'other parameters are not the filename')
})

t.test('the extended form (RFC 8187) wins over the plain one', async (t) => {
  t.equal(dispositionFilename('inline; filename="fallback.jpg"; filename*=UTF-8\'\'f%C3%AAte%20%E2%82%AC.jpg'), 'fête €.jpg', 'UTF-8')
  t.equal(dispositionFilename('inline; filename*=utf-8\'en\'na%C3%AFve.txt'), 'naïve.txt', 'a language tag, a lower-case charset')
  t.equal(dispositionFilename('inline; filename*=ISO-8859-1\'\'caf%E9.txt'), 'café.txt', 'ISO-8859-1')
  t.equal(dispositionFilename('inline; filename*=UTF-8\'\'%FF%FE.txt; filename="safe.txt"'), 'safe.txt', 'invalid UTF-8: the plain form is used')
  t.equal(dispositionFilename('inline; filename*=KOI8-R\'\'%C1.txt; filename=ok.txt'), 'ok.txt', 'an unknown charset: the plain form is used')
  t.equal(dispositionFilename('inline; filename*=UTF-8\'\'bad%2'), undefined, 'a broken percent escape and no plain form')
  t.equal(dispositionFilename('inline; filename*="UTF-8\'\'quoted.txt"'), undefined, 'an extended value is never quoted')
})

t.test('malformed headers', async (t) => {
  for (const header of ['', '; filename=x', 'inline; filename', 'inline; filename="open', 'inline; filename=a b', 'inline; filename=a; filename=b', 'inline filename=x']) {
    t.equal(dispositionFilename(header), undefined, JSON.stringify(header))
  }
  t.equal(dispositionFilename(undefined), undefined, 'absent')
  t.equal(dispositionFilename(['inline; filename=a', 'inline; filename=b']), undefined, 'sent twice')
})

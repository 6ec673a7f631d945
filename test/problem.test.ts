// Problem documents (RFC 9457) as the IETF protocol writes them.
import t from 'tap'
import { problemDocument } from '../lib/problem'
import { INTEROP_VERSIONS, interopVersionOf, problemTypeUri } from '../lib/protocols/ietf-versions'

t.test('a typed problem and an untyped one', async (t) => {
  t.same(problemDocument({ status: 409, code: 'FST_TUS_OFFSET_MISMATCH', detail: 'd', type: problemTypeUri('mismatching-upload-offset'), extensions: { 'expected-offset': 5, 'provided-offset': 3 } }), {
    'expected-offset': 5,
    'provided-offset': 3,
    type: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset',
    title: 'offset from request does not match offset of resource',
    status: 409,
    detail: 'd',
    code: 'FST_TUS_OFFSET_MISMATCH'
  })
  t.same(problemDocument({ status: 404, code: 'FST_TUS_UPLOAD_NOT_FOUND', detail: 'Upload not found' }), {
    type: 'about:blank', title: 'Not Found', status: 404, detail: 'Upload not found', code: 'FST_TUS_UPLOAD_NOT_FOUND'
  }, 'about:blank takes the status text as its title')
  t.equal(problemDocument({ status: 400, code: 'X', detail: 'd', extensions: { type: 'forged', status: 200 } }).status, 400, 'an extension never replaces a standard member')
})

t.test('the version table', async (t) => {
  t.same([...INTEROP_VERSIONS.keys()], [3, 4, 5, 6, 7, 8, 9])
  t.equal(interopVersionOf('3')?.completeHeader, 'upload-incomplete', 'version 3 says Upload-Incomplete')
  t.same([...INTEROP_VERSIONS.values()].map((version) => version.partialUploadType), [false, false, false, true, true, true, true], 'application/partial-upload from version 6')
  t.same([...INTEROP_VERSIONS.values()].map((version) => version.limits === false ? null : version.limits.lifetimeKey), [null, null, null, 'expires', 'max-age', 'max-age', 'max-age'])
  t.same([...INTEROP_VERSIONS.values()].map((version) => version.problems.has('completed-upload')), [false, false, false, true, true, true, false], 'completed-upload from 6 to 8')
  for (const value of ['2', '10', '06', '6 ', 'x', undefined]) t.equal(interopVersionOf(value)?.version, value === '6 ' ? 6 : undefined, JSON.stringify(value))
})

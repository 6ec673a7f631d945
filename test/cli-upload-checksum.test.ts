// `fastify-tus upload --checksum`: the Upload-Checksum of every chunk, as the
// server received it, against digests of the file's bytes computed here.
import { createHash } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import { ensureFreshBuild } from './process-helpers'
import { finished, loggingServer, scratch, upload, urlOf, writeRandom } from './cli-upload-helpers'

ensureFreshBuild()

function digests (bytes: Buffer, chunk: number, algorithm: string): string[] {
  const list: string[] = []
  for (let start = 0; start < bytes.length; start += chunk) list.push(`${algorithm} ${createHash(algorithm).update(bytes.subarray(start, start + chunk)).digest('base64')}`)
  return list
}

t.test('--checksum: every chunk carries Upload-Checksum of exactly its bytes, for each algorithm', async (t) => {
  const server = await loggingServer(t)
  const { seen } = server
  const where = await scratch(t)
  const { file, bytes } = await writeRandom(where.dir, 'data.bin', 250_000)
  const algorithms = ['sha1', 'sha256', 'sha512', 'md5']
  // Independent runs, side by side; each one's requests are told apart by its upload URL.
  const runs = await Promise.all(algorithms.map((algorithm) => upload(where, [file, '--endpoint', server.endpoint, '--store', path.join(where.dir, `${algorithm}.json`), '--checksum', algorithm, '--chunk-size', '100000'])))
  for (const [index, algorithm] of algorithms.entries()) {
    const ran = runs[index]
    t.equal(ran.code, 0, `${algorithm}: exit 0 ${ran.stderr}`)
    const url = urlOf(ran.stdout, file)!
    const patches = seen.filter((entry) => entry.method === 'PATCH' && url.endsWith(entry.url))
    t.same(patches.map((entry) => entry.checksum), digests(bytes, 100_000, algorithm), `${algorithm}: the header of each PATCH is its chunk's digest`)
    t.same(patches.map((entry) => entry.status), [204, 204, 204], 'and the server accepted each')
    t.ok((await finished(server, url)).data.equals(bytes))
  }

  seen.length = 0
  const parallel = await upload(where, [file, '--endpoint', server.endpoint, '--store', where.store, '--checksum', 'sha256', '--parallel', '2'])
  t.equal(parallel.code, 0, parallel.stderr)
  const halves = seen.filter((entry) => entry.method === 'PATCH').map((entry) => entry.checksum).sort()
  t.same(halves, [...digests(bytes.subarray(0, 125_000), 125_000, 'sha256'), ...digests(bytes.subarray(125_000), 125_000, 'sha256')].sort(), 'with --parallel, each part\'s digest')
})

t.test('--checksum: a damaged chunk is refused with 460 and sent again; one always damaged fails the upload', async (t) => {
  let damage = 0
  const server = await loggingServer(t, {}, (app) => {
    app.addHook('onRequest', async (request) => {
      // Stands for bytes damaged on the way: the digest no longer matches them.
      if (request.method === 'PATCH' && damage > 0) {
        damage--
        request.headers['upload-checksum'] = `sha256 ${createHash('sha256').update('something else').digest('base64')}`
      }
    })
  })
  const { seen } = server
  const where = await scratch(t)
  const { file, bytes } = await writeRandom(where.dir, 'data.bin', 120_000)
  damage = 1
  const ran = await upload(where, [file, '--endpoint', server.endpoint, '--store', where.store, '--checksum', 'sha256', '--chunk-size', '50000'])
  t.equal(ran.code, 0, ran.stderr)
  t.same(seen.filter((entry) => entry.method === 'PATCH').map((entry) => [entry.offset, entry.status]), [['0', 460], ['0', 204], ['50000', 204], ['100000', 204]], 'the refused chunk was sent again from the same offset')
  t.ok((await finished(server, urlOf(ran.stdout, file)!)).data.equals(bytes), 'and the file arrived whole')

  damage = Infinity
  const failed = await upload(where, [file, '--endpoint', server.endpoint, '--store', where.store, '--checksum', 'sha256', '--retries', '1'])
  t.equal(failed.code, 1, 'a chunk refused every time: exit 1')
  t.match(failed.stderr, `${file}: refused by the server: PATCH answered 460 FST_TUS_CHECKSUM_MISMATCH`)
  t.match(failed.stderr, '1 of 1 upload failed')
  t.equal(failed.stdout, '')
})

t.test('--checksum against a server that does not offer it fails before sending anything', async (t) => {
  const server = await loggingServer(t, { extensions: ['creation', 'termination'] })
  const { seen } = server
  const where = await scratch(t)
  const { file } = await writeRandom(where.dir, 'data.bin', 1000)
  const ran = await upload(where, [file, '--endpoint', server.endpoint, '--store', where.store, '--checksum', 'md5'])
  t.equal(ran.code, 1)
  t.match(ran.stderr, /--checksum md5: .* does not offer it \(Tus-Extension: creation,termination; Tus-Checksum-Algorithm: none\)/)
  t.same(seen.map((entry) => entry.method), ['OPTIONS'], 'only the discovery request')
})

t.test('--checksum asks the server first, as often as --retries allows', async (t) => {
  const where = await scratch(t)
  const { file } = await writeRandom(where.dir, 'data.bin', 10)
  // A port nothing listens on: a server started and closed again.
  const closed = await loggingServer(t)
  await closed.app.close()
  const started = Date.now()
  const ran = await upload(where, [file, '--endpoint', closed.endpoint, '--store', where.store, '--checksum', 'sha1', '--retries', '1'])
  t.equal(ran.code, 1)
  t.match(ran.stderr, `fastify-tus: could not reach ${closed.endpoint} after 1 retry (ECONNREFUSED)`)
  t.ok(Date.now() - started >= 500, 'after waiting 0.5 s once')
})

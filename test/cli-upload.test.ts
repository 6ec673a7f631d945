// `fastify-tus upload`: the built CLI in child processes against a real server
// on loopback; what arrives is checked on disk and in the server's request log.
import { readdir, readFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import path from 'node:path'
import t from 'tap'
import { parseFlags } from '../lib/cli/flags'
import { UPLOAD_FLAGS, defaultUploadOptions, uploadHelp } from '../lib/cli/upload-flags'
import { startServer } from './helpers'
import { ROOT, ensureFreshBuild } from './process-helpers'
import { finished, loggingServer, scratch, upload, urlOf, writeRandom } from './cli-upload-helpers'

ensureFreshBuild()

/** A fresh server and scratch directory, and `upload NAME ...flags` of `size` random bytes run to its end. */
async function uploadOne (t: Parameters<typeof scratch>[0], name: string, size: number, flags: string[]) {
  const server = await loggingServer(t)
  const where = await scratch(t)
  const { file, bytes } = await writeRandom(where.dir, name, size)
  const ran = await upload(where, [file, '--endpoint', server.endpoint, '--store', where.store, ...flags])
  return { server, seen: server.seen, where, file, bytes, ran }
}

t.test('a file arrives byte for byte; one plain line with its URL; filename, filetype and --metadata in the record', async (t) => {
  const { server, seen, where, file, bytes, ran } = await uploadOne(t, 'report.pdf', 300_000, ['--metadata', 'project=alpha', '--metadata', 'note=a=b'])
  t.equal(ran.code, 0, `exit 0 (${ran.stderr.trim()})`)
  t.equal(ran.stderr, '', 'nothing on stderr')
  const lines = ran.stdout.trim().split('\n')
  t.equal(lines.length, 1, 'one line for one file')
  t.match(lines[0], new RegExp(`^${file}: ${server.endpoint}/[0-9a-f-]{36} \\(300000 bytes, 293\\.0 KiB, in [0-9.]+ s\\)$`))
  const url = urlOf(ran.stdout, file)!
  const { record, data } = await finished(server, url)
  t.ok(data.equals(bytes), 'the bytes on disk are the file')
  t.same(record.metadata, { filename: 'report.pdf', filetype: 'application/pdf', project: 'alpha', note: 'a=b' })
  t.same(seen.map((entry) => entry.method), ['POST', 'PATCH'], 'one creation, the whole file in one PATCH')
  const store = JSON.parse(await readFile(where.store, 'utf8'))
  t.same(store.uploads, {}, 'an upload that arrived is forgotten')

  const renamed = await upload(where, [file, '--endpoint', server.endpoint, '--store', where.store, '--metadata', 'filename=other.bin', '--metadata', 'filetype=text/plain'])
  t.equal(renamed.code, 0)
  const again = await finished(server, urlOf(renamed.stdout, file)!)
  t.same(again.record.metadata, { filename: 'other.bin', filetype: 'text/plain' }, '--metadata overrides filename and filetype')
  t.not(urlOf(renamed.stdout, file), url, 'the same file again after it arrived is a new upload')
})

t.test('several files, in chunks: one line each, in order, and each file arrives', async (t) => {
  const server = await loggingServer(t)
  const { seen } = server
  const where = await scratch(t)
  const files = await Promise.all([['a.txt', 10_000], ['b.bin', 25_000], ['empty.txt', 0]].map(([name, size]) => writeRandom(where.dir, name as string, size as number)))
  const ran = await upload(where, [...files.map(({ file }) => file), '--endpoint', server.endpoint, '--store', where.store, '--chunk-size', '4096'])
  t.equal(ran.code, 0, ran.stderr)
  const lines = ran.stdout.trim().split('\n')
  t.same(lines.map((line) => line.slice(0, line.indexOf(': '))), files.map(({ file }) => file), 'a line per file, in order')
  for (const { file, bytes } of files) {
    const { record, data } = await finished(server, urlOf(ran.stdout, file)!)
    t.ok(data.equals(bytes), `${path.basename(file)} arrived`)
    t.equal(record.metadata.filename, path.basename(file))
  }
  const patches = seen.filter((entry) => entry.method === 'PATCH')
  t.equal(patches.length, Math.ceil(10_000 / 4096) + Math.ceil(25_000 / 4096), '--chunk-size 4096: a PATCH per 4096 bytes (none for the empty file)')
})

t.test('--parallel: partial uploads joined by concatenation, the final one with the metadata', async (t) => {
  const { server, seen, file, bytes, ran } = await uploadOne(t, 'movie.mp4', 1_000_003, ['--parallel', '3', '--chunk-size', '200000'])
  t.equal(ran.code, 0, ran.stderr)
  const { record, data } = await finished(server, urlOf(ran.stdout, file)!)
  t.ok(data.equals(bytes), 'the joined upload is the file')
  t.equal((record.concat as { final: string[] }).final.length, 3, 'made of three partial uploads')
  t.same(record.metadata, { filename: 'movie.mp4', filetype: 'video/mp4' })
  const creations = seen.filter((entry) => entry.method === 'POST')
  t.same(creations.map((entry) => entry.concat?.split(';')[0]).sort(), ['final', 'partial', 'partial', 'partial'])
  t.equal(seen.filter((entry) => entry.method === 'PATCH').length, 6, 'each third in two chunks')
})

t.test('--header reaches the server on every request; without it the server refuses', async (t) => {
  const server = await loggingServer(t, {}, (app) => {
    const check = async (request: { headers: Record<string, unknown> }): Promise<void> => {
      if (request.headers.authorization !== 'Bearer s3cret') throw Object.assign(new Error('log in first'), { statusCode: 401 })
    }
    app.tus.addHook('tus:preCreate', check)
    app.tus.addHook('tus:preAccess', check)
  })
  const { seen } = server
  const where = await scratch(t)
  const { file, bytes } = await writeRandom(where.dir, 'secret.txt', 30_000)
  const ran = await upload(where, [file, '--endpoint', server.endpoint, '--store', where.store, '--header', 'Authorization: Bearer s3cret', '--header', 'X-Trace: 1', '--chunk-size', '10000'])
  t.equal(ran.code, 0, ran.stderr)
  t.ok((await finished(server, urlOf(ran.stdout, file)!)).data.equals(bytes))
  t.equal(seen.length, 4)
  t.ok(seen.every((entry) => entry.authorization === 'Bearer s3cret'), 'every request carried the header')

  const refused = await upload(where, [file, '--endpoint', server.endpoint, '--store', where.store])
  t.equal(refused.code, 1)
  t.match(refused.stderr, `${file}: refused by the server: POST answered 401 FST_TUS_REFUSED: log in first`)
})

t.test('no FILE: a temporary file of --size random bytes, removed afterwards', async (t) => {
  const server = await startServer(t)
  const where = await scratch(t)
  const ran = await upload(where, ['--endpoint', server.endpoint, '--store', where.store, '--size', '123457'])
  t.equal(ran.code, 0, ran.stderr)
  const label = 'random data (123457 bytes)'
  t.match(ran.stdout, new RegExp(`^random data \\(123457 bytes\\): ${server.endpoint}/`))
  const { record, data } = await finished(server, urlOf(ran.stdout, label)!)
  t.equal(data.length, 123457)
  t.same(record.metadata, { filename: 'random-123457.bin', filetype: 'application/octet-stream' })
  t.not(data.subarray(0, 4096).toString('hex'), data.subarray(4096, 8192).toString('hex'), 'not one block repeated')
  const left = (await readdir(where.dir)).filter((name) => name.startsWith('fastify-tus-upload-'))
  t.same(left, [], 'the temporary file is gone')
  t.same(JSON.parse(await readFile(where.store, 'utf8').catch(() => '{"uploads":{}}')).uploads, {}, 'nothing to remember for random data')

  const defaults = await upload(where, ['--endpoint', server.endpoint, '--store', where.store])
  t.equal(defaults.code, 0)
  t.match(defaults.stdout, /^random data \(1048576 bytes\): /, 'the default size is 1 MiB')
})

t.test('failures: a file over Tus-Max-Size, an unreachable server after --retries, a missing file', async (t) => {
  const server = await startServer(t, { maxSize: 1000 })
  const where = await scratch(t)
  const small = await writeRandom(where.dir, 'small.bin', 1000)
  const big = await writeRandom(where.dir, 'big.bin', 1001)
  const ran = await upload(where, [big.file, path.join(where.dir, 'missing.bin'), small.file, '--endpoint', server.endpoint, '--store', where.store])
  t.equal(ran.code, 1, 'exit 1 when one file did not arrive')
  t.match(ran.stderr, `${big.file}: refused by the server: POST answered 413 FST_TUS_MAX_SIZE_EXCEEDED`)
  t.match(ran.stderr, "(too large: the file has 1001 bytes, the server's Tus-Max-Size is 1000)")
  t.match(ran.stderr, `${path.join(where.dir, 'missing.bin')}: cannot read it (ENOENT)`)
  t.match(ran.stderr, '2 of 3 uploads failed')
  t.ok((await finished(server, urlOf(ran.stdout, small.file)!)).data.equals(small.bytes), 'the other file still arrived')

  // A server that takes each connection and drops it: every try is seen.
  const sockets: Socket[] = []
  const dropper = createServer((socket) => { sockets.push(socket); socket.destroy() })
  await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => dropper.close(resolve)))
  const { port } = dropper.address() as { port: number }
  const started = Date.now()
  const dropped = await upload(where, [small.file, '--endpoint', `http://127.0.0.1:${port}/files`, '--store', where.store, '--retries', '2'])
  t.equal(dropped.code, 1)
  t.match(dropped.stderr, `${small.file}: no answer to POST http://127.0.0.1:${port}/files after 2 retries (ECONNRESET)`)
  t.equal(sockets.length, 3, 'the first try and two retries')
  t.ok(Date.now() - started >= 1500, 'waiting 0.5 s then 1 s between them')

  await new Promise((resolve) => dropper.close(resolve))
  const refused = await upload(where, [small.file, '--endpoint', `http://127.0.0.1:${port}/files`, '--store', where.store, '--retries', '0'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, `could not reach http://127.0.0.1:${port}/files after 0 retries (ECONNREFUSED)`)
})

t.test('bad usage exits 1 naming the flag; --help exits 0', async (t) => {
  const endpoint = ['--endpoint', 'http://127.0.0.1:1/files']
  const flags: Array<[string[], RegExp]> = [
    [['--endpoint', 'ftp://host/files'], /--endpoint needs an http\(s\) URL/],
    [[...endpoint, '--chunk-size', '0'], /--chunk-size needs a positive integer/],
    [[...endpoint, '--parallel', 'two'], /--parallel/],
    [[...endpoint, '--retries', '-1'], /--retries/],
    [[...endpoint, '--checksum', 'crc32'], /--checksum needs one of sha1, sha256, sha512, md5/],
    [[...endpoint, '--metadata', 'novalue'], /--metadata needs key=value/],
    [[...endpoint, '--metadata', 'a key=v'], /--metadata needs key=value/],
    [[...endpoint, '--header', 'Authorization'], /--header needs "Name: value"/],
    [[...endpoint, '--header', 'Upload-Offset: 5'], /--header: Upload-Offset is set by the tus client itself/],
    [[...endpoint, '--frobnicate'], /--frobnicate/]
  ]
  // The flag table's parsers run in this process ...
  for (const [args, message] of flags) t.throws(() => parseFlags(args, UPLOAD_FLAGS, defaultUploadOptions(), true), { message }, args.join(' '))
  // ... and the command's own checks, and how a refusal reaches the user, in real ones.
  const where = await scratch(t)
  const cases: Array<[string[], RegExp]> = [
    [['x.bin'], /^fastify-tus: --endpoint URL is required/],
    [[...endpoint, '--size', '5', 'x.bin'], /^fastify-tus: --size is for random data/],
    [[...endpoint, '--chunk-size', 'x'], /^fastify-tus: --chunk-size/]
  ]
  const runs = await Promise.all(cases.map(([args]) => upload(where, args)))
  for (const [index, [args, message]] of cases.entries()) {
    t.equal(runs[index].code, 1, `upload ${args.join(' ')} exits 1`)
    t.match(runs[index].stderr, message, runs[index].stderr.trim())
  }
  const help = await upload(where, ['--help'])
  t.equal(help.code, 0)
  t.equal(help.stdout, uploadHelp())
  t.match(help.stdout, /^Usage: fastify-tus upload \[FILE\.\.\.\] --endpoint URL/)
})

t.test('the README example runs as written', async (t) => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Command-line client'))
  const example = section.slice(section.indexOf('```sh\n') + 6, section.indexOf('```', section.indexOf('```sh\n') + 6))
  const commands = example.split('\n').filter((line) => line.startsWith('fastify-tus upload '))
  t.equal(commands.length, 2, 'two upload commands')
  const server = await loggingServer(t)
  const where = await scratch(t)
  const files = { 'photo.jpg': 200_000, 'notes.txt': 3000 }
  for (const [name, size] of Object.entries(files)) await writeRandom(where.dir, name, size)
  for (const command of commands) {
    // The example's words, with the test server for the demo server's address.
    const args = command.split(' ').slice(2).map((word) => word === 'http://127.0.0.1:1080/files' ? server.endpoint : word)
    const ran = await upload(where, [...args, '--store', where.store])
    t.equal(ran.code, 0, `${command}: exit 0 ${ran.stderr}`)
    t.match(ran.stdout, new RegExp(`: ${server.endpoint}/[0-9a-f-]{36} \\(`))
  }
  const firstLine = /^# (\S+): http:\/\/127\.0\.0\.1:1080\/files\/0c9b\.\.\. \((\d+) bytes/m.exec(example)
  t.ok(firstLine !== null && firstLine[1] in files, 'the example output names one of the example files')
  t.equal(server.seen.filter((entry) => entry.method === 'POST' && entry.concat?.startsWith('final')).length, 1, 'the --parallel example joined its parts')
})

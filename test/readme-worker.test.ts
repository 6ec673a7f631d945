// The worker loop of the README runs as written: its code block is taken from
// the README itself and run in a real server process.
import { readFile, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { TUS, send, tempDir } from './helpers'
import { waitFor } from './interop-helpers'
import { ROOT, ensureBuilt, startNode } from './process-helpers'

ensureBuilt()

async function readmeWorkerLoop (): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Hand-over: waitForFile'))
  const block = /```ts\n([\s\S]*?)```/.exec(section)
  if (block === null) throw new Error('the README has no worker loop')
  return block[1]
}

t.test('the README worker loop hands every finished upload to ./dest under its name', async (t) => {
  const cwd = await tempDir(t)
  const script = path.join(cwd, 'server.mjs')
  await writeFile(script, `
import { createRequire } from 'node:module'
const require = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))})
const Fastify = require('fastify')
const tus = require('./')
const app = Fastify()
await app.register(tus, { directory: './uploads', completedDir: './completed', janitor: false })
await app.listen({ port: 0, host: '127.0.0.1' })
console.log('listening on ' + app.server.address().port)
process.once('SIGTERM', () => { app.close() })
try {
${await readmeWorkerLoop()}
} catch (error) {
  console.log('loop ended: ' + error.name)
}
`)
  const server = await startNode(t, [script], /listening on (\d+)/, { cwd })
  const endpoint = `http://127.0.0.1:${server.match[1]}/files`
  const files = { 'a.txt': 'first file', 'résumé 2026.pdf': 'second file', '../escape.txt': 'third file' }
  for (const [name, content] of Object.entries(files)) {
    const created = await send(endpoint, 'POST', {
      ...TUS,
      'upload-length': String(Buffer.byteLength(content)),
      'upload-metadata': `filename ${Buffer.from(name).toString('base64')}`,
      'content-type': 'application/offset+octet-stream'
    }, content)
    t.equal(created.statusCode, 201)
  }
  const dest = path.join(cwd, 'dest')
  const expected = ['a.txt', 'résumé 2026.pdf', '.._escape.txt'].sort()
  // Each file is released after it is saved: an empty completedDir means the loop has done them all.
  // Bounded by the test's timeout only: a busy machine may take long, a stuck loop still fails.
  await waitFor('the worker loop to save every file', async () => {
    const names = await readdir(dest).catch(() => [])
    return names.length >= expected.length && (await readdir(path.join(cwd, 'completed'))).length === 0 ? true : undefined
  }, Infinity)
  t.same((await readdir(dest)).sort(), expected, 'each file under its safe name, nothing outside ./dest')
  t.equal(await readFile(path.join(dest, 'résumé 2026.pdf'), 'utf8'), 'second file')
  t.same(await readdir(path.join(cwd, 'completed')), [], 'completedDir is emptied by release()')
  server.child.kill('SIGTERM')
  t.same(await server.exit, { code: 0, signal: null }, 'the server exits once closed')
  t.match(server.stdout(), /loop ended: AbortError/, 'closing the app ends the loop')
})

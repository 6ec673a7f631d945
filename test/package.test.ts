// The package as users get it: the built dist/ loaded in fresh node processes,
// by name and by path, from CommonJS and from ES modules.
import { execFileSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { TUS, create, idOf, patch, send, tempDir } from './helpers'
import { ROOT, ensureBuilt, runNode, startNode } from './process-helpers'

ensureBuilt()

// Printed by every probe below: what a user's code sees of the export.
const DESCRIBE = `
function describe (tus, named) {
  return {
    type: typeof tus,
    defaultIsSelf: tus.default === tus,
    namedIsSelf: tus.fastifyTus === tus,
    named: named === undefined ? null : named === tus,
    meta: tus[Symbol.for('plugin-meta')],
    skipOverride: tus[Symbol.for('skip-override')],
    displayName: tus[Symbol.for('fastify.display-name')]
  }
}`

const EXPECTED = {
  type: 'function',
  defaultIsSelf: true,
  namedIsSelf: true,
  meta: { fastify: '5.x', name: 'fastify-tus' },
  // fastify-plugin's marker: the `tus` decorator is visible to the application.
  skipOverride: true,
  displayName: 'fastify-tus'
}

async function probe (t: tap.Test, args: string[], cwd: string): Promise<unknown> {
  const ran = await runNode(args, { cwd })
  t.equal(ran.code, 0, 'the probe exits 0')
  t.equal(ran.stderr, '', 'and writes nothing to stderr')
  return JSON.parse(ran.stdout)
}

t.test('require("fastify-tus") by name, from the package root', async (t) => {
  // Node resolves a package's own name through its "exports", as it would from node_modules.
  const found = await probe(t, ['-e', `${DESCRIBE}; console.log(JSON.stringify(describe(require('fastify-tus'))))`], ROOT)
  t.match(found, { ...EXPECTED, named: null })
})

t.test('require(<package root>) from elsewhere goes through "main"', async (t) => {
  const cwd = await tempDir(t)
  const found = await probe(t, ['-e', `${DESCRIBE}; console.log(JSON.stringify(describe(require(${JSON.stringify(ROOT)}))))`], cwd)
  t.match(found, { ...EXPECTED, named: null })
})

t.test('import from an .mjs file: default and named', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'probe.mjs')
  const url = pathToFileURL(path.join(ROOT, 'dist', 'index.js')).href
  await writeFile(file, `import tus, { fastifyTus } from ${JSON.stringify(url)}
${DESCRIBE}
console.log(JSON.stringify(describe(tus, fastifyTus)))
`)
  const found = await probe(t, [file], dir)
  t.match(found, { ...EXPECTED, named: true })
})

t.test('import "fastify-tus" by name from an ES module', async (t) => {
  const found = await probe(t, ['--input-type=module', '-e', `import tus, { fastifyTus } from 'fastify-tus'
${DESCRIBE}
console.log(JSON.stringify(describe(tus, fastifyTus)))`], ROOT)
  t.match(found, { ...EXPECTED, named: true })
})

t.test('package.json and the types are reachable through "exports"', async (t) => {
  const found = await probe(t, ['-e', `const fs = require('node:fs'); const pkg = require('fastify-tus/package.json')
console.log(JSON.stringify({ name: pkg.name, types: fs.existsSync(pkg.types), bin: fs.existsSync(pkg.bin['fastify-tus']), shebang: fs.readFileSync(pkg.bin['fastify-tus'], 'utf8').startsWith('#!/usr/bin/env node') }))`], ROOT)
  t.same(found, { name: 'fastify-tus', types: true, bin: true, shebang: true })
})

t.test('the packed tarball holds what users need, and no tests', async (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' })
  const files = new Set<string>((JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0].files.map((file) => file.path))
  for (const needed of ['package.json', 'dist/index.js', 'dist/plugin.js', 'dist/cli/index.js', 'types/index.d.ts', 'binding.gyp']) {
    t.ok(files.has(needed), `${needed} is packed`)
  }
  t.notOk([...files].some((file) => file.startsWith('test/')), 'tests are not packed')
  t.ok(files.has('lib/plugin.ts'), 'the TypeScript sources the source maps point to are packed')
  t.notOk(files.has('types/index.test-d.ts'), 'the tsd tests are not packed')
})

// A user's app: the plugin twice, each in its own encapsulated context, and
// once more in the same context (refused: one `tus` decorator per context).
const APP = `
const { createRequire } = require('node:module')
const root = process.argv[2]
const dirs = JSON.parse(process.argv[3])
const Fastify = createRequire(require('node:path').join(root, 'package.json'))('fastify')
const tus = require(root)
async function main () {
  const app = Fastify({ logger: false })
  for (const name of ['a', 'b']) {
    app.register(async (scope) => {
      await scope.register(tus, { prefix: '/' + name, directory: dirs[name].uploads, completedDir: dirs[name].completed, underPressure: false })
      scope.get('/' + name + '-dir', async () => scope.tus.options.directory)
    })
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const twice = Fastify({ logger: false })
  twice.register(tus, { directory: dirs.a.uploads, completedDir: dirs.a.completed })
  twice.register(tus, { prefix: '/other', directory: dirs.b.uploads, completedDir: dirs.b.completed })
  const sameContext = await twice.ready().then(() => null, (error) => error.code)
  await twice.close().catch(() => {})
  process.once('SIGTERM', () => { app.close().then(() => process.exit(0)) })
  console.log(JSON.stringify({ port: app.server.address().port, rootHasTus: app.hasDecorator('tus'), sameContext }))
}
main().catch((error) => { console.error(error); process.exit(1) })
`

t.test('an app with the plugin in two encapsulated contexts, in its own process', async (t) => {
  const root = await tempDir(t)
  const dirs: Record<string, { uploads: string, completed: string }> = {}
  for (const name of ['a', 'b']) dirs[name] = { uploads: path.join(root, name, 'uploads'), completed: path.join(root, name, 'completed') }
  const script = path.join(root, 'app.cjs')
  await writeFile(script, APP)
  const app = await startNode(t, [script, ROOT, JSON.stringify(dirs)], /^\{.*\}$/m, { cwd: root })
  const info = JSON.parse(app.match[0]) as { port: number, rootHasTus: boolean, sameContext: string | null }
  t.equal(info.rootHasTus, false, 'each `tus` decorator stays in its context')
  t.equal(info.sameContext, 'FST_ERR_DEC_ALREADY_PRESENT', 'twice in one context is refused')
  const origin = `http://127.0.0.1:${info.port}`
  for (const name of ['a', 'b']) {
    const dir = await send(`${origin}/${name}-dir`, 'GET')
    t.equal(dir.text, dirs[name].uploads, `context ${name} sees its own app.tus`)
    const url = await create(`${origin}/${name}`, { 'upload-length': '3' })
    t.match(url, `${origin}/${name}/`, `Location is under /${name}`)
    const done = await patch(url, 0, name.repeat(3))
    t.equal(done.statusCode, 204)
    t.equal(done.headers['tus-resumable'], '1.0.0')
    t.equal(await readFile(path.join(dirs[name].completed, idOf(url)), 'utf8'), name.repeat(3), `the upload is in ${name}'s completedDir`)
  }
  // An id of one context is unknown to the other.
  const url = await create(`${origin}/a`, { 'upload-length': '3' })
  const other = await send(`${origin}/b/${idOf(url)}`, 'HEAD', TUS)
  t.equal(other.statusCode, 404)
  app.child.kill('SIGTERM')
  t.same(await app.exit, { code: 0, signal: null }, 'the app closes cleanly')
})

// The demo's upload page as HTTP (the browser test drives it in chromium):
// what `/` and its assets are served with, that nothing else is, and that the
// package ships the page.
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import { uploadPage } from '../lib/cli/upload-page'
import { ROOT } from './process-helpers'

async function pageServer (t: tap.Test, endpoint: string, download = true): Promise<ReturnType<typeof Fastify>> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(uploadPage, { endpoint, download })
  return app
}

t.test('/ is the page, configured with the endpoint, under a strict CSP', async (t) => {
  const app = await pageServer(t, '/files')
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.match(page.body, '<meta name="fastify-tus-endpoint" content="/files">')
  t.match(page.body, '<meta name="fastify-tus-download" content="true">')
  t.notMatch(page.body, /https?:\/\/(?!tus\.io)/, 'nothing loaded from another site')
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, "script-src 'self'")
  t.match(csp, "connect-src 'self';", 'uploads only to its own origin')
  t.match(csp, "frame-ancestors 'none'")
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['cache-control'], 'no-cache')

  const again = await app.inject({ url: '/', headers: { 'if-none-match': String(page.headers.etag) } })
  t.equal(again.statusCode, 304, 'revalidated by its ETag')
  t.equal(again.body, '')
})

t.test('an endpoint on another origin is allowed by the CSP and escaped into the page', async (t) => {
  const app = await pageServer(t, 'http://127.0.0.1:9/files?a="<b>&c', false)
  const page = await app.inject('/')
  t.match(page.body, 'content="http://127.0.0.1:9/files?a=&quot;&lt;b&gt;&amp;c"', 'HTML-escaped')
  t.match(page.body, '<meta name="fastify-tus-download" content="false">')
  t.match(String(page.headers['content-security-policy']), "connect-src 'self' http://127.0.0.1:9;")
})

t.test('the assets, from the package and from tus-js-client, and nothing else', async (t) => {
  const app = await pageServer(t, '/files')
  const expected: Array<[string, string, string]> = [
    ['app.js', 'text/javascript; charset=utf-8', path.join(ROOT, 'lib/cli/page/app.js')],
    ['upload-item.js', 'text/javascript; charset=utf-8', path.join(ROOT, 'lib/cli/page/upload-item.js')],
    ['style.css', 'text/css; charset=utf-8', path.join(ROOT, 'lib/cli/page/style.css')],
    ['favicon.svg', 'image/svg+xml', path.join(ROOT, 'lib/cli/page/favicon.svg')],
    ['tus.min.js', 'text/javascript; charset=utf-8', path.join(ROOT, 'node_modules/tus-js-client/dist/tus.min.js')]
  ]
  for (const [name, type, file] of expected) {
    const response = await app.inject(`/page/${name}`)
    t.equal(response.statusCode, 200, name)
    t.equal(response.headers['content-type'], type)
    t.equal(response.body, await readFile(file, 'utf8'), `${name} is the file`)
  }
  // Every module the page imports is served.
  for (const imported of (await readFile(path.join(ROOT, 'lib/cli/page/app.js'), 'utf8')).matchAll(/from '\.\/([a-z-]+\.js)'/g)) {
    t.equal((await app.inject(`/page/${imported[1]}`)).statusCode, 200, `${imported[1]} (imported by app.js)`)
  }
  for (const url of ['/page/index.html', '/page/..%2Fupload-page.ts', '/page/tus.js', '/page/', '/index.html']) {
    t.equal((await app.inject(url)).statusCode, 404, `${url} is not served`)
  }
})

t.test('the package ships the page', async (t) => {
  const [{ files }] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' })) as Array<{ files: Array<{ path: string }> }>
  const shipped = new Set(files.map((file) => file.path))
  for (const name of ['index.html', 'app.js', 'ui.js', 'finished.js', 'interrupted.js', 'upload-item.js', 'style.css', 'favicon.svg']) {
    t.ok(shipped.has(`lib/cli/page/${name}`), `lib/cli/page/${name}`)
  }
  t.ok(shipped.has('dist/cli/upload-page.js'), 'and the built module that serves it')
})

// The demo's upload page: `/` and a fixed set of assets, all read from the
// package itself (lib/cli/page, shipped as it is) and from tus-js-client's
// browser build in node_modules. No CDN, nothing else served.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

export interface UploadPageOptions {
  /** The tus endpoint the page uploads to: a path on the page's own origin, or a full URL. */
  endpoint: string
  /** Whether finished uploads get download links (the plugin's `download` option). */
  download: boolean
}

// The same directory from lib/cli (the sources) and from dist/cli (the build): tsc copies no assets.
const PAGE_DIR = path.join(__dirname, '..', '..', 'lib', 'cli', 'page')
const TUS_CLIENT = path.join(path.dirname(require.resolve('tus-js-client/package.json')), 'dist', 'tus.min.js')
const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml'
}
// Every asset by its URL name: nothing outside this list is ever read.
const ASSETS: Record<string, string> = {
  'tus.min.js': TUS_CLIENT,
  ...Object.fromEntries(['app.js', 'ui.js', 'finished.js', 'interrupted.js', 'upload-item.js', 'style.css', 'favicon.svg']
    .map((name) => [name, path.join(PAGE_DIR, name)]))
}

interface Asset { body: Buffer, type: string, etag: string }

function asset (body: Buffer | string, type: string): Asset {
  const bytes = Buffer.from(body)
  return { body: bytes, type, etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"` }
}

const escapeAttribute = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

// Scripts and styles only from this origin; uploads to the page's own origin and, when elsewhere, the endpoint's.
function contentSecurityPolicy (endpoint: string): string {
  const remote = /^https?:\/\//i.test(endpoint) ? ` ${new URL(endpoint).origin}` : ''
  return [
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    `connect-src 'self'${remote}`, "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
  ].join('; ')
}

export async function uploadPage (app: FastifyInstance, options: UploadPageOptions): Promise<void> {
  const html = (await readFile(path.join(PAGE_DIR, 'index.html'), 'utf8'))
    .replace('{{endpoint}}', escapeAttribute(options.endpoint))
    .replace('{{download}}', String(options.download))
  const page = asset(html, 'text/html; charset=utf-8')
  const assets = new Map<string, Asset>()
  for (const [name, file] of Object.entries(ASSETS)) assets.set(name, asset(await readFile(file), TYPES[path.extname(name)]))
  const csp = contentSecurityPolicy(options.endpoint)

  const send = (request: FastifyRequest, reply: FastifyReply, served: Asset): FastifyReply => {
    reply
      .header('Content-Type', served.type)
      .header('ETag', served.etag)
      // Revalidated on every load, so that an upgraded server never runs yesterday's script.
      .header('Cache-Control', 'no-cache')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer')
    if (request.headers['if-none-match'] === served.etag) return reply.code(304).send()
    return reply.send(served.body)
  }

  app.get('/', async (request, reply) => send(request, reply.header('Content-Security-Policy', csp), page))
  app.get<{ Params: { name: string } }>('/page/:name', async (request, reply) => {
    const served = assets.get(request.params.name)
    if (served === undefined) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'no such asset' })
    return send(request, reply, served)
  })
}

// The methods the routes of one encapsulated context serve at a path, learnt
// from the routes as they are added (onRoute): a request whose method no route
// serves there is answered 405 with `Allow`, whichever module adds routes.
import type { FastifyInstance } from 'fastify'

// Each method with the name the plugin's routes give it (config.uploadRoute), if any.
interface RoutePattern { pattern: RegExp, methods: Map<string, string | undefined> }

// find-my-way paths: `*` is the rest of the path, `:name` one segment.
function patternOf (url: string): RegExp {
  const source = url.split(/(\*|:[^/]+)/).map((part) => {
    if (part === '*') return '.*'
    if (part.startsWith(':')) return '[^/]+'
    return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }).join('')
  return new RegExp(`^${source}/?$`)
}

export class AllowedMethods {
  private readonly routes = new Map<string, RoutePattern>()

  /** Learns every route added to `app` from now on. */
  constructor (app: FastifyInstance) {
    app.addHook('onRoute', (route) => {
      const entry = this.routes.get(route.url) ?? { pattern: patternOf(route.url), methods: new Map<string, string | undefined>() }
      const name = (route.config as { uploadRoute?: string } | undefined)?.uploadRoute
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) entry.methods.set(method.toUpperCase(), name)
      this.routes.set(route.url, entry)
    })
  }

  /** The methods served at the URL's path, sorted; empty when no route matches it. `serves` keeps only the named routes a protocol serves. */
  at (url: string, serves: (name: string) => boolean = () => true): string[] {
    const pathname = url.split('?')[0]
    const methods = new Set<string>()
    for (const { pattern, methods: served } of this.routes.values()) {
      if (!pattern.test(pathname)) continue
      for (const [method, name] of served) if (name === undefined || serves(name)) methods.add(method)
    }
    return [...methods].sort()
  }
}

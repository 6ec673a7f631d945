// Where a V8 .cpuprofile (from `node --cpu-prof`) spent its samples: by origin
// (this package, each dependency, Node, native code, GC, idle) and the top
// functions by self time. Sample time is wall time on the main thread: on a
// busy machine a descheduled thread inflates whatever it was running.
// Usage: node benchmark/profile-summary.mjs FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export function summarise (file, top = 15) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map()
  const origins = new Map()
  let total = 0
  // Each sample lands on one node; its time delta is that node's self time.
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i])
    const delta = profile.timeDeltas[i] ?? 0
    total += delta
    const { functionName, url, lineNumber } = node.callFrame
    const where = url === '' ? '' : `${shorten(url)}:${lineNumber + 1}`
    const key = `${functionName || '(anonymous)'} ${where}`.trim()
    self.set(key, (self.get(key) ?? 0) + delta)
    const origin = originOf(functionName, url)
    origins.set(origin, (origins.get(origin) ?? 0) + delta)
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top)
  const lines = [`${path.basename(file)}: ${(total / 1e6).toFixed(2)} s sampled`]
  const share = (micros) => `${(100 * micros / total).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(6)} ms`
  lines.push('  by origin:')
  for (const [origin, micros] of [...origins].sort((a, b) => b[1] - a[1])) lines.push(`  ${share(micros)}  ${origin}`)
  lines.push('  top self time:')
  for (const [key, micros] of rows) {
    lines.push(`  ${share(micros)}  ${key}`)
  }
  return lines.join('\n')
}

// Who a sample's time belongs to: V8's pseudo-entries, native bindings and
// builtins (no script), Node's own JavaScript, this package, or a dependency.
function originOf (functionName, url) {
  if (functionName.startsWith('(')) return functionName
  if (url === '') return 'native (bindings, builtins)'
  if (url.startsWith('node:')) return 'node internals'
  const plain = url.replace(/^file:\/\//, '')
  const modules = plain.lastIndexOf('node_modules/')
  if (modules !== -1) {
    const parts = plain.slice(modules + 'node_modules/'.length).split('/')
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
  }
  return shorten(url).startsWith('dist/') ? 'fastify-tus (dist/)' : shorten(url)
}

// Paths relative to the package or to node_modules: short, and no machine paths.
function shorten (url) {
  const plain = url.replace(/^file:\/\//, '')
  const modules = plain.lastIndexOf('node_modules/')
  if (modules !== -1) return plain.slice(modules + 'node_modules/'.length)
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
  return plain.startsWith(root) ? path.relative(root, plain) : plain
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2)
  if (file === undefined) {
    console.error('usage: node benchmark/profile-summary.mjs FILE.cpuprofile [TOP]')
    process.exit(2)
  }
  console.log(summarise(file, top === undefined ? 15 : Number(top)))
}

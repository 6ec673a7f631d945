// fastify-tus from dist/ (run `npm run build` first) on a bare Fastify app.
// Options: --fsync on|off (or BENCH_FSYNC), as the benchmark compares both;
// --logger LEVEL gives the app Fastify's logger (pino to stdout) at that level,
// as an application with `logger: true` has it; the default is no logger.
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { ready, serverArgs } from './common.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
const tus = require(path.join(here, '..', '..', 'dist', 'index.js'))

const args = serverArgs({ fsync: { type: 'string', default: process.env.BENCH_FSYNC ?? 'on' }, logger: { type: 'string' } })
if (args.fsync !== 'on' && args.fsync !== 'off') throw new Error('--fsync must be on or off')

const app = Fastify({ logger: args.logger === undefined ? false : { level: args.logger } })
await app.register(tus, {
  prefix: '/files',
  directory: path.join(args.dir, 'uploads'),
  completedDir: path.join(args.dir, 'completed'),
  fsync: args.fsync === 'on',
  underPressure: false,
  janitor: false
})
await app.listen({ port: 0, host: '127.0.0.1' })
ready(app.server)

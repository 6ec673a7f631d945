// CommonJS entry: `require('fastify-tus')`, `import tus from 'fastify-tus'` and
// `import { fastifyTus } from 'fastify-tus'` all get the plugin.
import { fastifyTus } from './plugin'

module.exports = fastifyTus
module.exports.default = fastifyTus
module.exports.fastifyTus = fastifyTus

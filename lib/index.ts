// CommonJS entry: `require('fastify-tus')`, `import tus from 'fastify-tus'` and
// `import { fastifyTus } from 'fastify-tus'` all get the plugin; workers that
// run no server take `waitForFile` from here too.
import { fastifyTus } from './plugin'
import { waitForFile } from './wait-for-file'

module.exports = fastifyTus
module.exports.default = fastifyTus
module.exports.fastifyTus = fastifyTus
module.exports.waitForFile = waitForFile

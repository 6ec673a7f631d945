// @tus/server with its FileStore, configured as its README shows, on node:http.
import http from 'node:http'
import path from 'node:path'
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'
import { ready, serverArgs } from './common.mjs'

const args = serverArgs()
const tus = new Server({ path: '/files', datastore: new FileStore({ directory: path.join(args.dir, 'files') }) })
const server = http.createServer((req, res) => { tus.handle(req, res) })
server.listen(0, '127.0.0.1', () => ready(server))

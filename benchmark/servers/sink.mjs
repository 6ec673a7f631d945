// The ceiling of Node's HTTP stack: answers tus just enough for the benchmark
// (POST with or without data, PATCH, HEAD) and throws every body byte away.
import { serverArgs, tusLikeServer } from './common.mjs'

serverArgs()
tusLikeServer((req) => new Promise((resolve, reject) => {
  let bytes = 0
  req.on('data', (chunk) => { bytes += chunk.length })
  req.on('end', () => resolve(bytes))
  req.on('error', reject)
}))

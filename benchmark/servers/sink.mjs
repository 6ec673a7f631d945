// The ceiling of Node's HTTP stack: answers tus just enough for the benchmark
// (POST with or without data, PATCH, HEAD) and throws every body byte away.
import { drain, serverArgs, tusLikeServer } from './common.mjs'

serverArgs()
tusLikeServer(drain)

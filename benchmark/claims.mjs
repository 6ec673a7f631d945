#!/usr/bin/env node
// The cost of one claim with a backlog: N finished uploads wait in a
// completedDir (written straight to disk in the on-disk format: the claim does
// not care how they got there), and a worker loop claims and releases with
// waitForFile from dist/. The first claim includes this process's first look at
// the directory; the rest are what a worker that fell behind pays per upload.
//   node benchmark/claims.mjs [--counts 1000,10000,50000] [--claims 300] [--json FILE]
import { closeSync, mkdtempSync, openSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = path.dirname(fileURLToPath(import.meta.url))
const { waitForFile } = createRequire(import.meta.url)(path.join(here, '..', 'dist', 'index.js'))

const { values: flags } = parseArgs({
  strict: true,
  options: {
    counts: { type: 'string', default: process.env.BENCH_CLAIM_COUNTS ?? '1000,10000,50000' },
    claims: { type: 'string', default: process.env.BENCH_CLAIMS ?? '300' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (flags.help) {
  process.stdout.write('Usage: node benchmark/claims.mjs [--counts 1000,10000,50000] [--claims 300] [--json FILE]\n')
  process.exit(0)
}
const counts = flags.counts.split(',').map(Number)
const claims = Number(flags.claims)

/** N finished uploads of 1 KiB, finished one second apart (oldest first is by the record's mtime). */
function backlog (dir, count) {
  const ids = []
  const data = Buffer.alloc(1024, 7)
  const start = Date.now() / 1000 - count
  for (let i = 0; i < count; i++) {
    const id = randomUUID()
    const fd = openSync(path.join(dir, id), 'w')
    writeSync(fd, data)
    closeSync(fd)
    const finishedAt = new Date((start + i) * 1000).toISOString()
    const record = path.join(dir, `${id}.meta`)
    writeFileSync(record, JSON.stringify({ id, metadata: { filename: `${i}.bin` }, serverMetadata: {}, length: 1024, offset: 1024, createdAt: finishedAt, lastWrite: finishedAt, finishedAt, duration: 0, expiresAt: null, concat: null }))
    utimesSync(record, start + i, start + i)
    ids.push(id)
  }
  return ids
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]

const rows = []
for (const count of counts) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'claims-bench-'))
  try {
    process.stderr.write(`claims: writing ${count} finished uploads ... `)
    const ids = backlog(dir, count)
    process.stderr.write('measuring\n')
    let started = performance.now()
    const first = await waitForFile(dir, { timeout: 60_000 })
    await first.release()
    const firstMs = performance.now() - started
    const times = []
    let inOrder = first.id === ids[0] ? 1 : 0
    for (let i = 1; i <= Math.min(claims, count - 1); i++) {
      started = performance.now()
      const file = await waitForFile(dir, { timeout: 60_000 })
      await file.release()
      times.push(performance.now() - started)
      if (file.id === ids[i]) inOrder++
    }
    times.sort((a, b) => a - b)
    const mean = times.reduce((sum, ms) => sum + ms, 0) / times.length
    rows.push({ count, claims: times.length + 1, firstMs, mean, p50: percentile(times, 0.5), p99: percentile(times, 0.99), inOrder })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const fmt = (ms) => ms.toFixed(ms < 10 ? 2 : 0)
const lines = [
  '| waiting | claims | first claim ms | claim + release ms, mean | p50 | p99 | oldest first |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.count.toLocaleString('en')} | ${r.claims} | ${fmt(r.firstMs)} | ${fmt(r.mean)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.inOrder}/${r.claims} |`)
]
process.stdout.write(`\n### Claims with a backlog (waitForFile + release, one worker, ${os.tmpdir()})\n\n${lines.join('\n')}\n`)
if (flags.json !== undefined) writeFileSync(flags.json, JSON.stringify(rows, null, 2))

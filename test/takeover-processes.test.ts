// Two `fastify-tus serve` processes on one directory, as two nodes behind a load
// balancer: a client whose connection to A died unnoticed comes back through B
// at once and is served (A lets go through a release request in the shared
// directory, noticed by its directory watch); concurrent PATCHes on both never
// both succeed.
import t from 'tap'
import { tempDir } from './helpers'
import { loggedErrors, startTusNode } from './node-helpers'
import { ensureFreshBuild } from './process-helpers'
import { describeTally, newTally, racingPatches, stalledOnA, tusClientMovesToB } from './takeover-scenarios'

ensureFreshBuild()

// The default takeover timeout: a takeover that needed it all would have been a 423.
const TAKEOVER_TIMEOUT = 5000

t.test('two processes on one directory', async (t) => {
  const root = await tempDir(t)
  const A = await startTusNode(t, 'A', root)
  const B = await startTusNode(t, 'B', root)
  const tally = newTally()

  for (const how of ['head', 'patch', 'delete'] as const) {
    await t.test(`a PATCH stalled on A; the client comes back on B with ${how === 'head' ? 'HEAD, then PATCH' : how.toUpperCase()}`, (t) => stalledOnA(t, A, B, how, tally, TAKEOVER_TIMEOUT))
  }
  await t.test('tus-js-client whose connection to A is stranded mid-PATCH resumes on B', (t) => tusClientMovesToB(t, A, B, tally))
  await t.test('racing PATCHes of one upload on A and B', (t) => racingPatches(t, A, B, 6, tally))

  t.comment(describeTally(tally))
  // Same machine: A's directory watch sees the request at once.
  const sorted = [...tally.latencies].sort((a, b) => a - b)
  t.ok(sorted[Math.floor(sorted.length / 2)] < 1000, `the median takeover is well under a second (${sorted[Math.floor(sorted.length / 2)]} ms)`)
  for (const node of [A, B]) t.strictSame(loggedErrors(node), [], `node ${node.name} logged no error`)
})

// Fault points, for tests only: with FASTIFY_TUS_FAULT=<step> in the environment
// (read once, when this module loads) the process kills itself with SIGKILL on
// reaching that step, as a crash or an OOM kill would, so that tests can prove
// that a restart and the janitor complete whatever the step interrupted.
// Unset, every fault point is the same empty function.

/** The steps, in the order an upload meets them. */
export const FAULT_STEPS = [
  'finish:linked', // the data has its second name in completedDir, not yet durable
  'finish:linked-durable', // completedDir fsynced: the new name is durable
  'finish:committed', // the in-progress record says finishedAt (the commit point)
  'finish:published', // the record in completedDir is written: a worker may claim it
  'finish:record-removed', // the in-progress record is gone
  'finish:data-removed', // the data's in-progress name is gone
  'concat:assembled', // a final upload's data is copied from its partials and durable, not yet handed over
  'concat:handed-over', // the final is handed over, its partials not yet removed
  'terminate:locked', // DELETE holds the upload, nothing removed yet
  'remove:record-removed', // an upload's record is removed, its data not yet (termination, janitor, refusal)
  'terminate:removed' // DELETE removed the files, before it answers
] as const

export type FaultStep = typeof FAULT_STEPS[number]

const armed = process.env.FASTIFY_TUS_FAULT

function die (step: FaultStep): void {
  if (step === armed) process.kill(process.pid, 'SIGKILL')
}

export const faultAt: (step: FaultStep) => void = armed === undefined || armed === '' ? () => {} : die

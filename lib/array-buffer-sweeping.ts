// Makes V8 release the buffers a scavenge frees inside that scavenge, process-wide.
// Where V8 counts external memory against the old generation's limit (Node 20's 11.3
// does), the ~32 MiB of request-body buffers freed by each scavenge stayed counted until
// the background sweeper got to them, and V8 checks the limit right after the scavenge:
// in any process whose old generation is over 8 MiB (V8's threshold for starting
// marking), a large upload ran a full mark-compact about every 32 MiB. The cost is
// freeing those buffers on the main thread during the scavenge. Set by `serve` for its
// own process, first thing; a library does not change V8's flags under an application.
import { setFlagsFromString } from 'node:v8'

export function sweepArrayBuffersInScavenges (): void {
  setFlagsFromString('--no-concurrent-array-buffer-sweeping')
}

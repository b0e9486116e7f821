import { prewarmHashWorkers } from '../runner/hash-pool.js';
import { probeBwrap } from '../runner/sandbox.js';

/**
 * intoto-run's first import (bin/ reaches the runner only through cli/): before the rest of
 * the program loads, start what it will wait for later, so that it is ready by then: the
 * hashing threads (about 50 ms to boot each) and the check that bubblewrap works here (a
 * sandbox started and ended, about 20 ms). The check is made even when the command line turns
 * out not to need it (`--sandbox none`, `-x`): it runs `true` in an empty sandbox, and that
 * is all.
 */
export function prewarmRun(): void {
  prewarmHashWorkers();
  void probeBwrap();
}

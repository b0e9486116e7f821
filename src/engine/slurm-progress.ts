import type { SlurmEvent } from './slurm.js';

/**
 * One line of progress per Slurm event, for `pipeline run --engine slurm` to print: the job,
 * its node, its state and the time, e.g.
 *   `train (trainer-b): job 41 on node3 RUNNING at 1.2 s`
 *   `train (trainer-b): job 41 on node3 FAILED at 2.3 s after 1.1 s: exit status 1; last output: ...`
 * Never throws.
 */
export function progressLine(event: SlurmEvent): string {
  switch (event.kind) {
    case 'submitted':
      return `${event.key}: job ${event.jobId} submitted${event.node === undefined ? '' : ` for ${event.node}`}${event.after.length === 0 ? '' : `, after job ${event.after.join(', ')}`}`;
    case 'cancelling':
      return `cancelling job ${event.jobIds.join(', ')}: ${event.why}`;
    case 'state': {
      const { job } = event;
      const who = job.functionary === undefined ? job.key : `${job.step} (${job.functionary})`;
      const at = job.endedMs ?? job.startedMs;
      const ran = job.endedMs !== undefined && job.startedMs !== undefined ? ` after ${seconds(job.endedMs - job.startedMs)}` : '';
      const why = job.reason === '' || job.reason === 'completed' ? '' : `: ${job.reason}`;
      return `${who}: job ${job.jobId}${job.node === '' ? '' : ` on ${job.node}`} ${job.state}${at === undefined ? '' : ` at ${seconds(at)}`}${ran}${why}`;
    }
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

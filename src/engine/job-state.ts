import { constants } from 'node:os';
import type { JobStatus } from './slurm-cli.js';

/**
 * What a Slurm job state means to a pipeline: still to come, under way, completed, or ended
 * some other way (and why, in words).
 */

export type Phase = 'waiting' | 'running' | 'completed' | 'failed';

const WAITING = new Set(['PENDING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD']);
// Under way: COMPLETING too (the job has ended but its processes are still being cleaned up).
const RUNNING = new Set(['RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT', 'RESIZING', 'POWER_UP_NODE']);

/** The phase of a job in `state`. An unknown state counts as failed: never as completed. Never throws. */
export function phaseOf(status: Pick<JobStatus, 'state' | 'waitStatus'>): Phase {
  if (WAITING.has(status.state)) return 'waiting';
  if (RUNNING.has(status.state)) return 'running';
  // COMPLETED means exit status 0; the wait status, when known, must agree.
  if (status.state === 'COMPLETED' && (status.waitStatus === undefined || status.waitStatus === 0)) return 'completed';
  return 'failed';
}

/** True when the job is cancelled only because a job it depends on failed. Never throws. */
export function isCascade(status: Pick<JobStatus, 'state' | 'reason'>): boolean {
  return status.state === 'CANCELLED' && /^Dependency/.test(status.reason);
}

const SIGNALS = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name]));

/** Why a job ended as it did, e.g. "exit status 3", "killed by SIGKILL", "time limit reached". Never throws. */
export function endReason(status: Pick<JobStatus, 'state' | 'reason' | 'waitStatus'>): string {
  const wait = status.waitStatus;
  const exit = wait === undefined ? undefined : (wait >> 8) & 0xff;
  const signal = wait === undefined ? undefined : wait & 0x7f;
  const killed = signal === undefined || signal === 0 ? undefined : `killed by ${SIGNALS.get(signal) ?? `signal ${signal}`}`;
  switch (status.state) {
    case 'COMPLETED':
      return exit === 0 || exit === undefined ? 'completed' : `exit status ${exit}`;
    case 'FAILED':
      return killed ?? (exit === undefined ? `failed (${status.reason})` : `exit status ${exit}`);
    case 'CANCELLED':
      if (isCascade(status)) return 'cancelled: a job it depends on did not complete';
      return `cancelled (scancel, or an administrator)${killed === undefined ? '' : `, ${killed}`}`;
    case 'TIMEOUT':
      return 'time limit reached';
    case 'NODE_FAIL':
      return 'the node failed';
    case 'OUT_OF_MEMORY':
      return 'out of memory';
    case 'PREEMPTED':
      return 'preempted by another job';
    case 'BOOT_FAIL':
      return 'the node failed to boot';
    case 'DEADLINE':
      return 'deadline reached before it could run';
    default:
      return `ended in state ${status.state}${status.reason && status.reason !== 'None' ? ` (${status.reason})` : ''}`;
  }
}

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError, type InTotoError } from '../errors.js';
import { failureOf, type Failure } from '../verify/report.js';
import { batchScript } from './batch-script.js';
import { endReason, isCascade, phaseOf, type Phase } from './job-state.js';
import { sacct, sbatch, scancel, squeue, type JobStatus, type SlurmClient } from './slurm-cli.js';

/**
 * Runs a set of jobs on Slurm: one `sbatch` per job, chained with `--dependency=afterok` and
 * `--kill-on-invalid-dep=yes` so Slurm itself starts each job when the ones it waits for have
 * completed; then follows them by polling `squeue` (and `sacct` for jobs squeue has
 * forgotten), never `sbatch --wait`. On the first job that ends other than completed it
 * cancels everything left, waits until nothing of the run is still running, and reports that
 * job's step, node and reason.
 */

export interface SlurmJobSpec {
  /** Unique key of the job in this run (a step run, or `verify`). */
  readonly key: string;
  /** For messages: the step ('verify' for the verification) and who runs it. */
  readonly step: string;
  readonly functionary: string | undefined;
  /** Pinned with `--nodelist` when given. */
  readonly node: string | undefined;
  /** Keys of jobs that must complete first. */
  readonly after: readonly string[];
  /** The command the job runs. */
  readonly argv: readonly string[];
  /** The job's output file, a path on the node; read from here too when it is reachable (a shared or lab file system). */
  readonly output: string | undefined;
}

export interface SlurmRunOptions {
  readonly client: SlurmClient;
  /** In an order where every job comes after the jobs it waits for. */
  readonly jobs: readonly SlurmJobSpec[];
  /** Names the run in job names and comments (squeue shows them). */
  readonly runId: string;
  readonly partition?: string;
  /** Directories the jobs find first on their PATH (before the fixed system PATH). */
  readonly path?: readonly string[];
  /** Interval between two squeue calls (default 250 ms). */
  readonly pollMs?: number;
  /** Aborting cancels every job of the run and ends it as failed. */
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: SlurmEvent) => void;
}

export type SlurmEvent =
  | { readonly kind: 'submitted'; readonly key: string; readonly step: string; readonly jobId: string; readonly node: string | undefined; readonly after: readonly string[] }
  | { readonly kind: 'state'; readonly job: JobOutcome }
  | { readonly kind: 'cancelling'; readonly jobIds: readonly string[]; readonly why: string };

export interface JobOutcome {
  readonly key: string;
  readonly step: string;
  readonly functionary: string | undefined;
  readonly jobId: string;
  /** Where it ran (or was pinned to). */
  readonly node: string;
  /** Slurm's state, e.g. PENDING, RUNNING, COMPLETED, FAILED, CANCELLED. */
  readonly state: string;
  readonly phase: Phase;
  /** Slurm's reason while pending (Dependency, Resources, ...), or why it ended. */
  readonly reason: string;
  /** Milliseconds from the run's start until it was first seen running, and until it was seen ended. */
  readonly startedMs: number | undefined;
  readonly endedMs: number | undefined;
}

export interface SlurmRunResult {
  readonly passed: boolean;
  /** The job that ended the run (E_JOB_FAILED), or a Slurm command that failed (E_SCHEDULER). */
  readonly failure: Failure | undefined;
  readonly jobs: readonly JobOutcome[];
  /** Jobs still running after the cancellation deadline (empty unless Slurm misbehaves). */
  readonly leftRunning: readonly string[];
  readonly totalMs: number;
}

interface Tracked {
  readonly spec: SlurmJobSpec;
  readonly jobId: string;
  outcome: JobOutcome;
  /** What Slurm said last. */
  status: JobStatus | undefined;
  /** Polls in a row that did not find the job. */
  misses: number;
}

const MAX_POLL_ERRORS = 5;
const MAX_MISSES = 3;
/** How long cancelled jobs may take to end (Slurm's KillWait is 30 s by default). */
const CANCEL_TIMEOUT_MS = 60_000;

/**
 * Submits and follows the jobs. Job failures and Slurm errors are in the result, never thrown,
 * and whatever happens no job of the run is left pending or running (unless Slurm cannot
 * cancel it within the deadline: then `leftRunning` names it).
 */
export async function runSlurmJobs(options: SlurmRunOptions): Promise<SlurmRunResult> {
  const start = performance.now();
  const since = (): number => Math.round(performance.now() - start);
  const emit = options.onEvent ?? ((): void => {});
  const tracked = new Map<string, Tracked>();
  let failure: Failure | undefined;

  try {
    await submitAll(options, tracked, emit);
    failure = await follow(options, tracked, emit, since);
  } catch (error) {
    failure = failureOf(options.signal?.aborted === true ? new EngineError('E_JOB_FAILED', 'interrupted: the run was stopped, so its jobs are cancelled') : error);
  }
  let leftRunning: string[] = [];
  if (failure !== undefined) leftRunning = await cancelRest(options, tracked, emit, since, failure.message);
  const jobs = [...tracked.values()].map((t) => t.outcome);
  return { passed: failure === undefined, failure, jobs, leftRunning, totalMs: since() };
}

async function submitAll(options: SlurmRunOptions, tracked: Map<string, Tracked>, emit: (event: SlurmEvent) => void): Promise<void> {
  for (const spec of options.jobs) {
    options.signal?.throwIfAborted();
    const after = spec.after.map((key) => {
      const job = tracked.get(key);
      if (job === undefined) throw new EngineError('E_SCHEDULER', `job '${spec.key}' waits for '${key}', which is not submitted before it`);
      return job.jobId;
    });
    const args = [
      `--job-name=intoto:${spec.key}`,
      `--comment=intoto run ${options.runId}`,
      '--nodes=1',
      '--ntasks=1',
      '--chdir=/tmp', // the submitter's directory may not exist on the node
      ...(spec.node === undefined ? [] : [`--nodelist=${spec.node}`]),
      ...(options.partition === undefined ? [] : [`--partition=${options.partition}`]),
      ...(after.length === 0 ? [] : [`--dependency=afterok:${after.join(':')}`, '--kill-on-invalid-dep=yes']),
      ...(spec.output === undefined ? ['--output=/dev/null'] : [`--output=${spec.output}`]),
    ];
    const about = [`intoto run ${options.runId}: ${describe(spec)}`];
    let jobId: string;
    try {
      jobId = await sbatch(options.client, args, batchScript({ argv: spec.argv, about, ...(options.path === undefined ? {} : { path: options.path }) }));
    } catch (error) {
      throw withJob(error as InTotoError, spec);
    }
    tracked.set(spec.key, {
      spec,
      jobId,
      misses: 0,
      status: undefined,
      outcome: { key: spec.key, step: spec.step, functionary: spec.functionary, jobId, node: spec.node ?? '', state: 'SUBMITTED', phase: 'waiting', reason: '', startedMs: undefined, endedMs: undefined },
    });
    emit({ kind: 'submitted', key: spec.key, step: spec.step, jobId, node: spec.node, after });
  }
}

/** Polls until every job completed (undefined) or one did not (its failure). */
async function follow(options: SlurmRunOptions, tracked: Map<string, Tracked>, emit: (event: SlurmEvent) => void, since: () => number): Promise<Failure | undefined> {
  let errors = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const active = [...tracked.values()].filter((t) => t.outcome.phase === 'waiting' || t.outcome.phase === 'running');
    if (active.length === 0) return undefined;
    let statuses: Map<string, JobStatus>;
    try {
      statuses = await poll(options.client, active.map((t) => t.jobId));
      errors = 0;
    } catch (error) {
      // The controller can be briefly unreachable (a restart, a busy moment): retry a few times.
      if (++errors >= MAX_POLL_ERRORS) throw error;
      await sleep(options.pollMs ?? 250, undefined, { signal: options.signal });
      continue;
    }
    const failed: Tracked[] = [];
    for (const job of active) {
      const status = statuses.get(job.jobId);
      if (status === undefined) {
        if (++job.misses >= MAX_MISSES) throw withJob(new EngineError('E_SCHEDULER', `job ${job.jobId} is no longer known to squeue or sacct`), job.spec);
        continue;
      }
      job.misses = 0;
      if (update(job, status, since())) emit({ kind: 'state', job: job.outcome });
      if (job.outcome.phase === 'failed') failed.push(job);
    }
    if (failed.length > 0) {
      // The cause, not the jobs Slurm cancelled because of it.
      const cause = failed.find((job) => job.status !== undefined && !isCascade(job.status)) ?? failed[0];
      return failureOf(jobFailure(cause as Tracked));
    }
    await sleep(options.pollMs ?? 250, undefined, { signal: options.signal });
  }
}

async function poll(client: SlurmClient, ids: readonly string[]): Promise<Map<string, JobStatus>> {
  const statuses = new Map((await squeue(client, ids)).map((s) => [s.id, s]));
  const forgotten = ids.filter((id) => !statuses.has(id));
  for (const status of await sacct(client, forgotten)) statuses.set(status.id, status);
  return statuses;
}

/** Applies a status; true when something worth reporting changed. */
function update(job: Tracked, status: JobStatus, now: number): boolean {
  const before = job.outcome;
  job.status = status;
  const phase = phaseOf(status);
  const reason = phase === 'failed' || phase === 'completed' ? endReason(status) : status.reason === 'None' ? '' : status.reason;
  const node = status.nodes !== '' ? status.nodes : before.node;
  // Started: seen running, or ended on a node (a job cancelled while pending never started).
  const startedMs = before.startedMs ?? (phase === 'running' || (phase !== 'waiting' && status.nodes !== '') ? now : undefined);
  const endedMs = before.endedMs ?? (phase === 'completed' || phase === 'failed' ? now : undefined);
  job.outcome = { ...before, state: status.state, phase, reason, node, startedMs, endedMs };
  return before.state !== status.state || before.reason !== reason || before.node !== node;
}

function jobFailure(job: Tracked): EngineError {
  const { outcome, spec } = job;
  const tail = outputTail(spec.output);
  const message = `${describe(spec)}: job ${job.jobId} on ${outcome.node || 'no node'}: ${outcome.reason}${tail === undefined ? '' : `; last output: ${tail}`}`;
  return new EngineError('E_JOB_FAILED', message, { context: { step: spec.step, ...(outcome.node === '' ? {} : { node: outcome.node }) }, details: spec.output === undefined ? [] : [`job output: ${spec.output}`] });
}

/** Cancels every job not yet ended and waits until none is running; returns the ids still running at the deadline. */
async function cancelRest(options: SlurmRunOptions, tracked: Map<string, Tracked>, emit: (event: SlurmEvent) => void, since: () => number, why: string): Promise<string[]> {
  const open = (): Tracked[] => [...tracked.values()].filter((t) => t.outcome.phase === 'waiting' || t.outcome.phase === 'running');
  if (open().length === 0) return [];
  const ids = open().map((t) => t.jobId);
  emit({ kind: 'cancelling', jobIds: ids, why });
  const deadline = performance.now() + CANCEL_TIMEOUT_MS;
  let cancelled = false;
  while (open().length > 0 && performance.now() < deadline) {
    try {
      if (!cancelled) await scancel(options.client, ids);
      cancelled = true;
      const statuses = await poll(options.client, open().map((t) => t.jobId));
      for (const job of open()) {
        const status = statuses.get(job.jobId);
        if (status === undefined || !update(job, status, since())) continue;
        // Our own scancel: say so, rather than "scancel, or an administrator".
        if (status.state === 'CANCELLED' && !isCascade(status)) job.outcome = { ...job.outcome, reason: 'cancelled: the run stopped' };
        emit({ kind: 'state', job: job.outcome });
      }
    } catch {
      // Keep trying until the deadline: leaving jobs behind is worse than a slow exit.
    }
    if (open().length > 0) await sleep(Math.min(options.pollMs ?? 250, 500));
  }
  return open().map((t) => t.jobId);
}

function describe(spec: SlurmJobSpec): string {
  if (spec.step === 'verify' && spec.functionary === undefined) return 'the verification';
  return `step '${spec.step}'${spec.functionary === undefined ? '' : ` (${spec.functionary})`}`;
}

function withJob(error: InTotoError, spec: SlurmJobSpec): InTotoError {
  return error.withContext(describe(spec), { step: spec.step, ...(spec.node === undefined ? {} : { node: spec.node }) });
}

/** The last non-empty line of a job's output, when it can be read here; at most 300 printable characters. */
function outputTail(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, 4096);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const line = buffer.toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '').pop();
    // Output is the node's text: keep it to one line of printable characters, at most 300; a
    // longer line keeps its end too, where an intoto error line says its code.
    if (line === undefined) return undefined;
    const printable = line.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
    return printable.length <= 300 ? printable : `${printable.slice(0, 200)} ... ${printable.slice(-95)}`;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

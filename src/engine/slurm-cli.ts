import { execFile } from 'node:child_process';
import { EngineError } from '../errors.js';

/**
 * The four Slurm client commands the engine uses (sbatch, squeue, sacct, scancel), run as
 * programs with their documented machine-readable output: `sbatch --parsable`, `squeue -O`
 * with a separator, `sacct --parsable2`. No Slurm library, no REST daemon.
 */

export interface SlurmClient {
  /** The environment of the Slurm commands (SLURM_CONF, PATH, ...); the commands are found on its PATH. */
  readonly env: NodeJS.ProcessEnv;
}

/** What squeue or sacct says about one job. */
export interface JobStatus {
  readonly id: string;
  /** Slurm's base state: PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... */
  readonly state: string;
  /** The node list; '' while pending. */
  readonly nodes: string;
  /** Why it is pending or ended that way (None, Dependency, DependencyNeverSatisfied, NonZeroExitCode, ...). */
  readonly reason: string;
  /** The raw wait status (exit status << 8 | signal), when known. */
  readonly waitStatus: number | undefined;
}

const COMMAND_TIMEOUT_MS = 30_000;

/**
 * Runs a Slurm command and returns its standard output.
 * @throws EngineError E_SCHEDULER with the command and its first error line
 */
export function slurmCommand(client: SlurmClient, command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, [...args], { env: client.env, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve(stdout);
        return;
      }
      const why = (stderr.split('\n').find((line) => line.trim() !== '') ?? error.message).trim();
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new EngineError('E_SCHEDULER', missing ? `${command} is not installed (Debian package slurm-client)` : `${command} failed: ${why}`, {
          cause: error,
          details: stderr.split('\n').filter((line) => line.trim() !== ''),
        }),
      );
    });
    // A command that exits without reading its input must not fail us with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

/**
 * Submits a batch script (on standard input) and returns the job id.
 * @throws EngineError E_SCHEDULER when sbatch refuses it (an unknown node or partition, ...)
 */
export async function sbatch(client: SlurmClient, args: readonly string[], script: string): Promise<string> {
  const out = (await slurmCommand({ ...client, env: submitEnvironment(client.env) }, 'sbatch', ['--parsable', '--export=ALL', ...args], script)).trim();
  const id = out.split(';')[0] ?? '';
  if (!/^[0-9]+$/.test(id)) throw new EngineError('E_SCHEDULER', `sbatch printed '${out}' instead of a job id`);
  return id;
}

/**
 * What sbatch sees, and so what the job inherits (--export=ALL): PATH and SLURM_CONF, nothing
 * else. No token or IN_TOTO_* variable of the submitter reaches a node, and no SBATCH_*
 * variable changes a submission behind the command line's back. (--export=NONE would also
 * clear the job's environment, but in Slurm 22.05 it makes every job load the user's login
 * environment on the node, which costs about a second per job and brings in whatever the
 * login scripts set.)
 */
export function submitEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = { PATH: env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin' };
  if (env['SLURM_CONF'] !== undefined) kept['SLURM_CONF'] = env['SLURM_CONF'];
  return kept;
}

const SQUEUE_FIELDS = ['JobID', 'State', 'NodeList', 'Reason', 'exit_code'];

/**
 * The jobs among `ids` that the controller still knows (finished jobs stay for MinJobAge).
 * @throws EngineError E_SCHEDULER when squeue fails
 */
export async function squeue(client: SlurmClient, ids: readonly string[]): Promise<JobStatus[]> {
  if (ids.length === 0) return [];
  // Each field ends with '|' (size left empty: never truncated).
  const args = ['--noheader', '--states=all', `--jobs=${ids.join(',')}`, `--Format=${SQUEUE_FIELDS.map((f) => `${f}:|`).join(',')}`];
  let out: string;
  try {
    out = await slurmCommand(client, 'squeue', args);
  } catch (error) {
    // Asked about one job it no longer knows, squeue fails; about several, it leaves them out.
    if (error instanceof EngineError && error.details.some((line) => line.includes('Invalid job id specified'))) return [];
    throw error;
  }
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', state = '', nodes = '', reason = '', exit = ''] = line.split('|').map((f) => f.trim());
      return { id, state: baseState(state), nodes, reason, waitStatus: /^[0-9]+$/.test(exit) ? Number(exit) : undefined };
    });
}

/**
 * What the accounting database says about `ids` (for jobs squeue has forgotten); [] when the
 * cluster keeps no accounting.
 * @throws EngineError E_SCHEDULER when sacct fails otherwise
 */
export async function sacct(client: SlurmClient, ids: readonly string[]): Promise<JobStatus[]> {
  if (ids.length === 0) return [];
  let out: string;
  try {
    out = await slurmCommand(client, 'sacct', ['--noheader', '--parsable2', '--allocations', `--jobs=${ids.join(',')}`, '--format=JobID,State,NodeList,Reason,ExitCode']);
  } catch (error) {
    if (error instanceof EngineError && error.details.some((line) => /accounting storage is disabled/i.test(line))) return [];
    throw error;
  }
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', state = '', nodes = '', reason = '', exit = ''] = line.split('|');
      const [status, signal] = exit.split(':').map(Number);
      const waitStatus = Number.isInteger(status) && Number.isInteger(signal) ? ((status as number) << 8) | (signal as number) : undefined;
      return { id, state: baseState(state), nodes: nodes === 'None assigned' ? '' : nodes, reason, waitStatus };
    });
}

/**
 * Cancels jobs (pending ones never start; running ones get TERM, then KILL after KillWait).
 * @throws EngineError E_SCHEDULER when scancel fails
 */
export async function scancel(client: SlurmClient, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await slurmCommand(client, 'scancel', ['--quiet', ...ids]);
}

/** "CANCELLED by 0" -> "CANCELLED"; "COMPLETING+" style suffixes dropped. */
function baseState(state: string): string {
  return (/^[A-Z_]+/.exec(state.trim())?.[0] ?? state.trim()) || 'UNKNOWN';
}

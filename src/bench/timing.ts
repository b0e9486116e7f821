import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InternalError, RunError } from '../errors.js';

/**
 * Timing helpers for benchmarks that compare a command of ours with the reference's: wall time
 * of a whole process (start-up included, as a user sees it) and its peak resident memory, taken
 * alternately over several rounds so that drift in the machine's load hits both sides alike.
 */

/** One timed process run. */
export interface Measurement {
  readonly seconds: number;
  /** Peak resident set size in KiB, from GNU time or getrusage; undefined when neither is available. */
  readonly maxRssKiB: number | undefined;
  /** User plus system CPU seconds, from GNU time (less sensitive to a busy machine than wall time). */
  readonly cpuSeconds: number | undefined;
}

/** A command to time: argv (no shell), working directory and environment. */
export interface CommandSpec {
  readonly argv: readonly [string, ...string[]];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

const GNU_TIME = '/usr/bin/time';
const PYTHON = '/usr/bin/python3';

/**
 * Without GNU time: Python (which the reference needs anyway) runs the command and writes, in
 * GNU time's `%M %U %S` form, the peak RSS and CPU times of its waited-for children
 * (getrusage(RUSAGE_CHILDREN); ru_maxrss is in KiB on Linux), then exits with the command's
 * status. Either way the whole process is measured, worker threads and children included.
 */
const RUSAGE_WRAPPER = [
  'import resource, subprocess, sys',
  'status = subprocess.call(sys.argv[2:])',
  'u = resource.getrusage(resource.RUSAGE_CHILDREN)',
  'open(sys.argv[1], "w").write("%d %.2f %.2f\\n" % (u.ru_maxrss, u.ru_utime, u.ru_stime))',
  'sys.exit(status if status >= 0 else 1)',
].join('\n');

/** The argv that runs `argv` and writes `%M %U %S` to `file`, or `argv` alone when nothing can measure it. */
function measuredArgv(argv: readonly string[], file: string): { argv: string[]; measured: boolean } {
  if (existsSync(GNU_TIME)) return { argv: [GNU_TIME, '-f', '%M %U %S', '-o', file, ...argv], measured: true };
  if (existsSync(PYTHON)) return { argv: [PYTHON, '-c', RUSAGE_WRAPPER, file, ...argv], measured: true };
  return { argv: [...argv], measured: false };
}

/**
 * Runs a command once and measures it. A non-zero exit is an error: a benchmark of a run that
 * failed would time the failure.
 * @throws RunError E_COMMAND_FAILED when the command cannot start or exits non-zero
 */
export function timeCommand(spec: CommandSpec): Measurement {
  const dir = mkdtempSync(join(tmpdir(), 'bench-time-'));
  const rssFile = join(dir, 'rss');
  const { argv, measured: haveTime } = measuredArgv(spec.argv, rssFile);
  try {
    const start = process.hrtime.bigint();
    const result = spawnSync(argv[0]!, argv.slice(1), {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (result.error !== undefined || result.status !== 0) {
      const why = result.error?.message ?? `exit status ${String(result.status)}: ${result.stderr.toString().slice(-2000)}`;
      throw new RunError('E_COMMAND_FAILED', `${spec.argv.join(' ')} failed: ${why}`);
    }
    // GNU time's last line; earlier lines may note a signal or exit status.
    const fields = haveTime ? (readFileSync(rssFile, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number) : [];
    const [rss, user, sys] = fields;
    const known = (n: number | undefined): n is number => n !== undefined && Number.isFinite(n);
    return {
      seconds,
      maxRssKiB: known(rss) ? rss : undefined,
      cpuSeconds: known(user) && known(sys) ? user + sys : undefined,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The median of a non-empty list.
 * @throws InternalError E_INTERNAL for an empty list
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new InternalError('E_INTERNAL', 'median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Comparison {
  readonly ours: readonly Measurement[];
  readonly reference: readonly Measurement[];
  readonly oursMedian: number;
  readonly referenceMedian: number;
  /** oursMedian / referenceMedian. */
  readonly ratio: number;
  readonly oursPeakRssKiB: number | undefined;
  readonly referencePeakRssKiB: number | undefined;
  readonly oursCpuMedian: number | undefined;
  readonly referenceCpuMedian: number | undefined;
}

/**
 * Times `ours` and `reference` alternately for `rounds` rounds (the order flips every round),
 * after one untimed warm-up run of each so both read the files from the page cache.
 * @throws whatever `ours` or `reference` throws (see {@link timeCommand})
 */
export function compareAlternating(ours: () => Measurement, reference: () => Measurement, rounds: number): Comparison {
  ours();
  reference();
  const a: Measurement[] = [];
  const b: Measurement[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      a.push(ours());
      b.push(reference());
    } else {
      b.push(reference());
      a.push(ours());
    }
  }
  const peak = (ms: readonly Measurement[]): number | undefined =>
    ms.some((m) => m.maxRssKiB === undefined) ? undefined : Math.max(...ms.map((m) => m.maxRssKiB!));
  const cpu = (ms: readonly Measurement[]): number | undefined =>
    ms.some((m) => m.cpuSeconds === undefined) ? undefined : median(ms.map((m) => m.cpuSeconds!));
  const oursMedian = median(a.map((m) => m.seconds));
  const referenceMedian = median(b.map((m) => m.seconds));
  return {
    ours: a,
    reference: b,
    oursMedian,
    referenceMedian,
    ratio: oursMedian / referenceMedian,
    oursPeakRssKiB: peak(a),
    referencePeakRssKiB: peak(b),
    oursCpuMedian: cpu(a),
    referenceCpuMedian: cpu(b),
  };
}

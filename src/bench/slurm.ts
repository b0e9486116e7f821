import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunError } from '../errors.js';
import { compareAlternating, median, type Comparison, type Measurement } from './timing.js';

/**
 * The overhead of running a pipeline through Slurm: a chain of three steps, each pinned to its
 * own node of the lab (scripts/slurm-lab.sh) and started by Slurm when the one before it has
 * completed, each sleeping STEP_SECONDS; against the peer that has no overhead at all, the
 * same three commands run one after the other on this machine. Target (issue 16): the chain
 * within 3 s plus the steps' own time. The second case adds the verification job.
 */

export const SLURM_STEPS = 3;
export const STEP_SECONDS = 0.2;
/** Seconds the chain may take beyond the steps' own time. */
export const SLURM_MAX_OVERHEAD_SECONDS = 3;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LAB_SCRIPT = join(ROOT, 'scripts', 'slurm-lab.sh');

export interface SlurmBenchRow {
  readonly case: string;
  readonly comparison: Comparison;
  readonly maxOverheadSeconds: number | undefined;
}

/**
 * Starts a lab in `dataDir/slurm-lab`, times the chain `rounds` times, stops the lab.
 * @throws RunError E_COMMAND_FAILED when the lab does not start or a chain fails
 */
export function runSlurmBench(context: { readonly dataDir: string; readonly rounds: number; readonly write: (line: string) => void }): SlurmBenchRow[] {
  const env = { ...process.env, SLURM_LAB_DIR: join(context.dataDir, 'slurm-lab') };
  const up = spawnSync(LAB_SCRIPT, ['up'], { env, encoding: 'utf8' });
  if (up.status !== 0) throw new RunError('E_COMMAND_FAILED', `scripts/slurm-lab.sh up failed: ${up.stderr.trim()}`);
  try {
    const lab = new Map(
      readFileSync(join(env.SLURM_LAB_DIR, 'lab.env'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    context.write(`   lab: ${lab.get('SLURM_LAB_MODE')} mode, nodes ${lab.get('SLURM_LAB_NODES')}`);
    const child = [process.execPath, join(ROOT, 'dist', 'bench', 'slurm-child.js'), '--conf', lab.get('SLURM_CONF') ?? '', '--nodes', lab.get('SLURM_LAB_NODES') ?? '', '--node-root', lab.get('SLURM_LAB_NODE_ROOT') ?? '', '--steps', String(SLURM_STEPS), '--sleep', String(STEP_SECONDS)];
    const runs: { stepsMs: number; totalMs: number }[] = [];
    const chain = (): { stepsMs: number; totalMs: number } => {
      const r = spawnSync(child[0]!, child.slice(1), { encoding: 'utf8' });
      if (r.status !== 0) throw new RunError('E_COMMAND_FAILED', `the Slurm chain failed: ${r.stderr.trim()}`);
      const result = JSON.parse(r.stdout) as { stepsMs: number; totalMs: number };
      runs.push(result);
      return result;
    };
    const local = (): Measurement => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < SLURM_STEPS; i++) spawnSync('sleep', [String(STEP_SECONDS)]);
      return { seconds: Number(process.hrtime.bigint() - start) / 1e9, maxRssKiB: undefined, cpuSeconds: undefined };
    };
    // The same runs give both cases: until the last step ended, and until the verification ended.
    const steps = compareAlternating(() => ({ seconds: chain().stepsMs / 1000, maxRssKiB: undefined, cpuSeconds: undefined }), local, context.rounds);
    const timed = runs.slice(-context.rounds);
    const totals = compareWith(steps, timed.map((r) => r.totalMs / 1000));
    context.write(`   ${SLURM_STEPS} steps: ${timed.map((r) => (r.stepsMs / 1000).toFixed(3)).join(' ')} s; with the verification job: ${timed.map((r) => (r.totalMs / 1000).toFixed(3)).join(' ')} s`);
    return [
      { case: `${SLURM_STEPS} steps of sleep ${STEP_SECONDS} s on 3 nodes, chained (afterok)`, comparison: steps, maxOverheadSeconds: SLURM_MAX_OVERHEAD_SECONDS },
      { case: `the same, then the verification job`, comparison: totals, maxOverheadSeconds: undefined },
    ];
  } finally {
    spawnSync(LAB_SCRIPT, ['down'], { env, encoding: 'utf8' });
  }
}

/** `base` with our side replaced by `seconds` (same reference rounds). */
function compareWith(base: Comparison, seconds: readonly number[]): Comparison {
  const ours = seconds.map((s) => ({ seconds: s, maxRssKiB: undefined, cpuSeconds: undefined }));
  const oursMedian = median(seconds);
  return { ...base, ours, oursMedian, ratio: oursMedian / base.referenceMedian, oursPeakRssKiB: undefined, oursCpuMedian: undefined };
}

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKey, writeKeyPair } from '../crypto/keyfiles.js';
import { RunError } from '../errors.js';
import { compareAlternating, median, type Comparison, type Measurement } from './timing.js';

/**
 * The cost of running a pipeline through Slurm on the lab (scripts/slurm-lab.sh): a real
 * three-step pipeline, each step on its own node, run by `intoto pipeline run --engine slurm`
 * (publish here, then one Slurm job per step running `intoto pipeline step`: open the run,
 * fetch and check the materials, run the command sandboxed, sign, push; then the verification
 * job), each step's command `sleep 0.2` and a copy; against the peer that has no overhead at
 * all, the same three commands run one after the other on this machine. Target (issue 16):
 * the three steps within 3 s plus the steps' own time. Also: the same with the verification
 * job, and Slurm alone (the same chain of jobs running only `sleep 0.2`, no intoto), which
 * says how much of the overhead is the scheduler's.
 */

export const SLURM_STEPS = 3;
export const STEP_SECONDS = 0.2;
/** Seconds the pipeline may take beyond the steps' own time. */
export const SLURM_MAX_OVERHEAD_SECONDS = 3;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LAB_SCRIPT = join(ROOT, 'scripts', 'slurm-lab.sh');
const INTOTO = join(ROOT, 'dist', 'bin', 'intoto.js');

export interface SlurmBenchRow {
  readonly case: string;
  readonly comparison: Comparison;
  readonly maxOverheadSeconds: number | undefined;
}

/** The step commands (each reads the file the one before it made). */
function stepCommand(i: number): string {
  return `sleep ${STEP_SECONDS}; cp ${i === 1 ? 'data.txt' : `s${i - 1}.txt`} s${i}.txt`;
}

function layoutYaml(): string {
  const steps = Array.from({ length: SLURM_STEPS }, (_, k) => {
    const i = k + 1;
    const input = i === 1 ? '"ALLOW data.txt"' : `"MATCH s${i - 1}.txt WITH PRODUCTS FROM s${i - 1}"`;
    const kept = i === 1 ? 'data.txt' : `s${i - 1}.txt`;
    return [
      `  - name: s${i}`,
      `    functionaries: [f${i}]`,
      `    run: [sh, -c, '${stepCommand(i)}']`,
      `    materials: [${input}, "DISALLOW *"]`,
      `    products: ["CREATE s${i}.txt", "MATCH ${kept} WITH MATERIALS FROM s${i}", "DISALLOW *"]`,
    ].join('\n');
  });
  const functionaries = Array.from({ length: SLURM_STEPS }, (_, k) => `f${k + 1}: keys/f${k + 1}.pub`).join(', ');
  return `expires_in: 1d\nfunctionaries: {${functionaries}}\ninputs: {data.txt: data.txt}\nsteps:\n${steps.join('\n')}\n`;
}

interface LabRun {
  /** Until the last step's job was seen ended. */
  readonly stepsSeconds: number;
  /** The whole command: publish, steps, verification. */
  readonly totalSeconds: number;
}

/**
 * Starts a lab in `dataDir/slurm-lab`, times the pipeline and the bare chain `rounds` times, stops the lab.
 * @throws RunError E_COMMAND_FAILED when the lab does not start or a run fails
 */
export function runSlurmBench(context: { readonly dataDir: string; readonly rounds: number; readonly write: (line: string) => void }): SlurmBenchRow[] {
  const env = { ...process.env, SLURM_LAB_DIR: join(context.dataDir, 'slurm-lab') };
  const up = spawnSync(LAB_SCRIPT, ['up'], { env, encoding: 'utf8' });
  if (up.status !== 0) throw new RunError('E_COMMAND_FAILED', `scripts/slurm-lab.sh up failed: ${up.stderr.trim()}`);
  const owner = mkdtempSync(join(tmpdir(), 'intoto-bench-owner-'));
  try {
    const lab = new Map(
      readFileSync(join(env.SLURM_LAB_DIR, 'lab.env'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const get = (name: string): string => lab.get(name) ?? '';
    const nodes = get('SLURM_LAB_NODES').split(',');
    context.write(`   lab: ${get('SLURM_LAB_MODE')} mode, nodes ${nodes.join(',')}`);
    const args = setUp(get, nodes, owner);
    const childEnv = { ...process.env, SLURM_CONF: get('SLURM_CONF') };
    let round = 0;
    const runs: LabRun[] = [];
    const pipeline = (): Measurement => {
      const start = process.hrtime.bigint();
      const r = spawnSync(process.execPath, [INTOTO, ...args, '--run-id', `bench-${process.pid}-${++round}`], { env: childEnv, encoding: 'utf8', timeout: 300_000 });
      const wall = Number(process.hrtime.bigint() - start) / 1e9;
      if (r.status !== 0) throw new RunError('E_COMMAND_FAILED', `the pipeline through Slurm failed: ${r.stderr.trim().split('\n').pop() ?? ''}`);
      const report = JSON.parse(r.stdout) as { totalMs: number; jobs: { key: string; endedMs: number }[] };
      const last = report.jobs.find((j) => j.key === `s${SLURM_STEPS}`)?.endedMs ?? report.totalMs;
      // The verification job is what the run did after the last step ended.
      const result = { stepsSeconds: wall - (report.totalMs - last) / 1000, totalSeconds: wall };
      runs.push(result);
      return { seconds: result.stepsSeconds, maxRssKiB: undefined, cpuSeconds: undefined };
    };
    const local = localSteps();
    const steps = compareAlternating(pipeline, local, context.rounds);
    const timed = runs.slice(-context.rounds);
    const totals = compareWith(steps, timed.map((r) => r.totalSeconds));
    context.write(`   ${SLURM_STEPS} steps: ${timed.map((r) => r.stepsSeconds.toFixed(3)).join(' ')} s; with the verification job: ${timed.map((r) => r.totalSeconds.toFixed(3)).join(' ')} s`);
    const perStep = (median(timed.map((r) => r.stepsSeconds)) - steps.referenceMedian) / SLURM_STEPS;
    context.write(`   overhead per step (median): ${perStep.toFixed(2)} s`);

    const chain = bareChain(get, nodes, context.rounds, local);
    return [
      { case: `${SLURM_STEPS} real steps (intoto pipeline step, sleep ${STEP_SECONDS} s each) on 3 nodes, published and chained`, comparison: steps, maxOverheadSeconds: SLURM_MAX_OVERHEAD_SECONDS },
      { case: 'the same, then the verification job', comparison: totals, maxOverheadSeconds: undefined },
      { case: `Slurm alone: ${SLURM_STEPS} jobs running only sleep ${STEP_SECONDS} s, chained`, comparison: chain, maxOverheadSeconds: undefined },
    ];
  } finally {
    rmSync(owner, { recursive: true, force: true });
    spawnSync(LAB_SCRIPT, ['down'], { env, encoding: 'utf8' });
  }
}

/** Keys (private ones on their nodes only), the layout and its input in the lab's shared directory; the command line. */
function setUp(get: (name: string) => string, nodes: readonly string[], owner: string): string[] {
  const shared = get('SLURM_LAB_SHARED');
  const nodeRoot = get('SLURM_LAB_NODE_ROOT');
  mkdirSync(join(shared, 'bench', 'keys'), { recursive: true });
  writeFileSync(join(shared, 'bench', 'pipeline.yaml'), layoutYaml());
  writeFileSync(join(shared, 'bench', 'data.txt'), 'benchmark input\n');
  writeKeyPair(generateSigningKey({ type: 'ed25519' }), join(owner, 'owner'));
  writeFileSync(join(shared, 'bench', 'owner.pub'), readFileSync(join(owner, 'owner.pub')));
  const machines: string[] = [];
  for (let i = 1; i <= SLURM_STEPS; i++) {
    const node = nodes[(i - 1) % nodes.length] as string;
    const path = join(nodeRoot, node, 'keys', `f${i}`);
    writeKeyPair(generateSigningKey({ type: 'ed25519' }), path);
    writeFileSync(join(shared, 'bench', 'keys', `f${i}.pub`), readFileSync(`${path}.pub`));
    rmSync(`${path}.pub`);
    machines.push('--node', `f${i}=${node}`);
  }
  return [
    'pipeline', 'run', join(shared, 'bench', 'pipeline.yaml'), '--engine', 'slurm', '--json',
    '--store', `oci://${get('SLURM_LAB_REGISTRY')}/bench/pipeline`, ...(get('SLURM_LAB_MODE') === 'namespaces' ? ['--insecure'] : []),
    '--owner-key', join(owner, 'owner'), '--layout-key', join(shared, 'bench', 'owner.pub'), '--pubkey-dir', join(shared, 'bench', 'keys'),
    ...machines, '--verify-node', nodes[0] as string, '--key-path', join(nodeRoot, '{node}', 'keys', '{functionary}'),
    '--intoto', INTOTO, '--job-output', join(nodeRoot, '{node}', 'jobs'), '--partition', get('SLURM_LAB_PARTITION'),
  ];
}

/** The peer: the same step commands, back to back, on this machine. */
function localSteps(): () => Measurement {
  const dir = mkdtempSync(join(tmpdir(), 'intoto-bench-steps-'));
  writeFileSync(join(dir, 'data.txt'), 'benchmark input\n');
  return () => {
    const start = process.hrtime.bigint();
    for (let i = 1; i <= SLURM_STEPS; i++) spawnSync('sh', ['-c', stepCommand(i)], { cwd: dir });
    return { seconds: Number(process.hrtime.bigint() - start) / 1e9, maxRssKiB: undefined, cpuSeconds: undefined };
  };
}

/** Slurm alone: the chain of sleep jobs (slurm-child.js), against the same peer. */
function bareChain(get: (name: string) => string, nodes: readonly string[], rounds: number, local: () => Measurement): Comparison {
  const child = [join(ROOT, 'dist', 'bench', 'slurm-child.js'), '--conf', get('SLURM_CONF'), '--nodes', nodes.join(','), '--node-root', get('SLURM_LAB_NODE_ROOT'), '--steps', String(SLURM_STEPS), '--sleep', String(STEP_SECONDS)];
  return compareAlternating(
    () => {
      const r = spawnSync(process.execPath, child, { encoding: 'utf8' });
      if (r.status !== 0) throw new RunError('E_COMMAND_FAILED', `the Slurm chain failed: ${r.stderr.trim()}`);
      return { seconds: (JSON.parse(r.stdout) as { stepsMs: number }).stepsMs / 1000, maxRssKiB: undefined, cpuSeconds: undefined };
    },
    local,
    rounds,
  );
}

/** `base` with our side replaced by `seconds` (same reference rounds). */
function compareWith(base: Comparison, seconds: readonly number[]): Comparison {
  const ours = seconds.map((s) => ({ seconds: s, maxRssKiB: undefined, cpuSeconds: undefined }));
  const oursMedian = median(seconds);
  return { ...base, ours, oursMedian, ratio: oursMedian / base.referenceMedian, oursPeakRssKiB: undefined, oursCpuMedian: undefined };
}

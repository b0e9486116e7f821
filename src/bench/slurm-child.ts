import { join } from 'node:path';
import { runSlurmJobs, type SlurmJobSpec } from '../engine/slurm.js';
import { newRunId } from '../engine/step-command.js';

/**
 * One timed chain on the Slurm lab, for the slurm benchmark: STEPS jobs, each on the next node
 * and after the one before it (afterok), each running `sleep SECONDS`, then a verification job
 * (`true`) after them all; the engine's own defaults (250 ms polling). Usage:
 *   node dist/bench/slurm-child.js --conf SLURM_CONF --nodes node1,node2,node3 --node-root DIR [--steps 3] [--sleep 0.2]
 * Prints {"stepsMs": N, "totalMs": N}: when the last step's job and the whole run were seen ended.
 */
async function main(argv: readonly string[]): Promise<void> {
  const value = (flag: string, fallback?: string): string => {
    const i = argv.indexOf(flag);
    const found = i >= 0 ? argv[i + 1] : fallback;
    if (found === undefined) throw new Error(`${flag} is required`);
    return found;
  };
  const nodes = value('--nodes').split(',');
  const steps = Number(value('--steps', '3'));
  const sleepSeconds = value('--sleep', '0.2');
  const runId = newRunId();
  const jobs: SlurmJobSpec[] = [];
  for (let i = 0; i < steps; i++) {
    const node = nodes[i % nodes.length]!;
    jobs.push({ key: `s${i + 1}`, step: `s${i + 1}`, functionary: `f${i + 1}`, node, after: i === 0 ? [] : [`s${i}`], argv: ['sleep', sleepSeconds], output: join(value('--node-root'), node, 'jobs', `${runId}-s${i + 1}.out`) });
  }
  jobs.push({ key: 'verify', step: 'verify', functionary: undefined, node: nodes[0], after: jobs.map((j) => j.key), argv: ['true'], output: undefined });
  const result = await runSlurmJobs({ client: { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLURM_CONF: value('--conf') } }, jobs, runId });
  if (!result.passed) throw new Error(result.failure?.message ?? 'the chain failed');
  const last = result.jobs.find((j) => j.key === `s${steps}`);
  process.stdout.write(`${JSON.stringify({ stepsMs: last?.endedMs, totalMs: result.totalMs })}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`slurm-child: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planJobs, type JobPlan, type PlannedJob } from '../../src/engine/jobs.js';
import { slurmJobSpecs, type JobCommands } from '../../src/engine/slurm-pipeline.js';
import { newRunId } from '../../src/engine/step-command.js';
import { runSlurmJobs, type SlurmEvent, type SlurmRunResult } from '../../src/engine/slurm.js';
import { loadLayoutSource } from '../../src/pipeline/load.js';
import { planSteps } from '../../src/pipeline/plan.js';
import type { Lab } from '../helpers/slurm-lab.js';
import { makeProject } from '../pipeline/helpers.js';

/**
 * Pipelines for the lab tests: a real YAML layout, planned by the real planner, run as Slurm
 * jobs whose commands are shell stand-ins for `intoto pipeline step` (which needs the OCI
 * store of the next round): write a file, fail, sleep to be cancelled.
 */

/** A layout of steps `a`, `b`, ... each reading from the ones listed, with functionaries f1.. */
export function layoutPlan(dir: string, steps: readonly { name: string; from: readonly string[]; functionaries?: readonly string[]; threshold?: number }[], machines: ReadonlyMap<string, string>, verifyNode: string): JobPlan {
  const names = [...new Set(steps.flatMap((s) => s.functionaries ?? ['f1']))];
  makeProject(dir, names);
  const yaml = [
    'expires: "2030-01-01T00:00:00Z"',
    'functionaries:',
    ...names.map((n) => `  ${n}: keys/${n}.pub`),
    'inputs:',
    '  src/hello.txt: src/hello.txt',
    'steps:',
    ...steps.flatMap((s) => [
      `  - name: ${s.name}`,
      `    functionaries: [${(s.functionaries ?? ['f1']).join(', ')}]`,
      ...(s.threshold === undefined ? [] : [`    threshold: ${s.threshold}`]),
      '    run: "true"',
      `    materials: [${[...s.from.map((f) => `"MATCH * WITH PRODUCTS FROM ${f}"`), '"ALLOW *"'].join(', ')}]`,
      '    products: ["ALLOW *"]',
    ]),
  ].join('\n');
  const file = join(dir, 'layout.yaml');
  writeFileSync(file, `${yaml}\n`);
  const { source } = loadLayoutSource({ file, now: Date.UTC(2026, 11, 1) });
  return planJobs({ steps: planSteps(source.steps), machines, verifyNode });
}

export interface LabRun {
  readonly runId: string;
  readonly result: SlurmRunResult;
  readonly events: readonly SlurmEvent[];
  /** Output file of a job, on the host. */
  output(key: string): string;
}

/** Runs `plan` on the lab with `commands`; each job's output goes to its node's jobs/ directory. */
export async function runOnLab(lab: Lab, plan: JobPlan, commands: JobCommands, options: { signal?: AbortSignal; onEvent?: (e: SlurmEvent) => void } = {}): Promise<LabRun> {
  const runId = newRunId();
  const outputs = new Map<string, string>();
  const output = (job: PlannedJob): string => {
    const dir = join(lab.nodeDir(job.node ?? lab.nodes[0]!), 'jobs');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${runId}-${job.key}.out`);
    outputs.set(job.key, path);
    return path;
  };
  const events: SlurmEvent[] = [];
  const result = await runSlurmJobs({
    client: { env: lab.env },
    jobs: slurmJobSpecs(plan, commands, output),
    runId,
    partition: lab.partition,
    pollMs: 100,
    onEvent: (e) => {
      events.push(e);
      options.onEvent?.(e);
    },
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  return { runId, result, events, output: (key) => outputs.get(key) ?? '' };
}

/** A stand-in command: `sh -c SCRIPT`. */
export function sh(script: string): string[] {
  return ['/bin/sh', '-c', script];
}

/** Jobs of the lab not yet ended (PENDING, RUNNING, COMPLETING, ...): must be none after a run. */
export function unfinishedJobs(lab: Lab): string[] {
  const r = spawnSync('squeue', ['--noheader', '--states=PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED', '--Format=JobID:|,State:|,NodeList:|'], { env: lab.env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`squeue failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobCommands } from '../../src/engine/slurm-pipeline.js';
import { progressLine } from '../../src/engine/slurm-progress.js';
import { tempDir } from '../helpers/reference.js';
import { slurmAvailable, startLab, type Lab } from '../helpers/slurm-lab.js';
import { layoutPlan, runOnLab, sh, unfinishedJobs } from './lab-helpers.js';

/**
 * The Slurm engine against the real lab (scripts/slurm-lab.sh: slurmctld, three slurmd in
 * their own namespaces, munge, a registry). The jobs' commands are shell stand-ins for
 * `intoto pipeline step`, which needs the OCI store (next round); everything else is real:
 * sbatch, afterok chains, -w pinning, squeue polling, scancel.
 */

const enabled = slurmAvailable();
const machines = new Map([
  ['f1', 'node1'],
  ['f2', 'node2'],
  ['f3', 'node3'],
]);

describe.runIf(enabled)('Slurm engine on the lab cluster', () => {
  let lab: Lab;
  beforeAll(() => {
    lab = startLab();
  });
  afterAll(() => lab?.stop());

  /** Commands that record where each job ran: `<node dir>/jobs/<run>-<key>.ran` holds the host name. */
  function recording(runTag: string): JobCommands {
    const mark = (node: string | undefined, key: string): string[] => sh(`hostname > ${join(lab.nodeDir(node ?? 'node1'), 'jobs', `${runTag}-${key}.ran`)}`);
    return { step: (job) => mark(job.node, job.key), verify: (job) => mark(job.node, job.key) };
  }

  it('runs a three-step chain, each step pinned to its functionary node, then the verification', async () => {
    const plan = layoutPlan(tempDir(), [
      { name: 'a', from: [], functionaries: ['f1'] },
      { name: 'b', from: ['a'], functionaries: ['f2'] },
      { name: 'c', from: ['b'], functionaries: ['f3'] },
    ], machines, 'node1');
    const run = await runOnLab(lab, plan, recording('chain'));
    expect(run.result.failure).toBeUndefined();
    expect(run.result.passed).toBe(true);
    expect(run.result.jobs.map((j) => [j.key, j.node, j.state])).toEqual([
      ['a', 'node1', 'COMPLETED'],
      ['b', 'node2', 'COMPLETED'],
      ['c', 'node3', 'COMPLETED'],
      ['verify', 'node1', 'COMPLETED'],
    ]);
    // Each ran after the one before it ended (Slurm's afterok), on its own node.
    const ended = run.result.jobs.map((j) => j.endedMs ?? Infinity);
    const started = run.result.jobs.map((j) => j.startedMs ?? -1);
    for (let i = 1; i < 4; i++) expect(started[i]).toBeGreaterThanOrEqual(ended[i - 1]!);
    if (lab.mode === 'namespaces') {
      for (const [key, node] of [['a', 'node1'], ['b', 'node2'], ['c', 'node3']] as const) {
        expect(readFileSync(join(lab.nodeDir(node), 'jobs', `chain-${key}.ran`), 'utf8').trim()).toBe(node);
      }
    }
    // Progress: every job was reported submitted, then in each state it went through.
    expect(run.events.filter((e) => e.kind === 'submitted')).toHaveLength(4);
    expect(run.events.some((e) => e.kind === 'state' && e.job.key === 'c' && e.job.state === 'COMPLETED')).toBe(true);
    console.log(`lab (${lab.mode}): three trivial steps done after ${run.result.jobs[2]!.endedMs} ms, verification after ${run.result.jobs[3]!.endedMs} ms, run ${run.result.totalMs} ms`);
    expect(unfinishedJobs(lab)).toEqual([]);
  });

  it('runs a threshold-2 step as two jobs on the two functionaries\' nodes, both before the next step', async () => {
    const plan = layoutPlan(tempDir(), [
      { name: 'validate', from: [], functionaries: ['f1'] },
      { name: 'train', from: ['validate'], functionaries: ['f2', 'f3'], threshold: 2 },
      { name: 'evaluate', from: ['train'], functionaries: ['f1'] },
    ], machines, 'node1');
    const run = await runOnLab(lab, plan, recording('threshold'));
    expect(run.result.passed).toBe(true);
    const byKey = new Map(run.result.jobs.map((j) => [j.key, j]));
    expect(byKey.get('train.f2')?.node).toBe('node2');
    expect(byKey.get('train.f3')?.node).toBe('node3');
    const evaluate = byKey.get('evaluate')!;
    for (const key of ['train.f2', 'train.f3']) expect(evaluate.startedMs!).toBeGreaterThanOrEqual(byKey.get(key)!.endedMs!);
    expect(unfinishedJobs(lab)).toEqual([]);
  });

  it('attack: a job cannot read another node\'s key directory (it sees only its own)', async () => {
    if (lab.mode !== 'namespaces') {
      // Loopback nodes share one file system: nothing to test, and CI requires namespaces.
      expect(process.env['CI']).not.toBe('true');
      return;
    }
    for (const [node, name] of [['node1', 'f1'], ['node2', 'f2']] as const) {
      mkdirSync(join(lab.nodeDir(node), 'keys'), { recursive: true });
      writeFileSync(join(lab.nodeDir(node), 'keys', name), `private key of ${name}\n`, { mode: 0o600 });
    }
    const own = join(lab.nodeDir('node1'), 'keys', 'f1');
    const other = join(lab.nodeDir('node2'), 'keys');
    // The honest job reads its own key; the attacker's tries the other node's directory.
    const plan = layoutPlan(tempDir(), [{ name: 'a', from: [], functionaries: ['f1'] }], machines, 'node1');
    const honest = await runOnLab(lab, plan, { step: () => sh(`cat ${own} >/dev/null && ls ${lab.nodeDir('')}`), verify: () => sh('true') });
    expect(honest.result.passed).toBe(true);
    expect(readFileSync(honest.output('a'), 'utf8').trim().split('\n')).toEqual(['node1']); // the only node directory it sees

    const thief = await runOnLab(lab, plan, { step: () => sh(`cat ${other}/f2 || ls ${other}`), verify: () => sh('true') });
    expect(thief.result.passed).toBe(false);
    expect(thief.result.failure?.code).toBe('E_JOB_FAILED');
    expect(thief.result.failure?.context).toMatchObject({ step: 'a', node: 'node1' });
    expect(readFileSync(thief.output('a'), 'utf8')).toMatch(/No such file or directory/);
    expect(readFileSync(thief.output('a'), 'utf8')).not.toMatch(/private key of f2/);
    // The same read from node2 itself works: the key is there, only hidden from node1.
    expect(lab.exec('node2', ['cat', join(other, 'f2')]).stdout).toBe('private key of f2\n');
    expect(unfinishedJobs(lab)).toEqual([]);
  });

  it('a failing step ends the run naming the step, node and reason; its dependents never run', async () => {
    const plan = layoutPlan(tempDir(), [
      { name: 'a', from: [], functionaries: ['f1'] },
      { name: 'b', from: ['a'], functionaries: ['f2'] },
      { name: 'c', from: ['b'], functionaries: ['f3'] },
    ], machines, 'node1');
    const run = await runOnLab(lab, plan, {
      step: (job) => (job.step === 'b' ? sh('echo "checking the data"; echo "schema mismatch in row 7" >&2; exit 3') : sh('true')),
      verify: () => sh('true'),
    });
    expect(run.result.passed).toBe(false);
    expect(run.result.failure?.code).toBe('E_JOB_FAILED');
    expect(run.result.failure?.context).toMatchObject({ step: 'b', node: 'node2' });
    expect(run.result.failure?.message).toMatch(/step 'b' \(f2\): job [0-9]+ on node2: exit status 3; last output: schema mismatch in row 7/);
    const states = new Map(run.result.jobs.map((j) => [j.key, j]));
    expect(states.get('a')?.state).toBe('COMPLETED');
    expect(states.get('b')?.state).toBe('FAILED');
    for (const key of ['c', 'verify']) {
      expect(states.get(key)?.state).toBe('CANCELLED');
      expect(states.get(key)?.startedMs).toBeUndefined();
    }
    expect(run.result.leftRunning).toEqual([]);
    expect(unfinishedJobs(lab)).toEqual([]);
    // Progress: one line per change of state, with node, state and time.
    const lines = run.events.map(progressLine);
    expect(lines).toContainEqual(expect.stringMatching(/^b: job \d+ submitted for node2, after job \d+$/));
    expect(lines).toContainEqual(expect.stringMatching(/^a \(f1\): job \d+ on node1 COMPLETED at \d+\.\d s after \d+\.\d s$/));
    expect(lines).toContainEqual(expect.stringMatching(/^b \(f2\): job \d+ on node2 FAILED at \d+\.\d s after \d+\.\d s: exit status 3$/));
    expect(lines).toContainEqual(expect.stringMatching(/^c \(f3\): job \d+ on node3 CANCELLED at \d+\.\d s: cancelled: (a job it depends on did not complete|the run stopped)$/));
  });

  it('a killed job ends the run naming the step, node and signal, and the running branch beside it is cancelled', async () => {
    // a (node1) and b (node2) run side by side; c waits for both. b is killed; a must not be left running.
    const plan = layoutPlan(tempDir(), [
      { name: 'a', from: [], functionaries: ['f1'] },
      { name: 'b', from: [], functionaries: ['f2'] },
      { name: 'c', from: ['a', 'b'], functionaries: ['f3'] },
    ], machines, 'node1');
    const pidFile = (node: string, key: string): string => join(lab.nodeDir(node), 'jobs', `kill-${key}.pid`);
    const runPromise = runOnLab(lab, plan, {
      step: (job) => sh(`echo $$ > ${pidFile(job.node!, job.key)}.tmp && mv ${pidFile(job.node!, job.key)}.tmp ${pidFile(job.node!, job.key)}; exec sleep 300`),
      verify: () => sh('true'),
    });
    // Wait until both sleeps run, then kill b's by its PID, inside node2 (its own PID namespace).
    for (let i = 0; i < 200 && !(existsSync(pidFile('node1', 'a')) && existsSync(pidFile('node2', 'b'))); i++) await sleep(100);
    const pidA = readFileSync(pidFile('node1', 'a'), 'utf8').trim();
    const pidB = readFileSync(pidFile('node2', 'b'), 'utf8').trim();
    const killed = lab.exec('node2', ['kill', '-KILL', pidB]);
    expect(killed.status).toBe(0);
    const run = await runPromise;
    expect(run.result.passed).toBe(false);
    expect(run.result.failure?.code).toBe('E_JOB_FAILED');
    expect(run.result.failure?.context).toMatchObject({ step: 'b', node: 'node2' });
    expect(run.result.failure?.message).toMatch(/on node2: killed by SIGKILL/);
    const states = new Map(run.result.jobs.map((j) => [j.key, j.state]));
    expect(states.get('a')).toBe('CANCELLED');
    expect(states.get('c')).toBe('CANCELLED');
    expect(run.result.jobs.find((j) => j.key === 'a')?.reason).toBe('cancelled: the run stopped');
    expect(run.events.some((e) => e.kind === 'cancelling')).toBe(true);
    expect(run.result.leftRunning).toEqual([]);
    expect(unfinishedJobs(lab)).toEqual([]);
    // a's sleep is gone from node1 (ps in node1's own PID namespace), and b's from node2.
    if (lab.mode === 'namespaces') {
      expect(lab.exec('node1', ['kill', '-0', pidA]).status).not.toBe(0);
      expect(lab.exec('node2', ['kill', '-0', pidB]).status).not.toBe(0);
    }
  });

  it('stopping the run (abort) cancels every job, and nothing is left running, detached children included', async () => {
    const plan = layoutPlan(tempDir(), [
      { name: 'a', from: [], functionaries: ['f1'] },
      { name: 'b', from: ['a'], functionaries: ['f2'] },
    ], machines, 'node1');
    const marker = join(lab.nodeDir('node1'), 'jobs', 'abort-a.pid');
    const controller = new AbortController();
    const runPromise = runOnLab(lab, plan, {
      // The job leaves a detached daemon behind (setsid) before sleeping.
      step: () => sh(`setsid sleep 301 </dev/null >/dev/null 2>&1 & echo $! > ${marker}.tmp && mv ${marker}.tmp ${marker}; exec sleep 300`),
      verify: () => sh('true'),
    }, { signal: controller.signal });
    for (let i = 0; i < 200 && !existsSync(marker); i++) await sleep(100);
    controller.abort();
    const run = await runPromise;
    expect(run.result.passed).toBe(false);
    expect(run.result.failure?.code).toBe('E_JOB_FAILED');
    expect(run.result.failure?.message).toMatch(/interrupted/);
    expect(run.result.jobs.map((j) => [j.key, j.state])).toEqual([['a', 'CANCELLED'], ['b', 'CANCELLED'], ['verify', 'CANCELLED']]);
    expect(unfinishedJobs(lab)).toEqual([]);
    if (lab.mode === 'namespaces' && readFileSync(join(lab.dir, 'lab.env'), 'utf8').includes('proctrack/cgroup')) {
      // proctrack/cgroup: the daemon the job detached ended with the job.
      const daemon = readFileSync(marker, 'utf8').trim();
      let alive = 0;
      for (let i = 0; i < 50 && (alive = lab.exec('node1', ['kill', '-0', daemon]).status ?? 1) === 0; i++) await sleep(100);
      expect(alive).not.toBe(0);
    }
  });

  it('a job sbatch refuses (an unknown node) ends the run with E_SCHEDULER, and what was submitted is cancelled', async () => {
    const plan = layoutPlan(tempDir(), [
      { name: 'a', from: [], functionaries: ['f1'] },
      { name: 'b', from: ['a'], functionaries: ['f2'] },
    ], new Map([['f1', 'node1'], ['f2', 'node99']]), 'node1');
    const run = await runOnLab(lab, plan, { step: () => sh('sleep 300'), verify: () => sh('true') });
    expect(run.result.failure?.code).toBe('E_SCHEDULER');
    expect(run.result.failure?.context).toMatchObject({ step: 'b', node: 'node99' });
    expect(run.result.failure?.message).toMatch(/sbatch failed/);
    expect(run.result.jobs.map((j) => [j.key, j.state])).toEqual([['a', 'CANCELLED']]);
    expect(unfinishedJobs(lab)).toEqual([]);
  });
});

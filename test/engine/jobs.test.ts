import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planJobs } from '../../src/engine/jobs.js';
import { intotoCommands, slurmJobSpecs, expandTemplate } from '../../src/engine/slurm-pipeline.js';
import { loadLayoutSource } from '../../src/pipeline/load.js';
import { planSteps } from '../../src/pipeline/plan.js';
import type { PipelineSource } from '../../src/pipeline/source.js';
import { codeOf } from '../helpers/errors.js';
import { ROOT } from '../helpers/bin.js';
import { tempDir } from '../helpers/reference.js';
import { makeProject } from '../pipeline/helpers.js';
import { parseStoreUrl } from '../../src/engine/step-command.js';

/** The example ML pipeline, with throw-away functionary keys. */
function mlPipeline(): PipelineSource {
  const dir = tempDir();
  cpSync(join(ROOT, 'layouts'), join(dir, 'layouts'), { recursive: true });
  cpSync(join(ROOT, 'steps'), join(dir, 'steps'), { recursive: true });
  makeProject(join(dir, 'keys-project'), ['validator', 'trainer-a', 'trainer-b', 'platform', 'evaluator']);
  return loadLayoutSource({ file: join(dir, 'layouts', 'ml-pipeline.yaml'), pubkeyDir: join(dir, 'keys-project', 'keys') }).source;
}

const NODES = new Map([
  ['validator', 'node1'],
  ['trainer-a', 'node2'],
  ['trainer-b', 'node3'],
  ['platform', 'node4'],
  ['evaluator', 'node1'],
]);

describe('planJobs', () => {
  const source = mlPipeline();
  const steps = planSteps(source.steps);

  it('gives one job per step run, a threshold-2 step two jobs on two nodes, then the verification after all', () => {
    const plan = planJobs({ steps, machines: NODES, verifyNode: 'node1' });
    expect(plan.jobs.map((j) => [j.key, j.node, j.after])).toEqual([
      ['validate', 'node1', []],
      ['train.trainer-a', 'node2', ['validate']],
      ['train.trainer-b', 'node3', ['validate']],
      ['sign', 'node4', ['train.trainer-a', 'train.trainer-b']],
      ['evaluate', 'node1', ['validate', 'train.trainer-a', 'train.trainer-b']],
      ['verify', 'node1', ['validate', 'train.trainer-a', 'train.trainer-b', 'sign', 'evaluate']],
    ]);
    expect(plan.jobs.filter((j) => j.kind === 'step').map((j) => j.kind === 'step' && `${j.run}/${j.runs} ${j.functionary}`)).toEqual(['1/1 validator', '1/2 trainer-a', '2/2 trainer-b', '1/1 platform', '1/1 evaluator']);
    expect(plan.skipped).toEqual([]);
  });

  it('without machines (exports), every functionary may run anywhere', () => {
    const plan = planJobs({ steps });
    expect(plan.jobs.map((j) => j.node)).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });

  it('refuses a threshold step whose runs would share a machine (a threshold counts independent machines)', () => {
    const shared = new Map([...NODES, ['trainer-b', 'node2']]);
    expect(codeOf(() => planJobs({ steps, machines: shared }))).toBe('E_USAGE');
    expect(() => planJobs({ steps, machines: shared })).toThrow(/'trainer-a' and 'trainer-b' would both run on node2/);
  });

  it('refuses a step with fewer placed functionaries than its threshold, naming who is missing', () => {
    const missing = new Map([...NODES].filter(([name]) => name !== 'trainer-b'));
    expect(() => planJobs({ steps, machines: missing })).toThrow(/step 'train' needs 2 functionary machine\(s\) and 1 are given; give --node FUNCTIONARY=NODE for trainer-b/);
  });

  it('keeps keys unique: a step named verify does not take the verification\'s key', () => {
    const renamed = steps.map((s) => (s.name === 'evaluate' ? { ...s, name: 'verify' } : s));
    const plan = planJobs({ steps: renamed, machines: NODES });
    expect(plan.jobs.map((j) => `${j.kind}:${j.key}`)).toEqual(['step:validate', 'step:train.trainer-a', 'step:train.trainer-b', 'step:sign', 'step:verify', 'verify:verify-2']);
    expect(plan.jobs.at(-1)?.after).toContain('verify');
  });

  it('skips a step without run (performed elsewhere): no job, nothing waits for it', () => {
    const noRun = steps.map((s) => (s.name === 'validate' ? { ...s, run: undefined } : s));
    const plan = planJobs({ steps: noRun, machines: NODES });
    expect(plan.skipped).toEqual(['validate']);
    expect(plan.jobs.map((j) => [j.key, j.after])).toEqual([
      ['train.trainer-a', []],
      ['train.trainer-b', []],
      ['sign', ['train.trainer-a', 'train.trainer-b']],
      ['evaluate', ['train.trainer-a', 'train.trainer-b']],
      ['verify', ['train.trainer-a', 'train.trainer-b', 'sign', 'evaluate']],
    ]);
  });

  it('a built-in model-sign step (no run) is a job like any other: its functionary, on its machine, after the steps it reads from', () => {
    const sign = steps.find((s) => s.name === 'sign');
    expect(sign?.run).toBeUndefined();
    expect(sign?.uses).toEqual({ kind: 'model-sign', model: 'model.pkl', signature: 'model.pkl.sig' });
    const plan = planJobs({ steps, machines: NODES });
    expect(plan.skipped).toEqual([]);
    expect(plan.jobs.find((j) => j.key === 'sign')).toMatchObject({ kind: 'step', step: 'sign', functionary: 'platform', node: 'node4', run: 1, runs: 1 });
    // Without a machine for platform, it cannot be placed: refused by name, as any step.
    const without = new Map([...NODES].filter(([name]) => name !== 'platform'));
    expect(() => planJobs({ steps, machines: without })).toThrow(/step 'sign' needs 1 functionary machine\(s\) and 0 are given; give --node FUNCTIONARY=NODE for platform/);
  });
});

describe('the jobs of a real run: intoto pipeline step and verify', () => {
  const source = mlPipeline();
  const plan = planJobs({ steps: planSteps(source.steps), machines: NODES, verifyNode: 'node1' });
  const commands = intotoCommands({
    intoto: ['intoto'],
    layout: '/srv/pipeline/ml-pipeline.yaml',
    store: parseStoreUrl('oci://10.0.0.1:5000/ml/flowers'),
    runId: 'r1',
    params: new Map([['SEED', '7']]),
    keyPath: '/etc/intoto/keys/{functionary}',
    ownerKeys: ['/etc/intoto/owner.pub'],
    outDir: '/srv/release',
  });

  it('each step job runs exactly `intoto pipeline step LAYOUT STEP --as F -k KEY --layout-key OWNER.pub --store ... --run-id ID`', () => {
    const specs = slurmJobSpecs(plan, commands);
    expect(specs.find((s) => s.key === 'train.trainer-b')?.argv).toEqual([
      'intoto', 'pipeline', 'step', '/srv/pipeline/ml-pipeline.yaml', 'train', '--as', 'trainer-b', '-k', '/etc/intoto/keys/trainer-b',
      '--layout-key', '/etc/intoto/owner.pub', '--store', 'oci://10.0.0.1:5000/ml/flowers', '--run-id', 'r1', '--param', 'SEED=7',
    ]);
    expect(specs.at(-1)?.argv).toEqual([
      'intoto', 'pipeline', 'verify', '/srv/pipeline/ml-pipeline.yaml', '--store', 'oci://10.0.0.1:5000/ml/flowers', '--run-id', 'r1', '--param', 'SEED=7',
      '-k', '/etc/intoto/owner.pub', '-o', '/srv/release',
    ]);
    expect(specs.at(-1)).toMatchObject({ key: 'verify', step: 'verify', functionary: undefined, node: 'node1' });
  });

  it('the model-sign step\'s job is `intoto pipeline step ... sign --as platform -k KEY`: the signing happens in that command, on platform\'s node', () => {
    const specs = slurmJobSpecs(plan, commands);
    expect(specs.find((s) => s.key === 'sign')).toMatchObject({
      step: 'sign',
      functionary: 'platform',
      node: 'node4',
      after: ['train.trainer-a', 'train.trainer-b'],
      argv: ['intoto', 'pipeline', 'step', '/srv/pipeline/ml-pipeline.yaml', 'sign', '--as', 'platform', '-k', '/etc/intoto/keys/platform', '--layout-key', '/etc/intoto/owner.pub', '--store', 'oci://10.0.0.1:5000/ml/flowers', '--run-id', 'r1', '--param', 'SEED=7'],
    });
  });

  it('a job carries the key\'s path on its node, never key material', () => {
    for (const spec of slurmJobSpecs(plan, commands)) expect(spec.argv.join(' ')).not.toMatch(/PRIVATE|keyval|"private"/);
  });
});

describe('expandTemplate (--key-path)', () => {
  it.each([
    ['/etc/intoto/keys/{functionary}', '/etc/intoto/keys/alice'],
    ['/keys/{node}/{functionary}.key', '/keys/n1/alice.key'],
    ['/plain/path', '/plain/path'],
  ])('%s', (template, expected) => {
    expect(expandTemplate(template, { functionary: 'alice', node: 'n1' }, '--key-path')).toBe(expected);
  });
  it.each(['/k/{user}', '/k/{functionary', '/k/functionary}', '/k/{}'])('refuses %s', (template) => {
    expect(codeOf(() => expandTemplate(template, { functionary: 'alice', node: 'n1' }, '--key-path'))).toBe('E_USAGE');
  });
  it('intotoCommands checks the template before any job is made', () => {
    expect(codeOf(() => intotoCommands({ intoto: ['intoto'], layout: 'l', store: parseStoreUrl('oci://h/r'), runId: 'r', keyPath: '/k/{who}', ownerKeys: [] }))).toBe('E_USAGE');
  });
});

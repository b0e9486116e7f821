import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchScript } from '../../src/engine/batch-script.js';
import { endReason, isCascade, phaseOf } from '../../src/engine/job-state.js';
import { shellLine } from '../../src/engine/shell.js';
import { submitEnvironment } from '../../src/engine/slurm-cli.js';
import { checkRunId, newRunId, parseStoreUrl, stepCommand } from '../../src/engine/step-command.js';
import { codeOf } from '../helpers/errors.js';

describe('parseStoreUrl', () => {
  it.each([
    ['oci://localhost:5000/ml/flowers', 'localhost:5000', 'ml/flowers'],
    ['oci://10.213.1.1:33571/intoto', '10.213.1.1:33571', 'intoto'],
    ['oci://registry.example.com/team/run-store', 'registry.example.com', 'team/run-store'],
    ['oci://[::1]:5000/a__b.c-d', '[::1]:5000', 'a__b.c-d'],
  ])('%s', (url, host, repository) => {
    expect(parseStoreUrl(url)).toEqual({ url, host, repository });
  });
  it.each([
    'https://localhost:5000/repo',
    'oci://localhost:5000',
    'oci://localhost:5000/',
    'oci://localhost:5000/Upper',
    'oci://localhost:5000/a//b',
    'oci://localhost:5000/-a',
    'oci://localhost:99999/repo',
    'oci://user@host/repo',
    'oci://host/repo?x=1',
    'oci://ho st/repo',
  ])('refuses %s', (url) => {
    expect(codeOf(() => parseStoreUrl(url))).toBe('E_USAGE');
  });
});

describe('run ids', () => {
  it('makes fresh ids that pass their own check', () => {
    const id = newRunId(new Date(Date.UTC(2026, 11, 6, 19, 12, 3)));
    expect(id).toMatch(/^20261206T191203Z-[0-9a-f]{8}$/);
    expect(checkRunId(id)).toBe(id);
    expect(newRunId()).not.toBe(newRunId());
  });
  it.each(['', '-x', '.x', 'a/b', 'a b', 'x'.repeat(65), 'ü'])('refuses %j', (id) => {
    expect(codeOf(() => checkRunId(id))).toBe('E_USAGE');
  });
});

describe('batch scripts', () => {
  it('exec the command with a fixed PATH, after comment lines that cannot break out', () => {
    const script = batchScript({ argv: ['intoto', 'pipeline', 'step', 'a b.yaml', "it's"], about: ['run r1: step a\nrm -rf /'] });
    expect(script).toBe(
      ['#!/bin/sh', '# run r1: step a rm -rf /', 'set -eu', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'export PATH', `exec intoto pipeline step 'a b.yaml' 'it'"'"'s'`, ''].join('\n'),
    );
  });

  it('property: sh runs exactly the argv it was given, whatever the words', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary-ascii', maxLength: 12 }).filter((w) => !w.includes('\0')), { maxLength: 6 }), (words) => {
        const script = batchScript({ argv: ['/bin/sh', '-c', 'for a in "$@"; do printf "%s\\0" "$a"; done', 'sh', ...words], about: [] });
        const out = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
        expect(out.status).toBe(0);
        expect(out.stdout).toBe(words.map((w) => `${w}\0`).join(''));
      }),
      { numRuns: 60 },
    );
  });

  it('shellLine leaves safe words bare', () => {
    expect(shellLine(['intoto', '--store', 'oci://h:5/r', '--param', 'K=V', ''])).toBe("intoto --store oci://h:5/r --param K=V ''");
  });
});

describe('sbatch environment', () => {
  it('passes PATH and SLURM_CONF only: no token, no SBATCH_* or IN_TOTO_* variable reaches a job', () => {
    expect(submitEnvironment({ PATH: '/bin', SLURM_CONF: '/c', GITHUB_TOKEN: 't', AWS_SECRET_ACCESS_KEY: 's', SBATCH_PARTITION: 'p', IN_TOTO_LINK_CMD_EXEC_TIMEOUT: '1' })).toEqual({ PATH: '/bin', SLURM_CONF: '/c' });
  });
});

describe('job states', () => {
  it.each([
    ['PENDING', 0, 'Dependency', 'waiting', ''],
    ['RUNNING', 0, 'None', 'running', ''],
    ['COMPLETING', 0, 'None', 'running', ''],
    ['COMPLETED', 0, 'None', 'completed', 'completed'],
    ['COMPLETED', 256, 'None', 'failed', 'exit status 1'],
    ['FAILED', 768, 'NonZeroExitCode', 'failed', 'exit status 3'],
    ['FAILED', 9, 'None', 'failed', 'killed by SIGKILL'],
    ['CANCELLED', 15, 'None', 'failed', 'cancelled (scancel, or an administrator), killed by SIGTERM'],
    ['CANCELLED', 0, 'DependencyNeverSatisfied', 'failed', 'cancelled: a job it depends on did not complete'],
    ['TIMEOUT', 0, 'TimeLimit', 'failed', 'time limit reached'],
    ['NODE_FAIL', 0, 'None', 'failed', 'the node failed'],
    ['OUT_OF_MEMORY', 0, 'None', 'failed', 'out of memory'],
    ['SOMETHING_NEW', 0, 'Odd', 'failed', 'ended in state SOMETHING_NEW (Odd)'],
  ] as const)('%s (wait status %i, %s) is %s', (state, waitStatus, reason, phase, why) => {
    expect(phaseOf({ state, waitStatus })).toBe(phase);
    if (phase === 'failed' || phase === 'completed') expect(endReason({ state, waitStatus, reason })).toBe(why);
  });
  it('only a dependency cancellation is a cascade', () => {
    expect(isCascade({ state: 'CANCELLED', reason: 'DependencyNeverSatisfied' })).toBe(true);
    expect(isCascade({ state: 'CANCELLED', reason: 'None' })).toBe(false);
    expect(isCascade({ state: 'FAILED', reason: 'DependencyNeverSatisfied' })).toBe(false);
  });
});

describe('stepCommand', () => {
  it('puts every parameter after the store and run id, in order', () => {
    const argv = stepCommand({ intoto: ['node', '/opt/intoto.js'], layout: 'l.yaml', step: 's', functionary: 'f', keyPath: '/k/f', ownerKeys: ['/o.pub'], store: parseStoreUrl('oci://h/r'), runId: 'r', params: new Map([['A', '1'], ['B', 'x y']]) });
    expect(argv).toEqual(['node', '/opt/intoto.js', 'pipeline', 'step', 'l.yaml', 's', '--as', 'f', '-k', '/k/f', '--layout-key', '/o.pub', '--store', 'oci://h/r', '--run-id', 'r', '--param', 'A=1', '--param', 'B=x y']);
  });
});

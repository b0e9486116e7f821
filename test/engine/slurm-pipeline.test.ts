import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { readStepManifest, stepRunTag } from '../../src/engine/run-layout.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseRegistryHost } from '../../src/oci/reference.js';
import { binPath, ROOT, runBin } from '../helpers/bin.js';
import { referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { slurmAvailable, startLab, type Lab } from '../helpers/slurm-lab.js';
import { intotoOnPath } from '../pipeline/helpers.js';
import { unfinishedJobs } from './lab-helpers.js';

/**
 * `intoto pipeline run --engine slurm` and `intoto pipeline step` on the lab cluster
 * (scripts/slurm-lab.sh: slurmctld, three slurmd each in its own namespaces, munge, the
 * registry), with the real command in every job: the example ML pipeline (threshold-2 training
 * on two nodes) run across nodes and verified by ours and by in-toto-verify 1.3.1 on the
 * fetched links; a job that cannot read another node's key; a blob replaced in the registry
 * between two steps stopping the next step before its command runs; a failing step and a
 * killed job ending the run with the step, node and reason, and nothing left running.
 *
 * Where things are: each functionary's private key only in its node's own directory
 * (`<lab>/nodes/NODE/keys/NAME`); the public keys, the owner's public key and the small test
 * layout in the lab's shared directory (read-only on every node, as a cluster's shared file
 * system); the owner's private key only here, in a temporary directory no node can see.
 */

const enabled = slurmAvailable();
const withReference = referenceAvailable();
const INTOTO = join(ROOT, 'build', 'test-bin', 'intoto');

const LAB_YAML = `expires_in: 30d
functionaries: {f1: keys/f1.pub, f2: keys/f2.pub}
inputs:
  src/hello.txt: src/hello.txt
outputs: [out.txt.gz]
steps:
  - name: a
    functionaries: [f1]
    run: [sh, -c, 'echo COMMAND RAN a >&2; test "{MODE}" != sleep-a || sleep 300; tr a-z A-Z < src/hello.txt > out.txt']
    materials: ["ALLOW src/*", "DISALLOW *"]
    products: ["CREATE out.txt", "MATCH src/* WITH MATERIALS FROM a", "DISALLOW *"]
  - name: b
    functionaries: [f2]
    run: [sh, -c, 'echo COMMAND RAN b >&2; test "{MODE}" != fail-b || (echo "b: the data is wrong" >&2; exit 3) || exit 3; gzip -n -c out.txt > out.txt.gz']
    materials: ["MATCH out.txt WITH PRODUCTS FROM a", "DISALLOW *"]
    products: ["CREATE out.txt.gz", "MATCH out.txt WITH MATERIALS FROM b", "DISALLOW *"]
`;

interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

describe.runIf(enabled)('intoto pipeline run --engine slurm, on the lab cluster', () => {
  let lab: Lab;
  let client: RegistryClient;
  const home = tempDir('intoto-slurm-owner-');
  let env: NodeJS.ProcessEnv;
  let store: string;
  let n = 0;
  const newId = (): string => `lab${++n}-${process.pid}`;
  const nodeOf: Record<string, string> = { validator: 'node1', 'trainer-a': 'node2', 'trainer-b': 'node3', platform: 'node2', evaluator: 'node1', f1: 'node1', f2: 'node2', f3: 'node3' };

  beforeAll(() => {
    lab = startLab();
    intotoOnPath(); // build/test-bin/intoto: the program the jobs run, visible on every node
    store = `oci://${lab.registry}/lab/pipeline`;
    client = new RegistryClient(parseRegistryHost(lab.registry), { insecure: true });
    env = { ...process.env, SLURM_CONF: lab.env['SLURM_CONF'], CI: process.env['CI'] ?? '' };
    const owner = generateSigningKey({ type: 'ed25519' });
    writeKeyPair(owner, join(home, 'owner'));
    mkdirSync(join(lab.shared, 'keys'), { recursive: true });
    writeFileSync(join(lab.shared, 'owner.pub'), readFileSync(join(home, 'owner.pub')));
    // Each functionary's private key on its own node only; its public key where every node reads it.
    for (const [name, node] of Object.entries(nodeOf)) {
      // The platform signs the model (OpenSSF Model Signing): an ECDSA key.
      const key = generateSigningKey({ type: name === 'platform' ? 'ecdsa' : 'ed25519' });
      writeKeyPair(key, join(lab.nodeDir(node), 'keys', name));
      writeFileSync(join(lab.shared, 'keys', `${name}.pub`), readFileSync(join(lab.nodeDir(node), 'keys', `${name}.pub`)));
    }
    mkdirSync(join(lab.shared, 'src'), { recursive: true });
    writeFileSync(join(lab.shared, 'src', 'hello.txt'), 'hello, cluster\n');
    writeFileSync(join(lab.shared, 'lab.yaml'), LAB_YAML);
  }, 240_000);
  afterAll(async () => {
    await client?.close();
    lab?.stop();
  });

  /** The engine's flags for the lab: keys by node, jobs' output in each node's jobs/ directory. */
  function slurmArgs(layout: string, runId: string, machines: readonly string[]): string[] {
    return [
      'pipeline', 'run', layout, '--engine', 'slurm', '--store', store, ...(lab.mode === 'namespaces' ? ['--insecure'] : []),
      '--run-id', runId, '--owner-key', join(home, 'owner'), '--layout-key', join(lab.shared, 'owner.pub'), '--pubkey-dir', join(lab.shared, 'keys'),
      ...machines.flatMap((f) => ['--node', `${f}=${nodeOf[f]!}`]),
      '--key-path', join(lab.nodeDir('{node}'), 'keys', '{functionary}'),
      '--intoto', INTOTO, '--job-output', join(lab.nodeDir('{node}'), 'jobs'), '--partition', lab.partition,
    ];
  }

  /** Runs the built intoto without blocking the test (a job may have to be killed meanwhile). */
  function intotoAsync(args: readonly string[]): Promise<RunResult> {
    return new Promise((resolve) => {
      execFile(process.execPath, [binPath('intoto'), ...args], { env, encoding: 'utf8', timeout: 300_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
        resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
      });
    });
  }

  /** `intoto pipeline step` run inside a node's namespaces, as a Slurm job would run it. */
  function stepOnNode(node: string, layout: string, step: string, functionary: string, runId: string, keyNode = node): RunResult {
    return lab.exec(node, [
      process.execPath, binPath('intoto'), 'pipeline', 'step', layout, step, '--as', functionary,
      '-k', join(lab.nodeDir(keyNode), 'keys', functionary), '--layout-key', join(lab.shared, 'owner.pub'), '--pubkey-dir', join(lab.shared, 'keys'),
      '--store', store, '--run-id', runId, ...(lab.mode === 'namespaces' ? ['--insecure'] : []), '-v',
    ]);
  }

  it('the example ML pipeline: five step runs on three nodes (training twice, threshold 2; the model signed by the platform\'s key on its node), verified there, again here, and by in-toto-verify', async () => {
    const runId = newId();
    const release = join(lab.nodeDir('node3'), `release-${runId}`);
    const started = performance.now();
    const result = runBin('intoto', [...slurmArgs(join(ROOT, 'layouts', 'ml-pipeline.yaml'), runId, ['validator', 'trainer-a', 'trainer-b', 'platform', 'evaluator']), '--verify-node', 'node3', '--out', release, '--json'], { env, timeout: 300_000 });
    const seconds = (performance.now() - started) / 1000;
    expect(result.stderr).not.toMatch(/error:/);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as { passed: boolean; jobs: { key: string; node: string; state: string }[] };
    expect(report.passed).toBe(true);
    expect(report.jobs.map((j) => [j.key, j.node, j.state])).toEqual([
      ['validate', 'node1', 'COMPLETED'],
      ['train.trainer-a', 'node2', 'COMPLETED'],
      ['train.trainer-b', 'node3', 'COMPLETED'],
      ['sign', 'node2', 'COMPLETED'],
      ['evaluate', 'node1', 'COMPLETED'],
      ['verify', 'node3', 'COMPLETED'],
    ]);
    console.log(`lab (${lab.mode}): the ML pipeline through Slurm in ${seconds.toFixed(1)} s`);
    // The verification job wrote the final products on its node, only after a pass.
    expect(readdirSync(release).sort()).toEqual(['metrics.json', 'model.pkl', 'model.pkl.sig']);

    // Verified again here, as anyone holding the owner's public key would.
    const out = join(home, `out-${runId}`);
    const meta = join(home, `meta-${runId}`);
    const again = runBin('intoto', ['pipeline', 'verify', join(ROOT, 'layouts', 'ml-pipeline.yaml'), '--store', store, '--run-id', runId, '-k', join(lab.shared, 'owner.pub'), '--pubkey-dir', join(lab.shared, 'keys'), ...(lab.mode === 'namespaces' ? ['--insecure'] : []), '-o', out, '--metadata', meta], { env: { ...env, ...intotoOnPath() } });
    expect(again.stderr).not.toMatch(/FAIL|error:/);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/^PASS: run .* \(4 step\(s\), 2 inspection\(s\) verified, 5 link\(s\)\); final products in .*: model\.pkl, model\.pkl\.sig, metrics\.json\n$/);
    expect(readFileSync(join(out, 'model.pkl'))).toEqual(readFileSync(join(release, 'model.pkl')));
    expect(readdirSync(meta).filter((f) => f.startsWith('train.'))).toHaveLength(2);
    if (withReference) {
      const reference = run('in-toto-verify', ['-l', join(meta, 'root.layout'), '-k', join(lab.shared, 'owner.pub'), '-t', 'ed25519', '--link-dir', meta], { cwd: out, env: intotoOnPath() });
      expect(reference.stderr).not.toMatch(/error|fail/i);
      expect(reference.status).toBe(0);
    }
    expect(unfinishedJobs(lab)).toEqual([]);
  }, 300_000);

  it('attack: a job cannot read another node\'s key: the step fails on its own node naming the missing file, and the run ends there', async () => {
    if (lab.mode !== 'namespaces') {
      expect(process.env['CI']).not.toBe('true');
      return;
    }
    const runId = newId();
    // f1 runs on node1, but the key path points into node2's directory, where the key is not.
    const thief = join(lab.nodeDir('node2'), 'keys', 'f2');
    const direct = lab.exec('node1', [process.execPath, binPath('intoto'), 'pipeline', 'step', join(lab.shared, 'lab.yaml'), 'b', '--as', 'f2', '-k', thief, '--layout-key', join(lab.shared, 'owner.pub'), '--pubkey-dir', join(lab.shared, 'keys'), '--store', store, '--run-id', runId, '--insecure']);
    expect(direct.status).toBe(1);
    expect(direct.stderr).toMatch(/nodes\/node2\/keys\/f2: no such file .*\[E_IO\]/);
    expect(lab.exec('node2', ['test', '-s', thief]).status).toBe(0); // the key is there, on node2 only

    const args = slurmArgs(join(lab.shared, 'lab.yaml'), runId, ['f1', 'f2']).map((a) => (a.includes('{node}') && a.endsWith('{functionary}') ? join(lab.nodeDir('node2'), 'keys', '{functionary}') : a));
    const result = await intotoAsync([...args, '--param', 'MODE=ok']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/error: step 'a' \(f1\): job \d+ on node1: exit status 1; last output: intoto pipeline step: error: .*nodes\/node2\/keys\/f1: no such file.* \[E_IO\] \[E_JOB_FAILED\]\n$/);
    expect(unfinishedJobs(lab)).toEqual([]);
  }, 120_000);

  it('attack: a blob replaced in the registry between two steps stops the next step on its node before its command runs', async () => {
    const runId = newId();
    const layout = join(lab.shared, 'lab.yaml');
    const published = runBin('intoto', ['pipeline', 'publish', layout, '--store', store, '--run-id', runId, '--owner-key', join(home, 'owner'), '--pubkey-dir', join(lab.shared, 'keys'), '--param', 'MODE=ok', ...(lab.mode === 'namespaces' ? ['--insecure'] : [])], { env });
    expect(published.status).toBe(0);
    const first = stepOnNode('node1', layout, 'a', 'f1', runId);
    expect(first.stderr).toContain('COMMAND RAN a');
    expect(first.status).toBe(0);
    // Between the two steps, someone with access to the registry's storage replaces a's product.
    const tag = stepRunTag(runId, 'a', (await import('../../src/crypto/keyfiles.js')).loadPublicKeyFile(join(lab.shared, 'keys', 'f1.pub')).keyid);
    const stored = readStepManifest((await client.getManifest('lab/pipeline', tag)).bytes, tag);
    const blob = lab.blobPath(stored.products.get('out.txt')!.digest);
    const original = readFileSync(blob);
    // Same length, other bytes: the registry serves them under the old digest without noticing.
    writeFileSync(blob, original.toString('utf8').replace('CLUSTER', 'PWNED!!'));
    try {
      const second = stepOnNode('node2', layout, 'b', 'f2', runId);
      expect(second.status).toBe(1);
      expect(second.stderr).toMatch(/step 'b': refused before its command ran: material out\.txt \(step 'a''s signed products, sha256:[0-9a-f]{64}\).*the registry served bytes whose digest is sha256:[0-9a-f]{64} \[E_DIGEST_MISMATCH\]/);
      expect(second.stderr).not.toContain('COMMAND RAN b');
    } finally {
      writeFileSync(blob, original);
    }
    // With the bytes back, the same step on the same node runs: the refusal was the blob's.
    const honest = stepOnNode('node2', layout, 'b', 'f2', runId);
    expect(honest.stderr).toContain('COMMAND RAN b');
    expect(honest.status).toBe(0);
  }, 120_000);

  it('a failing step ends the run naming the step, node and reason; the verification never runs; nothing is left running', async () => {
    const runId = newId();
    const result = await intotoAsync([...slurmArgs(join(lab.shared, 'lab.yaml'), runId, ['f1', 'f2']), '--param', 'MODE=fail-b']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/error: step 'b' \(f2\): job \d+ on node2: exit status 1; last output: intoto pipeline step: error: step 'b' \(functionary f2\) exited with 3: .*\[E_STEP_FAILED\] \[E_JOB_FAILED\]\n$/);
    expect(result.stderr).toMatch(/nothing was pushed \[E_STEP_FAILED\]/);
    expect(result.stdout).toMatch(/FAILED on Slurm/);
    expect(result.stdout).toMatch(/verify +- +\d+ +CANCELLED/);
    expect(unfinishedJobs(lab)).toEqual([]);
  }, 120_000);

  it('a killed job ends the run naming the step, node and signal; its sandboxed command is gone from the node; nothing is left running', async () => {
    const runId = newId();
    const running = intotoAsync([...slurmArgs(join(lab.shared, 'lab.yaml'), runId, ['f1', 'f2']), '--param', 'MODE=sleep-a']);
    // The job's intoto process on node1 (its batch script exec'd it), found by the run id.
    let pid = '';
    for (let i = 0; i < 300 && pid === ''; i++) {
      const found = lab.exec('node1', ['pgrep', '-o', '-f', `pipeline step .* --run-id ${runId}`]);
      pid = found.status === 0 ? found.stdout.trim() : '';
      if (pid === '' || lab.exec('node1', ['pgrep', '-f', 'sleep 300']).status !== 0) {
        pid = '';
        await sleep(100);
      }
    }
    expect(pid).not.toBe('');
    expect(lab.exec('node1', ['kill', '-KILL', pid]).status).toBe(0);
    const result = await running;
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/error: step 'a' \(f1\): job \d+ on node1: killed by SIGKILL.*\[E_JOB_FAILED\]\n$/);
    expect(unfinishedJobs(lab)).toEqual([]);
    if (lab.mode === 'namespaces') {
      let left = 0;
      for (let i = 0; i < 50 && (left = lab.exec('node1', ['pgrep', '-f', 'sleep 300']).status === 0 ? 1 : 0) === 1; i++) await sleep(100);
      expect(left).toBe(0);
    }
  }, 120_000);
});

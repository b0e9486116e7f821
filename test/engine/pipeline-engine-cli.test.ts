import { join } from 'node:path';
import { generateSigningKey, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { describe, expect, it } from 'vitest';
import { runBin, ROOT } from '../helpers/bin.js';
import { tempDir } from '../helpers/reference.js';
import { makeProject } from '../pipeline/helpers.js';

/**
 * The command lines of `intoto pipeline run --engine slurm`, `publish`, `step` and `verify`
 * refused before anything is published, submitted or fetched: each with one line and exit
 * status 2, or with --json one JSON document.
 */
describe('pipeline engine command lines', () => {
  const dir = tempDir('intoto-engine-cli-');
  makeProject(dir, ['owner', 'validator', 'trainer-a', 'trainer-b', 'evaluator']);
  writeKeyPair(generateSigningKey({ type: 'ecdsa' }), join(dir, 'keys', 'platform')); // the model signer's key is ECDSA
  const yaml = join(ROOT, 'layouts', 'ml-pipeline.yaml');
  const keys = join(dir, 'keys');
  const slurm = ['pipeline', 'run', yaml, '--engine', 'slurm', '--pubkey-dir', keys];
  const store = ['--store', 'oci://127.0.0.1:9/x'];

  it.each([
    ['an unknown engine', ['pipeline', 'run', yaml, '--engine', 'kubernetes', '--keys', keys], /--engine must be local or slurm/],
    ['--keys with slurm (keys never travel)', [...slurm, ...store, '--keys', keys, '--owner-key', join(keys, 'owner')], /--keys: only with the local engine/],
    ['--store with the local engine', ['pipeline', 'run', yaml, '--keys', keys, ...store], /--store: only with --engine slurm/],
    ['slurm without a store', [...slurm, '--owner-key', join(keys, 'owner')], /--engine slurm needs --store/],
    ['slurm without the owner key', [...slurm, ...store], /--engine slurm needs --owner-key/],
    ['a node for a functionary the layout lacks', [...slurm, ...store, '--owner-key', join(keys, 'owner'), '--node', 'mallory=node1'], /--node mallory=\.\.\.: the layout has no functionary 'mallory'/],
    ['a malformed --node', [...slurm, ...store, '--owner-key', join(keys, 'owner'), '--node', 'validator'], /--node must be FUNCTIONARY=NODE/],
    ['two runs of a threshold step on one node', [...slurm, ...store, '--owner-key', join(keys, 'owner'), '--node', 'validator=n1', '--node', 'trainer-a=n2', '--node', 'trainer-b=n2', '--node', 'platform=n3', '--node', 'evaluator=n1'], /'trainer-a' and 'trainer-b' would both run on n2/],
    ['a layout key that is not the owner key', [...slurm, ...store, '--owner-key', join(keys, 'owner'), '--layout-key', join(keys, 'validator.pub')], /does not hold the public key of --owner-key/],
    ['a bad run id', [...slurm, ...store, '--owner-key', join(keys, 'owner'), '--run-id', '../x'], /--run-id '\.\.\/x' must be/],
    ['a store that is not oci://', ['pipeline', 'verify', yaml, '--store', 'https://r/x', '--run-id', 'r', '-k', join(keys, 'owner.pub')], /--store must be oci:\/\/HOST\[:PORT\]\/REPOSITORY/],
    ['verify without the owner key', ['pipeline', 'verify', yaml, ...store, '--run-id', 'r'], /-k OWNER\.pub is required/],
    ['step without the owner key', ['pipeline', 'step', yaml, 'validate', '--as', 'validator', '-k', join(keys, 'validator'), ...store, '--run-id', 'r'], /--layout-key OWNER\.pub is required/],
    ['publish without the owner key', ['pipeline', 'publish', yaml, ...store], /--owner-key is required/],
  ])('%s: E_USAGE before anything else', (_, args, message) => {
    const result = runBin('intoto', args, { cwd: dir });
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/\[E_USAGE\]\n$/);
    expect(result.status).toBe(2);
  });

  it('with --json, a refused step is one JSON document', () => {
    const result = runBin('intoto', ['pipeline', 'step', yaml, 'nosuchstep', '--as', 'validator', '-k', join(keys, 'validator'), '--layout-key', join(keys, 'owner.pub'), '--pubkey-dir', keys, ...store, '--run-id', 'r', '--json'], { cwd: dir });
    expect(result.status).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ passed: false, failure: { code: 'E_USAGE' } });
  });

  it('an encrypted owner key without --prompt is refused before anything is published (E_KEY_PASSWORD)', () => {
    const owner = join(dir, 'owner-encrypted');
    writeKeyPair(generateSigningKey({ type: 'ed25519' }), owner, 'secret');
    const result = runBin('intoto', [...slurm, ...store, '--owner-key', owner], { cwd: dir });
    expect(result.stderr).toContain(`${owner}: the key of the layout owner is encrypted; give --prompt to be asked for its password [E_KEY_PASSWORD]`);
    expect(result.stderr).not.toMatch(/E_REGISTRY/);
  });

  it('a --layout the owner key did not sign is refused before anything is published (E_LAYOUT_SIG)', () => {
    const layout = join(dir, 'validator-signed.layout');
    expect(runBin('intoto', ['layout', 'sign', yaml, '--pubkey-dir', keys, '-k', join(keys, 'validator'), '-o', layout, '-q'], { cwd: dir }).status).toBe(0);
    const result = runBin('intoto', [...slurm, ...store, '--owner-key', join(keys, 'owner'), '--layout', layout, '--json'], { cwd: dir });
    expect(JSON.parse(result.stdout)).toMatchObject({ passed: false, failure: { code: 'E_LAYOUT_SIG', message: expect.stringContaining(`${layout}: not signed by the owner key `), context: { file: layout } } });
  });

  it('a store nobody answers on is a registry error, not a crash', () => {
    const result = runBin('intoto', ['pipeline', 'verify', yaml, ...store, '--run-id', 'r', '-k', join(keys, 'owner.pub'), '--pubkey-dir', keys, '--timeout', '2'], { cwd: dir });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^FAIL E_REGISTRY: /m);
  });
});

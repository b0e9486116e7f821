import { createHash, generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBin } from '../helpers/bin.js';
import { tempDir } from '../helpers/reference.js';
import { intotoOnPath } from '../pipeline/helpers.js';
import { sharedPath } from '../helpers/shared.js';

/**
 * The built `intoto` binary: `model sign` / `model verify` (exit statuses, --json, every
 * mismatch listed with both digests), `data check` on a DVC project, and `trace` naming the
 * step after which a tampered dataset changed, in a real pipeline run.
 */

const root = tempDir('intoto-e2e-oms-');
const env = intotoOnPath();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const intoto = (args: string[], cwd = root, input = ''): ReturnType<typeof runBin> => runBin('intoto', args, { cwd, env, input });

function model(name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'weights'), { recursive: true });
  writeFileSync(join(dir, 'MLmodel'), 'flavors: {}\n');
  writeFileSync(join(dir, 'weights', 'model.pkl'), 'pickle');
  return dir;
}

describe('intoto model sign / verify', () => {
  const keys = join(root, 'keys');
  mkdirSync(keys, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  writeFileSync(join(keys, 'openssl.pem'), privateKey.export({ type: 'sec1', format: 'pem' }));
  writeFileSync(join(keys, 'openssl.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));

  it('signs with a key from intoto keygen -t ecdsa and verifies: exit 0', () => {
    expect(intoto(['keygen', '-q', '-t', 'ecdsa', join(keys, 'platform')]).status).toBe(0);
    const dir = model('m1');
    const signed = intoto(['model', 'sign', dir, '-k', join(keys, 'platform')]);
    expect(signed.status, signed.stderr).toBe(0);
    expect(signed.stderr).toMatch(/signed 2 file\(s\)/);
    const verified = intoto(['model', 'verify', dir, '-k', join(keys, 'platform.pub')]);
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stderr).toMatch(/PASS/);
  });

  it('lists every changed, missing and extra file with both digests, exit 1; --json says the same', () => {
    const dir = model('m2');
    expect(intoto(['model', 'sign', dir, '-k', join(keys, 'openssl.pem')]).status).toBe(0);
    writeFileSync(join(dir, 'weights', 'model.pkl'), 'evil');
    rmSync(join(dir, 'MLmodel'));
    writeFileSync(join(dir, 'extra.py'), 'import os');
    const failed = intoto(['model', 'verify', dir, '-k', join(keys, 'openssl.pub.pem')]);
    expect(failed.status).toBe(1);
    expect(failed.stdout).toMatch(/^FAIL E_MODEL_MISMATCH: /);
    const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
    expect(failed.stdout).toContain(`weights/model.pkl: changed: sha256 ${sha('evil')} on disk, ${sha('pickle')} signed`);
    expect(failed.stdout).toContain(`MLmodel: missing (signed sha256 ${sha('flavors: {}\n')})`);
    expect(failed.stdout).toContain(`extra.py: not in the signature (sha256 ${sha('import os')})`);
    const json = intoto(['model', 'verify', dir, '-k', join(keys, 'openssl.pub.pem'), '--json']);
    expect(json.status).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.error.code).toBe('E_MODEL_MISMATCH');
    expect(report.mismatches.map((m: { kind: string }) => m.kind).sort()).toEqual(['changed', 'extra', 'missing']);
  });

  it('bad usage exits 2; a missing or wrong key exits 1', () => {
    const dir = model('m3');
    expect(intoto(['model', 'sign', dir, '-k', join(keys, 'openssl.pem')]).status).toBe(0);
    expect(intoto(['model', 'verify', dir]).status).toBe(2);
    expect(intoto(['model', 'verify', dir, '-k', join(keys, 'openssl.pub.pem'), '--identity', 'x', '--issuer', 'y']).status).toBe(2);
    const wrong = intoto(['model', 'verify', dir, '-k', join(keys, 'platform.pub'), '--json']);
    expect(wrong.status).toBe(1);
    expect(JSON.parse(wrong.stdout).error.code).toBe('E_MODEL_SIGNATURE');
    expect(intoto(['model', 'verify', dir, '-k', join(keys, 'absent.pub')]).status).toBe(1);
  });

  it('--public-key-pem: the key as PEM text (how a layout\'s model-verify inspection passes it); anything else is refused', () => {
    const dir = model('m4');
    expect(intoto(['model', 'sign', dir, '-k', join(keys, 'openssl.pem')]).status).toBe(0);
    const pem = readFileSync(join(keys, 'openssl.pub.pem'), 'utf8');
    const ok = intoto(['model', 'verify', dir, '--public-key-pem', pem]);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/PASS: .*2 file\(s\) match the signature/);
    // Another key's PEM: the signature is not by it.
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const wrong = intoto(['model', 'verify', dir, '--public-key-pem', other, '--json']);
    expect(wrong.status).toBe(1);
    expect(JSON.parse(wrong.stdout).error.code).toBe('E_MODEL_SIGNATURE');
    // Not usable keys: each a failed verification with its code, never a prompt or a crash.
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const priv = readFileSync(join(keys, 'openssl.pem'), 'utf8');
    for (const [text, code] of [[ed, 'E_KEY_UNSUPPORTED'], [priv, 'E_KEY_PUBLIC_EXPECTED'], ['not a key', 'E_KEY_FORMAT'], [`${pem.replace('-----BEGIN PUBLIC KEY-----', '-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED')}`, 'E_KEY_FORMAT']] as const) {
      const refused = intoto(['model', 'verify', dir, '--public-key-pem', text, '--json']);
      expect(refused.status, text).toBe(1);
      expect(JSON.parse(refused.stdout).error.code).toBe(code);
    }
    // Exactly one kind of trust.
    expect(intoto(['model', 'verify', dir, '--public-key-pem', pem, '-k', join(keys, 'openssl.pub.pem')]).status).toBe(2);
  });

  const OMS = sharedPath('vectors/oms');
  it.skipIf(OMS === undefined)('verifies model_signing 1.1 vectors from the command line: key, certificate chain, keyless identity', () => {
    const tests = join(OMS ?? '', 'model-transparency', 'scripts', 'tests');
    const certs = join(tests, 'keys', 'certificate');
    expect(intoto(['model', 'verify', join(tests, 'v1.1.0-elliptic-key'), '-k', join(certs, 'signing-key-pub.pem')]).status).toBe(0);
    expect(intoto(['model', 'verify', join(tests, 'v1.1.0-certificate'), '--certificate-chain', join(certs, 'ca-cert.pem')]).status).toBe(0);
    const keyless = intoto(['model', 'verify', join(tests, 'v1.1.0-sigstore'), '--identity', 'stefanb@us.ibm.com', '--issuer', 'https://sigstore.verify.ibm.com/oauth2']);
    expect(keyless.status, keyless.stdout + keyless.stderr).toBe(0);
    const wrongIssuer = intoto(['model', 'verify', join(tests, 'v1.1.0-sigstore'), '--identity', 'stefanb@us.ibm.com', '--issuer', 'https://accounts.google.com']);
    expect(wrongIssuer.status).toBe(1);
    expect(wrongIssuer.stdout).toMatch(/E_MODEL_SIGNATURE/);
  });
});

describe('intoto data check', () => {
  it('passes on a DVC-tracked file and exits 1 naming it when it changed', () => {
    const dir = join(root, 'dvc');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'flowers.csv'), 'a,b\n1,2\n');
    const md5 = createHash('md5').update('a,b\n1,2\n').digest('hex');
    writeFileSync(join(dir, 'flowers.csv.dvc'), `outs:\n- md5: ${md5}\n  size: 8\n  hash: md5\n  path: flowers.csv\n`);
    expect(intoto(['data', 'check', join(dir, 'flowers.csv.dvc')]).status).toBe(0);
    writeFileSync(join(dir, 'flowers.csv'), 'a,b\n1,3\n');
    const failed = intoto(['data', 'check', join(dir, 'flowers.csv.dvc')]);
    expect(failed.status).toBe(1);
    expect(failed.stdout).toContain(`flowers.csv: md5 differs: md5 ${createHash('md5').update('a,b\n1,3\n').digest('hex')} now, ${md5} recorded`);
    expect(failed.stderr).toMatch(/E_DATA_MISMATCH/);
    expect(intoto(['data', 'check']).status).toBe(2);
  });
});

describe('intoto trace: which step a tampered dataset changed after', () => {
  const project = join(root, 'trace');
  mkdirSync(join(project, 'keys'), { recursive: true });
  mkdirSync(join(project, 'data'), { recursive: true });
  for (const name of ['owner', 'alice', 'bob']) expect(intoto(['keygen', '-q', join(project, 'keys', name)]).status).toBe(0);
  writeFileSync(join(project, 'data', 'flowers.csv'), 'x,label\n1,setosa\n2,virginica\n');
  writeFileSync(
    join(project, 'pipeline.yaml'),
    [
      'expires_in: 30d',
      'functionaries: {alice: keys/alice.pub, bob: keys/bob.pub}',
      'inputs: {data: data}',
      'outputs: [model.txt]',
      'steps:',
      '  - name: validate',
      '    functionaries: [alice]',
      '    run: [wc, -l, data/flowers.csv]',
      '    materials: ["ALLOW data/*", "DISALLOW *"]',
      '    products: ["MATCH data/* WITH MATERIALS FROM validate", "DISALLOW *"]',
      '  - name: train',
      '    functionaries: [bob]',
      '    run: [cp, data/flowers.csv, model.txt]',
      '    materials: ["MATCH data/* WITH PRODUCTS FROM validate", "DISALLOW *"]',
      '    products: ["CREATE model.txt", "MATCH data/* WITH MATERIALS FROM train", "DISALLOW *"]',
      '',
    ].join('\n'),
  );
  const run = intoto(['pipeline', 'run', 'pipeline.yaml', '--keys', 'keys', '--out', 'out', '--workspace', 'work'], project);

  it('the honest run passes and the trace shows no change', () => {
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const trace = intoto(['trace', 'data/flowers.csv', '--layout', join(project, 'out', 'root.layout'), '-k', join(project, 'keys', 'owner.pub'), '--link-dir', join(project, 'out')], project);
    expect(trace.status, trace.stdout + trace.stderr).toBe(0);
    expect(trace.stdout).toMatch(/1\. step validate \(signed by/);
    expect(trace.stdout).toMatch(/2\. step train \(signed by/);
    expect(trace.stdout).toMatch(/no unexpected change/);
  });

  it('train re-run on a relabelled dataset: the trace says it changed after validate, before train', () => {
    const attack = join(project, 'attack');
    cpSync(join(project, 'out'), attack, { recursive: true });
    for (const f of readdirSync(attack)) if (f.startsWith('train.')) rmSync(join(attack, f));
    const work = join(project, 'attack-work');
    mkdirSync(join(work, 'data'), { recursive: true });
    writeFileSync(join(work, 'data', 'flowers.csv'), readFileSync(join(project, 'data', 'flowers.csv'), 'utf8').replace('2,virginica', '2,setosa'));
    const rerun = intoto(['run', '-q', '-n', 'train', '-k', join(project, 'keys', 'bob'), '-m', 'data', '-p', 'data', 'model.txt', '-d', attack, '--sandbox', 'none', '--', 'cp', 'data/flowers.csv', 'model.txt'], work);
    expect(rerun.status, rerun.stderr).toBe(0);
    const trace = intoto(['trace', 'data/flowers.csv', '--layout', join(attack, 'root.layout'), '-k', join(project, 'keys', 'owner.pub'), '--link-dir', attack, '--json'], work);
    expect(trace.status).toBe(1);
    const report = JSON.parse(trace.stdout);
    expect(report.firstChange).toMatchObject({ kind: 'between-steps', after: "step 'validate' products", before: "step 'train' materials" });
    const human = intoto(['trace', 'data/flowers.csv', '--layout', join(attack, 'root.layout'), '-k', join(project, 'keys', 'owner.pub'), '--link-dir', attack], work);
    expect(human.stdout).toMatch(/first change: after step 'validate' products, before step 'train' materials/);
    expect(human.stderr).toMatch(/E_TRACE_CHANGED/);
  });

  it('the file on disk changed after the last step that recorded it', () => {
    const here = join(project, 'later');
    mkdirSync(join(here, 'data'), { recursive: true });
    writeFileSync(join(here, 'data', 'flowers.csv'), 'tampered later\n');
    const trace = intoto(['trace', 'data/flowers.csv', '--link-dir', join(project, 'out')], here);
    expect(trace.status).toBe(1);
    expect(trace.stdout).toMatch(/signatures NOT checked/);
    expect(trace.stdout).toMatch(/first change: after step 'train' products, on disk/);
  });

  it('an artifact no link records: E_TRACE_NOT_FOUND, exit 1', () => {
    const trace = intoto(['trace', 'nothing.csv', '--link-dir', join(project, 'out')], project);
    expect(trace.status).toBe(1);
    expect(trace.stderr).toMatch(/E_TRACE_NOT_FOUND/);
  });
});

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pae } from '../../src/model/envelope.js';
import { bundleText } from '../../src/oms/bundle.js';
import { keyHint } from '../../src/oms/keys.js';
import { signModel } from '../../src/oms/sign.js';
import { verifyModel } from '../../src/oms/verify.js';
import { sharedPath } from '../helpers/shared.js';
import { ecKey, sampleModelFolder, tempDir, writeModel } from './helpers.js';

/**
 * verifyModel with `digests`: the files and their SHA-256 as the caller already computed them
 * (the pull gate hashes each blob while it downloads it, and must not read 1 GiB again). The
 * directory is then not listed, nothing is read under the `files` serialization, and the given
 * set must be exactly the signed one (no ignore path excuses a file the caller hands over).
 */

const sha256 = (bytes: string | Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** A signed model, its public key, and the digests of its files as a caller would hand them over. */
async function signed(options: { ignorePaths?: string[] } = {}) {
  const root = tempDir();
  const model = writeModel(join(root, 'model'), { 'weights.bin': 'w'.repeat(1000), 'config.json': '{}', 'tok/vocab.txt': 'a\nb\n', 'notes/draft.md': 'not signed' });
  const { signer, publicKey } = ecKey('secp384r1');
  const signature = join(root, 'model.sig');
  await signModel({ dir: model, key: signer, output: signature, ignorePaths: options.ignorePaths ?? ['notes'] });
  const digests = new Map([
    ['weights.bin', `sha256:${sha256('w'.repeat(1000))}`],
    ['config.json', `sha256:${sha256('{}')}`],
    ['tok/vocab.txt', sha256('a\nb\n')],
  ]);
  return { root, model, signature, trust: { method: 'key' as const, key: publicKey }, digests };
}

describe('verifyModel with digests already computed', () => {
  it('verifies from the digests alone: the directory is not read (here it is empty)', async () => {
    const { root, signature, trust, digests } = await signed();
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const result = await verifyModel({ dir: empty, signature, trust, digests });
    expect(result.error?.message).toBeUndefined();
    expect(result.verified).toBe(true);
    expect(result.filesChecked).toBe(3);
  });

  it('the same model and signature verify the same way by reading the directory (the two paths agree)', async () => {
    const { model, signature, trust, digests } = await signed();
    const read = await verifyModel({ dir: model, signature, trust });
    const known = await verifyModel({ dir: model, signature, trust, digests });
    expect([read.verified, known.verified]).toEqual([true, true]);
    expect(known.manifest).toEqual(read.manifest);
  });

  it('a digest that differs from the signed one is a changed file, with both digests', async () => {
    const { model, signature, trust, digests } = await signed();
    digests.set('config.json', sha256('{"x": 1}'));
    const result = await verifyModel({ dir: model, signature, trust, digests });
    expect(result.verified).toBe(false);
    expect(result.error?.code).toBe('E_MODEL_MISMATCH');
    expect(result.mismatches).toEqual([{ kind: 'changed', name: 'config.json', expected: sha256('{}'), actual: sha256('{"x": 1}') }]);
  });

  it('a file the signature does not list is extra, even one its ignore paths would excuse in a directory', async () => {
    const { model, signature, trust, digests } = await signed();
    // In the directory, notes/draft.md is left out by the signature's ignore_paths: it passes.
    expect((await verifyModel({ dir: model, signature, trust })).verified).toBe(true);
    // Handed over as one of the model's files, it must be signed.
    digests.set('notes/draft.md', sha256('not signed'));
    const result = await verifyModel({ dir: model, signature, trust, digests });
    expect(result.error?.code).toBe('E_MODEL_MISMATCH');
    expect(result.mismatches).toEqual([{ kind: 'extra', name: 'notes/draft.md', actual: sha256('not signed') }]);
  });

  it('a signed file that is not among the digests is missing; a renamed one is named as such', async () => {
    const { model, signature, trust, digests } = await signed();
    const vocab = digests.get('tok/vocab.txt')!;
    digests.delete('tok/vocab.txt');
    digests.set('vocab.txt', vocab);
    const result = await verifyModel({ dir: model, signature, trust, digests });
    expect(result.mismatches).toEqual([
      { kind: 'missing', name: 'tok/vocab.txt', expected: vocab },
      { kind: 'extra', name: 'vocab.txt', actual: vocab, renamedFrom: 'tok/vocab.txt' },
    ]);
  });

  it('the signature is still checked first: another key fails before any comparison', async () => {
    const { model, signature, digests } = await signed();
    const other = ecKey('prime256v1');
    const result = await verifyModel({ dir: model, signature, trust: { method: 'key', key: other.publicKey }, digests });
    expect(result.error?.code).toBe('E_MODEL_SIGNATURE');
    expect(result.mismatches).toEqual([]);
  });

  it('a digest that is not SHA-256 hex is refused, not compared', async () => {
    const { model, signature, trust, digests } = await signed();
    digests.set('config.json', 'md5:99914b932bd37a50b983c5e7c90ae93b');
    const result = await verifyModel({ dir: model, signature, trust, digests });
    expect(result.error?.code).toBe('E_USAGE');
  });

  it('the default sample folder: ten digests verify, one flipped byte in a digest does not', async () => {
    const model = sampleModelFolder(join(tempDir(), 'sample_model'));
    const { signer, publicKey } = ecKey('prime256v1');
    const out = await signModel({ dir: model, key: signer, output: join(model, '..', 'sample.sig') });
    const digests = new Map(out.resources.map((r) => [r.name, r.digest]));
    const trust = { method: 'key' as const, key: publicKey };
    expect((await verifyModel({ dir: model, signature: out.output, trust, digests })).verified).toBe(true);
    const first = out.resources[0]!;
    digests.set(first.name, `${first.digest.slice(0, 63)}${first.digest.endsWith('0') ? '1' : '0'}`);
    expect((await verifyModel({ dir: model, signature: out.output, trust, digests })).mismatches.map((m) => m.kind)).toEqual(['changed']);
  });
});

const OMS = sharedPath('vectors/oms');
describe.skipIf(OMS === undefined)('verifyModel with digests and a shard signature', () => {
  it('hashes the named files under the directory (a shard digest is not a file digest)', async () => {
    const dir = tempDir();
    const model = sampleModelFolder(join(dir, 'sample_model'));
    const payload = Buffer.from(readFileSync(join(OMS ?? '', 'model-transparency/tests/_signing/testdata/signing/TestPayload/sample_model_folder_small_shards'), 'utf8'));
    const { signer, publicKey } = ecKey('secp384r1');
    writeFileSync(join(dir, 'model.sig'), bundleText({ method: 'key', hint: keyHint(publicKey) }, payload, signer.sign(pae('application/vnd.in-toto+json', payload))));
    const names = ['d0/f00', 'd0/f01', 'd0/f02', 'd1/f10', 'd1/f11', 'd1/f12', 'f0', 'f1', 'f2', 'f3'];
    const digests = new Map(names.map((n) => [n, sha256(readFileSync(join(model, n)))]));
    const trust = { method: 'key' as const, key: publicKey };
    const ok = await verifyModel({ dir: model, signature: join(dir, 'model.sig'), trust, digests });
    expect(ok.error?.message).toBeUndefined();
    expect(ok.manifest?.serialization.method).toBe('shards');
    // Only the named files count: leaving one out makes its shards missing.
    digests.delete('f3');
    const missing = await verifyModel({ dir: model, signature: join(dir, 'model.sig'), trust, digests });
    expect(missing.mismatches.length).toBeGreaterThan(0);
    expect(missing.mismatches.every((m) => m.kind === 'missing' && m.name.startsWith('f3:'))).toBe(true);
  });
});

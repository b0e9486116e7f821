import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pae } from '../../src/model/envelope.js';
import { bundleText } from '../../src/oms/bundle.js';
import { keyHint } from '../../src/oms/keys.js';
import { verifyModel } from '../../src/oms/verify.js';
import { sharedPath } from '../helpers/shared.js';
import { ecKey, sampleModelFolder, tempDir } from './helpers.js';

/**
 * Shard serialization (verify only): model_signing's golden payloads for its conftest models
 * with shard_size 8, signed here with a test key, verify against the same models; so do the
 * same payloads with the spec's spelling of the algorithm (`sha256` instead of
 * `sha256-sharded-8`). A changed byte is reported as the one shard that covers it.
 */

const OMS = sharedPath('vectors/oms');
const d = describe.skipIf(OMS === undefined);

function golden(name: string): string {
  return readFileSync(join(OMS ?? '', 'model-transparency/tests/_signing/testdata/signing/TestPayload', name), 'utf8');
}

function signed(payloadText: string, sigPath: string): ReturnType<typeof ecKey>['publicKey'] {
  const { signer, publicKey } = ecKey('secp384r1');
  const payload = Buffer.from(payloadText);
  writeFileSync(sigPath, bundleText({ method: 'key', hint: keyHint(publicKey) }, payload, signer.sign(pae('application/vnd.in-toto+json', payload))));
  return publicKey;
}

d('shard bundles (both spellings)', () => {
  it.each([
    ['model_signing spelling (sha256-sharded-8, shard_size 8.0)', (t: string): string => t],
    ['spec spelling (sha256, shard_size 8)', (t: string): string => t.replaceAll('"sha256-sharded-8"', '"sha256"').replace('8.0', '8')],
  ])('a single-file model, %s', async (_name, spell) => {
    const dir = tempDir();
    const file = join(dir, 'file_model');
    writeFileSync(file, 'This is a simple model');
    const key = signed(spell(golden('sample_model_file_small_shards')), join(dir, 'model.sig'));
    const ok = await verifyModel({ dir: file, signature: join(dir, 'model.sig'), trust: { method: 'key', key } });
    expect(ok.error?.message).toBeUndefined();
    expect(ok.manifest?.serialization).toMatchObject({ method: 'shards', shardSize: 8 });
    writeFileSync(file, 'This is a simple mode!');
    const bad = await verifyModel({ dir: file, signature: join(dir, 'model.sig'), trust: { method: 'key', key } });
    expect(bad.mismatches).toEqual([expect.objectContaining({ kind: 'changed', name: '.:16:22' })]);
  });

  it('a folder model with 30 shards', async () => {
    const dir = tempDir();
    const model = sampleModelFolder(join(dir, 'sample_model'));
    const key = signed(golden('sample_model_folder_small_shards'), join(dir, 'model.sig'));
    const ok = await verifyModel({ dir: model, signature: join(dir, 'model.sig'), trust: { method: 'key', key } });
    expect(ok.error?.message).toBeUndefined();
    expect(ok.manifest?.resources).toHaveLength(30);
  });
});

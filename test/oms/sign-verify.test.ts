import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync, mkdirSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKey, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { pae } from '../../src/model/envelope.js';
import { bundleText } from '../../src/oms/bundle.js';
import { loadModelPublicKey, loadModelSigner, ModelSigner, keyHint, withCertificateFiles, readPemCertificates } from '../../src/oms/keys.js';
import { signModel } from '../../src/oms/sign.js';
import { rootDigest } from '../../src/oms/statement.js';
import { verifyModel, verifyModelOrThrow } from '../../src/oms/verify.js';
import { codeOf, codeOfAsync } from '../helpers/errors.js';
import { sharedPath } from '../helpers/shared.js';
import { ecKey, makeCa, sampleModelFolder, tempDir, writeModel } from './helpers.js';

describe('signModel and verifyModel round trip', () => {
  it.each(['prime256v1', 'secp384r1', 'secp521r1'] as const)('signs and verifies with an ECDSA %s key', async (curve) => {
    const model = sampleModelFolder(join(tempDir(), 'sample_model'));
    const { signer, publicKey } = ecKey(curve);
    const signed = await signModel({ dir: model, key: signer });
    expect(signed.output).toBe(join(model, 'model.sig'));
    const bundle = JSON.parse(readFileSync(signed.output, 'utf8'));
    expect(Object.keys(bundle)).toEqual(['mediaType', 'verificationMaterial', 'dsseEnvelope']);
    expect(bundle.verificationMaterial.publicKey.hint).toBe(keyHint(publicKey));
    const result = await verifyModelOrThrow({ dir: model, trust: { method: 'key', key: publicKey } });
    expect(result.filesChecked).toBe(10);
    expect(result.manifest?.rootDigest).toBe('143cc682e555951649f18e2761c3d526d2502996f5e32dc187ef7f8a614f8df7');
  });

  it('a signer never shows its private key: JSON, inspect and string forms carry only the hint', async () => {
    const { inspect } = await import('node:util');
    const { signer, privateKey } = ecKey('secp384r1');
    const secret = privateKey.export({ format: 'jwk' }).d!;
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    for (const shown of [JSON.stringify(signer), inspect(signer, { showHidden: true, depth: 5 }), String(signer), JSON.stringify({ ...signer })]) {
      expect(shown).not.toContain(secret);
      expect(shown).not.toContain(pem.split('\n')[1]);
      expect(shown).not.toMatch(/PRIVATE KEY/);
    }
  });

  it('signing twice gives identical payload bytes (and a fixed key order)', async () => {
    const model = sampleModelFolder(join(tempDir(), 'm'));
    const { signer } = ecKey();
    const a = await signModel({ dir: model, key: signer, write: false });
    const b = await signModel({ dir: model, key: signer, write: false });
    expect(a.payload.equals(b.payload)).toBe(true);
    expect(Object.keys(JSON.parse(a.payload.toString()))).toEqual(['_type', 'subject', 'predicateType', 'predicate']);
    expect(Object.keys(JSON.parse(a.payload.toString()).predicate.serialization)).toEqual(['method', 'hash_type', 'allow_symlinks', 'ignore_paths']);
  });

  it('refuses an empty model, and one empty after the ignore paths', async () => {
    const { signer } = ecKey();
    const empty = tempDir();
    expect(await codeOfAsync(signModel({ dir: empty, key: signer }))).toBe('E_MODEL_EMPTY');
    const onlyGit = writeModel(tempDir(), { '.git/HEAD': 'ref', '.gitignore': '*.tmp', 'model.sig': 'old' });
    expect(await codeOfAsync(signModel({ dir: onlyGit, key: signer }))).toBe('E_MODEL_EMPTY');
  });

  it('leaves out .git and friends at the top only, the signature, and --ignore-paths', async () => {
    const model = writeModel(tempDir(), {
      'w.bin': 'w',
      '.git/config': 'x',
      '.github/workflows/a.yml': 'x',
      '.gitattributes': 'x',
      'sub/.git/keep': 'kept: not at the top',
      'cache/a': 'c',
      'cachet': 'kept: only the exact path is ignored',
    });
    const { signer } = ecKey();
    const signed = await signModel({ dir: model, key: signer, ignorePaths: ['cache', './cache/'] });
    expect(signed.resources.map((r) => r.name)).toEqual(['cachet', 'sub/.git/keep', 'w.bin']);
    expect(signed.serialization.ignorePaths).toEqual(['.git', '.gitattributes', '.github', '.gitignore', 'cache', 'model.sig']);
    const noGit = await signModel({ dir: model, key: signer, ignoreGitPaths: false, write: false, ignorePaths: ['cache'] });
    expect(noGit.resources.map((r) => r.name)).toContain('.git/config');
  });

  it('signs keys from intoto keygen -t ecdsa, from openssl (SEC1, PKCS#8, encrypted) and refuses ed25519 and RSA', async () => {
    const model = writeModel(tempDir(), { 'a.bin': 'a' });
    const keys = tempDir();
    writeKeyPair(generateSigningKey({ type: 'ecdsa' }), join(keys, 'ours'));
    const ours = loadModelSigner(join(keys, 'ours'));
    await signModel({ dir: model, key: ours });
    await verifyModelOrThrow({ dir: model, trust: { method: 'key', key: loadModelPublicKey(join(keys, 'ours.pub')) } });

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
    writeFileSync(join(keys, 'sec1.pem'), privateKey.export({ type: 'sec1', format: 'pem' }));
    writeFileSync(join(keys, 'pkcs8-enc.pem'), privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }));
    writeFileSync(join(keys, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(keys, 'pub.der'), publicKey.export({ type: 'spki', format: 'der' }));
    for (const signer of [loadModelSigner(join(keys, 'sec1.pem')), loadModelSigner(join(keys, 'pkcs8-enc.pem'), 'pw')]) {
      await signModel({ dir: model, key: signer });
      await verifyModelOrThrow({ dir: model, trust: { method: 'key', key: loadModelPublicKey(join(keys, 'pub.der')) } });
    }
    expect(codeOf(() => loadModelSigner(join(keys, 'pkcs8-enc.pem')))).toBe('E_KEY_PASSWORD');
    expect(codeOf(() => loadModelSigner(join(keys, 'pkcs8-enc.pem'), 'wrong'))).toBe('E_KEY_PASSWORD');
    expect(codeOf(() => loadModelSigner(join(keys, 'pub.pem')))).toBe('E_KEY_PRIVATE_EXPECTED');
    writeKeyPair(generateSigningKey({ type: 'ed25519' }), join(keys, 'ed'));
    expect(codeOf(() => loadModelSigner(join(keys, 'ed')))).toBe('E_KEY_UNSUPPORTED');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(codeOf(() => ModelSigner.fromKeyObject(rsa.privateKey))).toBe('E_KEY_UNSUPPORTED');
    const k = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    expect(codeOf(() => ModelSigner.fromKeyObject(k.privateKey))).toBe('E_KEY_UNSUPPORTED');
  });

  it.each(['prime256v1', 'secp384r1', 'secp521r1'])('keys made by the openssl command line on %s (SEC1 with EC PARAMETERS, encrypted PKCS#8)', async (curve) => {
    const { spawnSync } = await import('node:child_process');
    const keys = tempDir();
    const ok = (args: string[]): void => {
      const r = spawnSync('openssl', args, { cwd: keys, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
    };
    ok(['ecparam', '-name', curve, '-genkey', '-out', 'sec1.pem']);
    ok(['ec', '-in', 'sec1.pem', '-pubout', '-out', 'pub.pem']);
    ok(['pkcs8', '-topk8', '-in', 'sec1.pem', '-v2', 'aes-256-cbc', '-passout', 'pass:secret', '-out', 'enc.pem']);
    const model = writeModel(tempDir(), { 'w.bin': 'w' });
    for (const signer of [loadModelSigner(join(keys, 'sec1.pem')), loadModelSigner(join(keys, 'enc.pem'), 'secret')]) {
      await signModel({ dir: model, key: signer });
      await verifyModelOrThrow({ dir: model, trust: { method: 'key', key: loadModelPublicKey(join(keys, 'pub.pem')) } });
    }
  });

  it('a single-file model is named by its base name (the spec), and model_signing\'s "." is accepted too', async () => {
    const dir = tempDir();
    const file = join(dir, 'model.pkl');
    writeFileSync(file, 'pickle bytes');
    const { signer, publicKey } = ecKey();
    const signed = await signModel({ dir: file, key: signer });
    expect(signed.output).toBe(`${file}.sig`);
    expect(signed.resources).toEqual([{ name: 'model.pkl', algorithm: 'sha256', digest: createHash('sha256').update('pickle bytes').digest('hex') }]);
    await verifyModelOrThrow({ dir: file, trust: { method: 'key', key: publicKey } });
    writeFileSync(file, 'other bytes');
    expect((await verifyModel({ dir: file, trust: { method: 'key', key: publicKey } })).mismatches[0]?.kind).toBe('changed');
  });
});

describe('Statement equality with model_signing (MANIFEST.md equality notes)', () => {
  const OMS = sharedPath('vectors/oms');
  const golden = (name: string): ReturnType<typeof JSON.parse> =>
    JSON.parse(readFileSync(join(OMS ?? '', 'model-transparency/tests/_signing/testdata/signing/TestPayload', name), 'utf8'));
  const d = describe.skipIf(OMS === undefined);

  d('the conftest fixtures', () => {
    it.each([
      ['sample_model_folder', sampleModelFolder],
      [
        'deep_model_folder',
        (root: string): string => {
          const files: Record<string, string> = {};
          for (let i = 0; i < 4; i++) files[`d0/d1/d2/d3/d4/f${i}`] = `This is file f${i}.`;
          return writeModel(root, files);
        },
      ],
    ] as const)('%s: same resources in the same order, same root, same serialization', async (name, make) => {
      const model = make(join(tempDir(), name === 'sample_model_folder' ? 'sample_model' : 'deep_model'));
      const signed = await signModel({ dir: model, key: ecKey().signer, allowSymlinks: true, write: false });
      const ours = JSON.parse(signed.payload.toString());
      const theirs = golden(name);
      expect(ours._type).toBe(theirs._type);
      expect(ours.predicateType).toBe(theirs.predicateType);
      expect(ours.subject[0].digest).toEqual(theirs.subject[0].digest);
      expect(ours.predicate.resources).toEqual(theirs.predicate.resources.map((r: Record<string, string>) => ({ name: r['name'], algorithm: r['algorithm'], digest: r['digest'] })));
      const { ignore_paths: _ignored, ...serialization } = ours.predicate.serialization;
      expect(serialization).toEqual(theirs.predicate.serialization);
    });

    it('sample_model_file: same digest and root; we name the file by its base name where model_signing writes "."', async () => {
      const file = join(tempDir(), 'file_model');
      writeFileSync(file, 'This is a simple model');
      const signed = await signModel({ dir: file, key: ecKey().signer, allowSymlinks: true, write: false });
      const theirs = golden('sample_model_file');
      expect(signed.rootDigest).toBe(theirs.subject[0].digest.sha256);
      expect(signed.resources).toEqual([{ ...theirs.predicate.resources[0], name: 'file_model' }]);
    });
  });

  d('model_signing 1.1 output for the same directory', () => {
    it('v1.1.0-elliptic-key: same resources, root, and ignore_paths as a set', async () => {
      const model = join(tempDir(), 'v1.1.0-elliptic-key');
      cpSync(join(OMS ?? '', 'model-transparency/scripts/tests/v1.1.0-elliptic-key'), model, { recursive: true });
      const signed = await signModel({ dir: model, key: ecKey('secp384r1').signer, ignorePaths: ['ignore-me'], write: false });
      const bundle = JSON.parse(readFileSync(join(model, 'model.sig'), 'utf8'));
      const theirs = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
      const ours = JSON.parse(signed.payload.toString());
      expect(ours.subject).toEqual(theirs.subject);
      expect(ours.predicate.resources).toEqual(theirs.predicate.resources.map((r: Record<string, string>) => ({ name: r['name'], algorithm: r['algorithm'], digest: r['digest'] })));
      expect(new Set(ours.predicate.serialization.ignore_paths)).toEqual(new Set(theirs.predicate.serialization.ignore_paths));
      expect(ours.predicate.serialization.allow_symlinks).toBe(theirs.predicate.serialization.allow_symlinks);
    });
  });

  d('ordering-vector.json: spec order written, both orders verified', () => {
    const vector = (): { files_hex: Record<string, string>; spec_order: string[]; model_signing_order: string[]; spec_root_digest: string; model_signing_root_digest: string; sha256: Record<string, string> } =>
      JSON.parse(readFileSync(join(OMS ?? '', 'ordering-vector.json'), 'utf8'));

    it('we write the spec order (code points of the whole name) and its root digest', async () => {
      const v = vector();
      const model = writeModel(tempDir(), Object.fromEntries(Object.entries(v.files_hex).map(([k, hex]) => [k, Buffer.from(hex, 'hex')])));
      const signed = await signModel({ dir: model, key: ecKey().signer, write: false });
      expect(signed.resources.map((r) => r.name)).toEqual(v.spec_order);
      expect(signed.rootDigest).toBe(v.spec_root_digest);
    });

    it("model_signing's order (PurePosixPath, component-wise) verifies as well: resources are hashed in payload order", async () => {
      const v = vector();
      const model = writeModel(tempDir(), Object.fromEntries(Object.entries(v.files_hex).map(([k, hex]) => [k, Buffer.from(hex, 'hex')])));
      const { signer, publicKey } = ecKey();
      const resources = v.model_signing_order.map((name) => ({ name, algorithm: 'sha256', digest: v.sha256[name]! }));
      expect(rootDigest(resources)).toBe(v.model_signing_root_digest);
      const payload = Buffer.from(JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: 'm', digest: { sha256: v.model_signing_root_digest } }],
        predicateType: 'https://model_signing/signature/v1.0',
        predicate: { serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: false }, resources },
      }));
      writeFileSync(join(model, 'model.sig'), bundleText({ method: 'key', hint: keyHint(publicKey) }, payload, signer.sign(pae('application/vnd.in-toto+json', payload))));
      const result = await verifyModelOrThrow({ dir: model, trust: { method: 'key', key: publicKey } });
      expect(result.manifest?.resources.map((r) => r.name)).toEqual(v.model_signing_order);
    });
  });
});

describe('attacks: negative bundles re-signed with the test key', () => {
  const base = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'm', digest: { sha256: '' } }],
    predicateType: 'https://model_signing/signature/v1.0',
    predicate: { serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: false }, resources: [] as { name: string; algorithm: string; digest: string }[] },
  };
  const digestA = createHash('sha256').update('a').digest('hex');
  const good = (): typeof base => {
    const resources = [{ name: 'a.bin', algorithm: 'sha256', digest: digestA }];
    return { ...base, subject: [{ name: 'm', digest: { sha256: rootDigest(resources) } }], predicate: { ...base.predicate, resources } };
  };
  type Mutate = (s: ReturnType<typeof good>) => unknown;
  const cases: readonly [string, Mutate, string][] = [
    ['wrong _type', (s) => ({ ...s, _type: 'https://in-toto.io/Statement/v0.1' }), 'E_MODEL_STATEMENT'],
    ['wrong predicateType', (s) => ({ ...s, predicateType: 'https://slsa.dev/provenance/v1' }), 'E_MODEL_STATEMENT'],
    ['zero subjects', (s) => ({ ...s, subject: [] }), 'E_MODEL_STATEMENT'],
    ['two subjects', (s) => ({ ...s, subject: [s.subject[0], s.subject[0]] }), 'E_MODEL_STATEMENT'],
    ['empty resources', (s) => ({ ...s, subject: [{ name: 'm', digest: { sha256: rootDigest([]) } }], predicate: { ...s.predicate, resources: [] } }), 'E_MODEL_STATEMENT'],
    ['root digest mismatch', (s) => ({ ...s, subject: [{ name: 'm', digest: { sha256: '0'.repeat(64) } }] }), 'E_MODEL_STATEMENT'],
    ['a resource named ../x', (s) => ({ ...s, predicate: { ...s.predicate, resources: [{ ...s.predicate.resources[0], name: '../a.bin' }] } }), 'E_MODEL_STATEMENT'],
    ['a resource listed twice', (s) => ({ ...s, predicate: { ...s.predicate, resources: [s.predicate.resources[0], s.predicate.resources[0]] } }), 'E_MODEL_STATEMENT'],
    ['an unknown serialization method', (s) => ({ ...s, predicate: { ...s.predicate, serialization: { ...s.predicate.serialization, method: 'tensors' } } }), 'E_MODEL_STATEMENT'],
    ['blake3 file hashes', (s) => ({ ...s, predicate: { ...s.predicate, serialization: { ...s.predicate.serialization, hash_type: 'blake3' } } }), 'E_MODEL_UNSUPPORTED'],
  ];

  async function verdict(statement: unknown, payloadType = 'application/vnd.in-toto+json'): Promise<string | undefined> {
    const model = writeModel(tempDir(), { 'a.bin': 'a' });
    const { signer, publicKey } = ecKey('secp384r1');
    const payload = Buffer.from(JSON.stringify(statement));
    const bundle = JSON.parse(bundleText({ method: 'key', hint: keyHint(publicKey) }, payload, signer.sign(pae(payloadType, payload))));
    bundle.dsseEnvelope.payloadType = payloadType;
    writeFileSync(join(model, 'model.sig'), JSON.stringify(bundle));
    return (await verifyModel({ dir: model, trust: { method: 'key', key: publicKey } })).error?.code;
  }

  it('the unmodified statement verifies (the cases below can fail only for their change)', async () => {
    expect(await verdict(good())).toBeUndefined();
  });
  it.each(cases)('%s', async (_name, mutate, code) => {
    expect(await verdict(mutate(good()))).toBe(code);
  });
  it('payloadType mismatch (signed as application/json) fails with E_MODEL_STATEMENT', async () => {
    expect(await verdict(good(), 'application/json')).toBe('E_MODEL_STATEMENT');
  });
  it('a byte of the payload changed after signing fails with E_MODEL_SIGNATURE', async () => {
    const model = writeModel(tempDir(), { 'a.bin': 'a' });
    const { signer, publicKey } = ecKey();
    await signModel({ dir: model, key: signer });
    const bundle = JSON.parse(readFileSync(join(model, 'model.sig'), 'utf8'));
    const payload = Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString().replace('"a.bin"', '"b.bin"');
    bundle.dsseEnvelope.payload = Buffer.from(payload).toString('base64');
    writeFileSync(join(model, 'model.sig'), JSON.stringify(bundle));
    expect((await verifyModel({ dir: model, trust: { method: 'key', key: publicKey } })).error?.code).toBe('E_MODEL_SIGNATURE');
  });
  it('a signature by another key fails with E_MODEL_SIGNATURE, naming both hints', async () => {
    const model = writeModel(tempDir(), { 'a.bin': 'a' });
    await signModel({ dir: model, key: ecKey().signer });
    const result = await verifyModel({ dir: model, trust: { method: 'key', key: ecKey().publicKey } });
    expect(result.error?.code).toBe('E_MODEL_SIGNATURE');
    expect(result.error?.message).toMatch(/hint.*hint/);
  });
});

describe('attacks: certificate chains', () => {
  it('a chain to the given CA verifies; expired (checked at a later time), wrong CA, or a leaf without signing usage fail', async () => {
    const ca = makeCa(tempDir(), { intermediate: true });
    const model = writeModel(tempDir(), { 'a.bin': 'a' });
    const signer = withCertificateFiles(loadModelSigner(ca.leafKeyPem), ca.leafPem, [ca.intermediatePem!]);
    await signModel({ dir: model, key: signer });
    const anchors = readPemCertificates(ca.caPem);
    await verifyModelOrThrow({ dir: model, trust: { method: 'certificate', anchors } });
    const later = new Date(Date.now() + 5 * 86_400_000);
    const expired = await verifyModel({ dir: model, trust: { method: 'certificate', anchors }, now: later });
    expect(expired.error?.code).toBe('E_MODEL_SIGNATURE');
    expect(expired.error?.message).toMatch(/not now/);
    const other = makeCa(tempDir());
    expect((await verifyModel({ dir: model, trust: { method: 'certificate', anchors: readPemCertificates(other.caPem) } })).error?.code).toBe('E_MODEL_SIGNATURE');
    // The intermediate alone is not enough when it is not trusted and the root is not given.
    expect((await verifyModel({ dir: model, trust: { method: 'key', key: ecKey().publicKey } })).error?.code).toBe('E_MODEL_SIGNATURE');

    const noUsage = makeCa(tempDir(), { leafUsage: 'keyUsage=critical,keyEncipherment' });
    const m2 = writeModel(tempDir(), { 'a.bin': 'a' });
    await signModel({ dir: m2, key: withCertificateFiles(loadModelSigner(noUsage.leafKeyPem), noUsage.leafPem, []) });
    const refused = await verifyModel({ dir: m2, trust: { method: 'certificate', anchors: readPemCertificates(noUsage.caPem) } });
    expect(refused.error?.code).toBe('E_MODEL_SIGNATURE');
    expect(refused.error?.message).toMatch(/digitalSignature nor codeSigning/);
  });

  it('a certificate for another key is refused when signing', () => {
    const ca = makeCa(tempDir());
    expect(codeOf(() => withCertificateFiles(ecKey().signer, ca.leafPem, []))).toBe('E_KEY_FORMAT');
  });
});

describe('attacks: tampered models', () => {
  async function signed(): Promise<{ model: string; key: ReturnType<typeof ecKey>['publicKey'] }> {
    const model = writeModel(tempDir(), { 'config.json': '{}', 'weights/w1.bin': 'one', 'weights/w2.bin': 'two' });
    const { signer, publicKey } = ecKey();
    await signModel({ dir: model, key: signer });
    return { model, key: publicKey };
  }
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

  it('a changed file is listed with both digests', async () => {
    const { model, key } = await signed();
    writeFileSync(join(model, 'weights/w1.bin'), 'evil');
    const result = await verifyModel({ dir: model, trust: { method: 'key', key } });
    expect(result.error?.code).toBe('E_MODEL_MISMATCH');
    expect(result.mismatches).toEqual([{ kind: 'changed', name: 'weights/w1.bin', expected: sha('one'), actual: sha('evil') }]);
  });
  it('an added file', async () => {
    const { model, key } = await signed();
    writeFileSync(join(model, 'weights/backdoor.py'), 'import os');
    expect((await verifyModel({ dir: model, trust: { method: 'key', key } })).mismatches).toEqual([{ kind: 'extra', name: 'weights/backdoor.py', actual: sha('import os') }]);
  });
  it('a removed file', async () => {
    const { model, key } = await signed();
    unlinkSync(join(model, 'config.json'));
    expect((await verifyModel({ dir: model, trust: { method: 'key', key } })).mismatches).toEqual([{ kind: 'missing', name: 'config.json', expected: sha('{}') }]);
  });
  it('a renamed file (missing, and extra with the same content)', async () => {
    const { model, key } = await signed();
    renameSync(join(model, 'weights/w2.bin'), join(model, 'weights/w3.bin'));
    expect((await verifyModel({ dir: model, trust: { method: 'key', key } })).mismatches).toEqual([
      { kind: 'missing', name: 'weights/w2.bin', expected: sha('two') },
      { kind: 'extra', name: 'weights/w3.bin', actual: sha('two'), renamedFrom: 'weights/w2.bin' },
    ]);
  });
  it('a symlink swapped in for a signed file, even one pointing at identical content', async () => {
    const { model, key } = await signed();
    mkdirSync(join(model, '..', 'elsewhere'), { recursive: true });
    writeFileSync(join(model, '..', 'elsewhere', 'w1.bin'), 'one');
    unlinkSync(join(model, 'weights/w1.bin'));
    symlinkSync(join(model, '..', 'elsewhere', 'w1.bin'), join(model, 'weights/w1.bin'));
    const result = await verifyModel({ dir: model, trust: { method: 'key', key } });
    expect(result.error?.code).toBe('E_MODEL_MISMATCH');
    expect(result.mismatches[0]).toMatchObject({ kind: 'not-regular', name: 'weights/w1.bin' });
  });
  it('signing refuses a symlink unless allowed, and then only inside the model', async () => {
    const model = writeModel(tempDir(), { 'a.bin': 'a' });
    symlinkSync('a.bin', join(model, 'link.bin'));
    const { signer, publicKey } = ecKey();
    expect(await codeOfAsync(signModel({ dir: model, key: signer }))).toBe('E_NOT_REGULAR_FILE');
    const ok = await signModel({ dir: model, key: signer, allowSymlinks: true });
    expect(ok.resources.map((r) => r.name)).toEqual(['a.bin', 'link.bin']);
    await verifyModelOrThrow({ dir: model, trust: { method: 'key', key: publicKey } });
    symlinkSync('/etc/hostname', join(model, 'out.bin'));
    expect(await codeOfAsync(signModel({ dir: model, key: signer, allowSymlinks: true }))).toBe('E_NOT_REGULAR_FILE');
  });
  it('a FIFO in the model is reported, never opened', async () => {
    const { model, key } = await signed();
    const { spawnSync } = await import('node:child_process');
    spawnSync('mkfifo', [join(model, 'pipe')]);
    const result = await verifyModel({ dir: model, trust: { method: 'key', key } });
    expect(result.mismatches).toEqual([{ kind: 'not-regular', name: 'pipe', what: expect.stringMatching(/FIFO|fifo|pipe/) }]);
  });
});

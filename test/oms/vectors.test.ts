import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../../src/canonical/parse.js';
import type { JsonObject } from '../../src/canonical/json.js';
import { loadModelPublicKey, readPemCertificates, keyHint } from '../../src/oms/keys.js';
import { verifyModel, type ModelTrust } from '../../src/oms/verify.js';
import { defaultTrustedRoot } from '../../src/oms/keyless.js';
import { sharedPath } from '../helpers/shared.js';

/**
 * Every upstream OMS vector in ../shared/vectors/oms verifies with the key, chain or identity
 * its MANIFEST.md names; the spec's invalid vectors fail with the right code. Read where they
 * lie, never copied.
 */

const OMS = sharedPath('vectors/oms');
const d = describe.skipIf(OMS === undefined);
const at = (...parts: string[]): string => join(OMS ?? '', ...parts);
const TESTS = (...parts: string[]): string => at('model-transparency', 'scripts', 'tests', ...parts);
const KEYS = (...parts: string[]): string => at('model-transparency', 'scripts', 'tests', 'keys', 'certificate', ...parts);

function trustFor(method: string): ModelTrust {
  if (method === 'key') return { method: 'key', key: loadModelPublicKey(KEYS('signing-key-pub.pem')) };
  if (method === 'certificate') return { method: 'certificate', anchors: readPemCertificates(KEYS('ca-cert.pem')) };
  return {
    method: 'sigstore',
    identity: 'stefanb@us.ibm.com',
    issuer: 'https://sigstore.verify.ibm.com/oauth2',
    trustedRoot: parseJson(readFileSync(at('public-good-trusted_root.json'))) as JsonObject,
  };
}

interface Case {
  readonly dir: string;
  readonly method: 'key' | 'certificate' | 'sigstore';
  /** The model path, relative to the vector directory ('' = the directory). */
  readonly model: string;
  readonly ignore: readonly string[];
}

const CASES: readonly Case[] = [
  { dir: 'v0.2.0-certificate', method: 'certificate', model: '', ignore: [] },
  { dir: 'v0.3.1-certificate', method: 'certificate', model: '', ignore: [] },
  { dir: 'v0.3.1-elliptic-key', method: 'key', model: 'signme-1', ignore: [] },
  { dir: 'v0.3.1-sigstore', method: 'sigstore', model: '', ignore: [] },
  { dir: 'v1.0.0-certificate', method: 'certificate', model: '', ignore: [] },
  { dir: 'v1.0.0-elliptic-key', method: 'key', model: 'signme-1', ignore: [] },
  { dir: 'v1.0.0-sigstore', method: 'sigstore', model: '', ignore: [] },
  { dir: 'v1.0.1-certificate', method: 'certificate', model: '', ignore: ['ignore-me'] },
  { dir: 'v1.0.1-elliptic-key', method: 'key', model: '', ignore: ['ignore-me'] },
  { dir: 'v1.0.1-sigstore', method: 'sigstore', model: '', ignore: ['ignore-me'] },
  { dir: 'v1.1.0-certificate', method: 'certificate', model: '', ignore: [] },
  { dir: 'v1.1.0-elliptic-key', method: 'key', model: '', ignore: [] },
  { dir: 'v1.1.0-sigstore', method: 'sigstore', model: '', ignore: [] },
];

d('model_signing release vectors (MANIFEST.md table)', () => {
  it.each(CASES)('$dir verifies with its $method', async (c) => {
    const result = await verifyModel({
      dir: c.model === '' ? TESTS(c.dir) : TESTS(c.dir, c.model),
      signature: TESTS(c.dir, 'model.sig'),
      trust: trustFor(c.method),
      ignorePaths: c.ignore,
    });
    expect(result.error?.message).toBeUndefined();
    expect(result.verified).toBe(true);
    expect(result.filesChecked).toBeGreaterThan(0);
  });

  it('v1.0.1 without --ignore-paths ignore-me fails: the file is not in the signature', async () => {
    const result = await verifyModel({ dir: TESTS('v1.0.1-elliptic-key'), trust: trustFor('key') });
    expect(result.error?.code).toBe('E_MODEL_MISMATCH');
    expect(result.mismatches).toEqual([{ kind: 'extra', name: 'ignore-me', actual: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' }]);
  });

  it('v0.2.0 verifies only through the compatibility PAE, and says so', async () => {
    const result = await verifyModel({ dir: TESTS('v0.2.0-certificate'), trust: trustFor('certificate') });
    expect(result.verified).toBe(true);
    expect(result.manifest?.format).toBe('v0.2');
    expect(result.warnings.join('\n')).toMatch(/0\.2's malformed PAE/);
  });

  it('the key hint is computed as model_signing computes it', () => {
    expect(keyHint(loadModelPublicKey(KEYS('signing-key-pub.pem')))).toBe('e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e');
  });

  it('the pinned default trusted root is the public-good root of the vectors', () => {
    expect(defaultTrustedRoot()).toEqual(JSON.parse(readFileSync(at('public-good-trusted_root.json'), 'utf8')));
  });
});

d('spec test vectors (model-signing-spec test-vectors/v1.0)', () => {
  const SPEC = (...parts: string[]): string => at('model-signing-spec', 'test-vectors', 'v1.0', ...parts);
  it.each(['key', 'certificate', 'sigstore'] as const)('valid/%s.bundle.json verifies against the model it signs', async (method) => {
    const result = await verifyModel({
      // key and certificate sign the model of v1.1.0-elliptic-key, sigstore that of v1.1.0-sigstore.
      dir: TESTS(method === 'sigstore' ? 'v1.1.0-sigstore' : 'v1.1.0-elliptic-key'),
      signature: SPEC('valid', `${method}.bundle.json`),
      trust: trustFor(method),
      // The vector's model directory also holds model_signing's own model.sig.
      ignorePaths: ['model.sig'],
    });
    expect(result.error?.message).toBeUndefined();
    expect(result.manifest?.modelName).toBe(method === 'sigstore' ? 'v1.1.0-sigstore' : 'model');
  });

  it.each([
    ['invalid/empty.bundle.json', 'key', 'E_MODEL_BUNDLE'],
    ['invalid/missing-envelope.bundle.json', 'key', 'E_MODEL_BUNDLE'],
    ['invalid/missing-verification-material.bundle.json', 'key', 'E_MODEL_BUNDLE'],
    ['invalid/missing-tlog-entries.bundle.json', 'sigstore', 'E_MODEL_BUNDLE'],
    // Edited after signing: the signature no longer covers the payload.
    ['invalid-payload/wrong-predicate.bundle.json', 'key', 'E_MODEL_SIGNATURE'],
  ] as const)('%s fails with %s', async (file, method, code) => {
    const result = await verifyModel({ dir: TESTS('v1.1.0-elliptic-key'), signature: SPEC(file), trust: trustFor(method), ignorePaths: ['model.sig'] });
    expect(result.verified).toBe(false);
    expect(result.error?.code).toBe(code);
  });
});

d('wrong trust for a vector fails with E_MODEL_SIGNATURE', () => {
  it('a certificate bundle checked with a public key', async () => {
    const result = await verifyModel({ dir: TESTS('v1.1.0-certificate'), trust: trustFor('key') });
    expect(result.error?.code).toBe('E_MODEL_SIGNATURE');
  });
  it('a Sigstore bundle with the wrong identity', async () => {
    const trust = { ...trustFor('sigstore'), identity: 'stefanb@us.ibm.co' } as ModelTrust;
    const result = await verifyModel({ dir: TESTS('v1.1.0-sigstore'), trust });
    expect(result.error?.code).toBe('E_MODEL_SIGNATURE');
    expect(result.error?.message).toMatch(/not by the identity/);
  });
  it('a Sigstore bundle with an identity that only matches as a regular expression', async () => {
    const trust = { ...trustFor('sigstore'), identity: 'stefanb@us.ibm.c.m' } as ModelTrust;
    expect((await verifyModel({ dir: TESTS('v1.1.0-sigstore'), trust })).error?.code).toBe('E_MODEL_SIGNATURE');
  });
  it('a Sigstore bundle with the wrong issuer', async () => {
    const trust = { ...trustFor('sigstore'), issuer: 'https://accounts.google.com' } as ModelTrust;
    const result = await verifyModel({ dir: TESTS('v1.1.0-sigstore'), trust });
    expect(result.error?.code).toBe('E_MODEL_SIGNATURE');
    expect(result.error?.message).toMatch(/issued by/);
  });
  it('a certificate bundle against a CA that did not issue it (the intermediate is not a trust anchor for the vector when the root is missing)', async () => {
    const wrong = readPemCertificates(KEYS('signing-key-cert.pem'));
    const result = await verifyModel({ dir: TESTS('v1.1.0-certificate'), trust: { method: 'certificate', anchors: wrong } });
    // The leaf itself, given as the only trusted certificate, is a valid anchor (as OpenSSL's store).
    expect(result.error?.code ?? 'verified').toMatch(/verified|E_MODEL_SIGNATURE/);
  });
});

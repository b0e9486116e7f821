import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { pae } from '../../src/model/envelope.js';

/**
 * Test-only: signs a model directory the way OpenSSF Model Signing v1.0 does with the key
 * method (model_signing `sign key`): an in-toto Statement with predicate
 * https://model_signing/signature/v1.0, `files` serialization, one sha256 resource per file in
 * path order, subject digest = sha256 of the resource digests; DSSE-signed with ECDSA; in a
 * Sigstore bundle v0.3 whose verificationMaterial holds the key's hint. The shared OMS vectors
 * (../shared/vectors/oms) prove the format against model_signing's own output.
 */

export interface TestKey {
  readonly privateKey: KeyObject;
  readonly publicPem: string;
  readonly hint: string;
}

export function makeSigningKey(curve: 'P-256' | 'P-384' = 'P-384'): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  return { privateKey, publicPem, hint: createHash('sha256').update(publicPem).digest('hex') };
}

export function keyFromPem(privatePem: string): TestKey {
  const privateKey = createPrivateKey(privatePem);
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
  return { privateKey, publicPem, hint: createHash('sha256').update(publicPem).digest('hex') };
}

function walk(dir: string, root: string, skip: ReadonlySet<string>): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    const rel = relative(root, path).split(sep).join('/');
    if (skip.has(rel)) return [];
    return entry.isDirectory() ? walk(path, root, skip) : [rel];
  });
}

/** The bundle bytes for `dir` (files listed in path order, minus `ignore`). */
export function signModel(dir: string, key: TestKey, options: { ignore?: readonly string[]; name?: string; tamper?: (payload: Record<string, unknown>) => void } = {}): Buffer {
  const ignore = new Set(options.ignore ?? []);
  const names = walk(dir, dir, ignore).sort();
  const resources = names.map((name) => ({ algorithm: 'sha256', name, digest: createHash('sha256').update(readFileSync(join(dir, name))).digest('hex') }));
  const root = createHash('sha256');
  for (const r of resources) root.update(Buffer.from(r.digest, 'hex'));
  const statement: Record<string, unknown> = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: options.name ?? 'model', digest: { sha256: root.digest('hex') } }],
    predicateType: 'https://model_signing/signature/v1.0',
    predicate: {
      resources,
      serialization: { allow_symlinks: false, method: 'files', hash_type: 'sha256', ignore_paths: [...ignore] },
    },
  };
  options.tamper?.(statement);
  const payload = Buffer.from(JSON.stringify(statement, null, 2), 'utf8');
  const curve = key.privateKey.asymmetricKeyDetails?.namedCurve;
  const hash = curve === 'secp384r1' ? 'sha384' : 'sha256';
  const sig = sign(hash, pae('application/vnd.in-toto+json', payload), { key: key.privateKey, dsaEncoding: 'der' });
  return Buffer.from(
    JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: key.hint }, tlogEntries: [] },
      dsseEnvelope: { payload: payload.toString('base64'), payloadType: 'application/vnd.in-toto+json', signatures: [{ sig: sig.toString('base64'), keyid: '' }] },
    }),
    'utf8',
  );
}

/** Writes the public key and a signature for `dir`; returns their paths. */
export function writeSignature(dir: string, outDir: string, key: TestKey, name = 'model.sig'): { signature: string; publicKey: string } {
  const signature = join(outDir, name);
  const publicKey = join(outDir, `${name}.pub`);
  writeFileSync(signature, signModel(dir, key));
  writeFileSync(publicKey, key.publicPem);
  return { signature, publicKey };
}

import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../../src/canonical/parse.js';
import { generateSigningKey, isEncryptedKeyFile, loadPublicKeyFile, loadSigningKeyFile, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { publicKeyFromObject } from '../../src/crypto/keys.js';
import { MAX_KDF_ITERATIONS } from '../../src/crypto/pem.js';
import { encryptSslibKey } from '../../src/crypto/sslib-encryption.js';
import { tempDir } from '../helpers/reference.js';
import { outcomeOf } from '../helpers/errors.js';

/**
 * Fuzzing the key readers with the families issue 19 found (and their neighbours):
 * - every field of a key object or key file, retyped to every JSON type, in objects the strict
 *   parser makes (prototype-less): `"keyid": {}` once escaped as a TypeError (E_INTERNAL);
 * - the key derivation of encrypted keys: an iteration count (or scrypt cost) over its cap is
 *   refused before any derivation runs, and before a password is asked for: with counts in the
 *   billions, a derivation would run for hours and the test would time out;
 * - the pass phrase prompt is fuzzed at a terminal in pem-prompt.test.ts.
 * Only our typed errors may come out, never E_INTERNAL.
 */

const root = tempDir('intoto-keys-fuzz-');


/** JSON texts of every type, including prototype-polluting and huge ones. */
const VALUES = ['null', '0', '-1', '1.5', 'true', '""', '"x"', '[]', '[1]', '{}', '{"a": 1}', '{"__proto__": {"x": 1}}', '"ed25519"', '"rsa"', '"ecdsa"', '["sha256"]', '{"public": {}}', '{"public": "ab"}', '{"public": 1, "private": {}}'];
const FIELDS = ['keyid', 'keytype', 'scheme', 'keyval', 'keyid_hash_algorithms', 'method', 'hashes', 'type'];

describe('fuzz: key objects and key files with fields of every type', () => {
  const ed = generateSigningKey({ type: 'ed25519' });
  const base = {
    keytype: 'ed25519',
    scheme: 'ed25519',
    keyid: ed.keyid,
    keyid_hash_algorithms: ['sha256', 'sha512'],
    keyval: { public: ed.public.publicValue },
  };

  it('attack: "keyid": {} (the fuzzing run\'s case) is a typed E_KEY_FORMAT, through the object reader and key files', () => {
    const value = parseJson(Buffer.from(JSON.stringify({ ...base, keyid: {} })), { source: 'k' });
    expect(outcomeOf(() => publicKeyFromObject(value, { where: 'k' }))).toBe('E_KEY_FORMAT');
    const file = join(root, 'keyid-object.pub');
    writeFileSync(file, JSON.stringify({ ...base, keyid: {} }));
    expect(outcomeOf(() => loadPublicKeyFile(file))).toBe('E_KEY_FORMAT');
    expect(outcomeOf(() => loadSigningKeyFile(file))).toBe('E_KEY_FORMAT');
  });

  it('property: any field replaced, added or removed gives ok or a typed code, never E_INTERNAL', () => {
    let i = 0;
    fc.assert(
      fc.property(fc.constantFrom(...FIELDS), fc.constantFrom(...VALUES, undefined), fc.boolean(), (field, value, nested) => {
        const object: Record<string, unknown> = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
        const target = nested ? (object['keyval'] as Record<string, unknown>) : object;
        if (value === undefined) delete target[field];
        else target[field] = JSON.parse(value) as unknown;
        const text = JSON.stringify(object);
        let parsed;
        try {
          parsed = parseJson(Buffer.from(text), { source: 'k' });
        } catch {
          parsed = undefined; // numbers the strict parser refuses: the file readers below see them
        }
        if (parsed !== undefined) {
          const value = parsed;
          for (const action of [
            () => publicKeyFromObject(value, { where: 'k' }),
            () => publicKeyFromObject(value, { where: 'k', allowPrivate: true, declaredKeyid: ed.keyid }),
          ]) {
            expect(outcomeOf(action)).not.toBe('E_INTERNAL');
          }
        }
        const file = join(root, `field-${i++}.pub`);
        writeFileSync(file, text);
        expect(outcomeOf(() => loadPublicKeyFile(file))).not.toBe('E_INTERNAL');
        expect(outcomeOf(() => loadSigningKeyFile(file))).not.toBe('E_INTERNAL');
        expect(outcomeOf(() => isEncryptedKeyFile(file))).not.toBe('E_INTERNAL');
      }),
      { numRuns: 300, seed: 19 },
    );
  });
});

// --- DER, just enough to write an EncryptedPrivateKeyInfo with chosen parameters -------------

function der(tag: number, content: Buffer): Buffer {
  const length = content.length;
  const head = length < 128 ? Buffer.from([length]) : length < 256 ? Buffer.from([0x81, length]) : Buffer.from([0x82, length >> 8, length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), head, content]);
}
const seq = (...parts: Buffer[]): Buffer => der(0x30, Buffer.concat(parts));
const octets = (bytes: Buffer): Buffer => der(0x04, bytes);
function integer(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return der(0x02, bytes);
}
function oid(text: string): Buffer {
  const [a, b, ...rest] = text.split('.').map(Number) as [number, number, ...number[]];
  const out = [a * 40 + b];
  for (const n of rest) {
    const groups: number[] = [];
    let v = n;
    do {
      groups.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    out.push(...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)));
  }
  return der(0x06, Buffer.from(out));
}

/** An `ENCRYPTED PRIVATE KEY` PEM asking for PBKDF2 with `iterations`, or scrypt with N, r, p. */
function encryptedPkcs8(kdf: { iterations: bigint } | { n: bigint; r: bigint; p: bigint }): string {
  const salt = octets(Buffer.alloc(16, 7));
  const kdfId =
    'iterations' in kdf
      ? seq(oid('1.2.840.113549.1.5.12'), seq(salt, integer(kdf.iterations), seq(oid('1.2.840.113549.2.9'), der(0x05, Buffer.alloc(0)))))
      : seq(oid('1.3.6.1.4.1.11591.4.11'), seq(salt, integer(kdf.n), integer(kdf.r), integer(kdf.p)));
  const cipher = seq(oid('2.16.840.1.101.3.4.1.42'), octets(Buffer.alloc(16, 1)));
  const body = seq(seq(oid('1.2.840.113549.1.5.13'), seq(kdfId, cipher)), octets(Buffer.alloc(64, 9)));
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${body.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
}

describe('fuzz: key derivation parameters are bounded before any derivation', () => {
  it('attack: an encrypted PKCS#8 key asking for billions of PBKDF2 rounds is refused unread (with or without a password)', () => {
    const file = join(root, 'kdf-huge.pem');
    writeFileSync(file, encryptedPkcs8({ iterations: 4_000_000_000n }));
    expect(outcomeOf(() => isEncryptedKeyFile(file))).toBe('E_KEY_FORMAT');
    expect(outcomeOf(() => loadSigningKeyFile(file, { password: 'x' }))).toBe('E_KEY_FORMAT');
    expect(outcomeOf(() => loadPublicKeyFile(file))).toBe('E_KEY_PUBLIC_EXPECTED');
  });

  it('attack: scrypt asking for gigabytes is refused unread', () => {
    const file = join(root, 'kdf-scrypt.pem');
    writeFileSync(file, encryptedPkcs8({ n: 2n ** 24n, r: 64n, p: 64n }));
    expect(outcomeOf(() => loadSigningKeyFile(file, { password: 'x' }))).toBe('E_KEY_FORMAT');
  });

  it('attack: a securesystemslib encrypted key over the iteration cap is refused when the file is read, before any password', () => {
    const ed = generateSigningKey({ type: 'ed25519' });
    const base = join(root, 'sslib');
    writeKeyPair(ed, base, 'pw');
    const honest = encryptSslibKey('{"x": 1}', 'pw');
    const [salt, , hmac, iv, ciphertext] = honest.split('@@@@') as [string, string, string, string, string];
    for (const iterations of [String(MAX_KDF_ITERATIONS + 1), '4000000000', '99999999999999999999', '0', '01']) {
      const file = join(root, `sslib-${iterations}`);
      writeFileSync(file, [salt, iterations, hmac, iv, ciphertext].join('@@@@'));
      expect(outcomeOf(() => isEncryptedKeyFile(file))).toBe('E_KEY_FORMAT');
      expect(outcomeOf(() => loadSigningKeyFile(file, { password: 'pw' }))).toBe('E_KEY_FORMAT');
    }
    // The honest one (100,000 iterations) still opens with its password.
    expect(isEncryptedKeyFile(base)).toBe(true);
    expect(loadSigningKeyFile(base, { password: 'pw' }).keyid).toBe(ed.keyid);
  });

  it('property: any PBKDF2 count or scrypt cost over its cap is refused before derivation; honest PKCS#8 keys still open', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: BigInt(MAX_KDF_ITERATIONS) + 1n, max: 2n ** 64n }), (iterations) => {
        const file = join(root, 'kdf-prop.pem');
        writeFileSync(file, encryptedPkcs8({ iterations }));
        expect(outcomeOf(() => loadSigningKeyFile(file, { password: 'x' }))).toBe('E_KEY_FORMAT');
      }),
      { numRuns: 50, seed: 19 },
    );
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const file = join(root, 'honest-pkcs8.pem');
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }));
    expect(isEncryptedKeyFile(file)).toBe(true);
    expect(outcomeOf(() => loadSigningKeyFile(file))).toBe('E_KEY_PASSWORD');
    expect(outcomeOf(() => loadSigningKeyFile(file, { password: 'wrong' }))).toBe('E_KEY_PASSWORD');
    expect(loadSigningKeyFile(file, { password: 'pw' }).public.scheme).toBe('ecdsa-sha2-nistp256');
  });
});

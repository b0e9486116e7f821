import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ed25519Verify } from '../../src/crypto/ed25519.js';
import { decodeBase64Strict } from '../../src/crypto/encoding.js';
import { generateSigningKey, isEncryptedKeyFile, loadPublicKeyFile, loadSigningKeyFile, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { makePublicKey, publicKeyFromObject, type PublicKey } from '../../src/crypto/keys.js';
import { SigningKey, verifySignature } from '../../src/crypto/signatures.js';
import { parseJson } from '../../src/canonical/parse.js';
import { tempDir } from '../helpers/reference.js';
import { codeOf } from '../helpers/errors.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/keyids.json', import.meta.url), 'utf8')) as {
  public_hex: string;
  private_seed_hex: string;
  legacy_object: unknown;
  legacy_keyid: string;
  modern_object: unknown;
  modern_keyid: string;
};
const FIXTURES = new URL('../fixtures/reference/', import.meta.url).pathname;

describe('keyids (vectors/keyids.json)', () => {
  it('the legacy object (with keyid_hash_algorithms) hashes to the in-toto 1.3.1 keyid', () => {
    const key = publicKeyFromObject(parseJson(JSON.stringify(vectors.legacy_object)), { where: 'vector' });
    expect(key.keyid).toBe(vectors.legacy_keyid);
  });
  it('the modern object hashes to the modern keyid', () => {
    const key = publicKeyFromObject(parseJson(JSON.stringify(vectors.modern_object)), { where: 'vector' });
    expect(key.keyid).toBe(vectors.modern_keyid);
  });
  it('both forms of one key have the same identity (thresholds count keys, not keyids)', () => {
    const a = publicKeyFromObject(parseJson(JSON.stringify(vectors.legacy_object)), { where: 'a' });
    const b = publicKeyFromObject(parseJson(JSON.stringify(vectors.modern_object)), { where: 'b' });
    expect(a.keyid).not.toBe(b.keyid);
    expect(a.identity).toBe(b.identity);
  });
  it('a declared keyid that is not the hash of its key is refused', () => {
    const object = { ...(vectors.legacy_object as object), keyid: vectors.modern_keyid };
    expect(codeOf(() => publicKeyFromObject(parseJson(JSON.stringify(object)), { where: 'x' }))).toBe('E_KEYID_MISMATCH');
    expect(
      codeOf(() => publicKeyFromObject(parseJson(JSON.stringify(vectors.legacy_object)), { where: 'x', declaredKeyid: vectors.modern_keyid })),
    ).toBe('E_KEYID_MISMATCH');
  });
});

describe('ed25519, strict RFC 8032', () => {
  // RFC 8032 section 7.1, tests 1-3.
  const rfc = [
    {
      seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
      pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
      msg: '',
      sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    },
    {
      seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
      pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
      msg: '72',
      sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
    },
    {
      seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
      pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
      msg: 'af82',
      sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
    },
  ];
  it.each(rfc)('RFC 8032 vector with public key $pub signs and verifies', (v) => {
    const publicKey = edKey(v.pub);
    const signer = new SigningKey(publicKey, { kind: 'ed25519', seed: Buffer.from(v.seed, 'hex') });
    const message = Buffer.from(v.msg, 'hex');
    expect(Buffer.from(signer.sign(message)).toString('hex')).toBe(v.sig);
    expect(verifySignature(publicKey, Buffer.from(v.sig, 'hex'), message)).toBe(true);
  });

  it('attack: a small-order public key (the identity point) is refused when loaded', () => {
    const identity = '01' + '00'.repeat(31);
    expect(codeOf(() => edKey(identity))).toBe('E_KEY_WEAK');
    // And the "signature" (R = identity, S = 0) that lax rules accept for any message fails.
    const forged = Buffer.from(identity + '00'.repeat(32), 'hex');
    expect(ed25519Verify(forged, Buffer.from('any message'), Buffer.from(identity, 'hex'))).toBe(false);
  });

  it('refuses a non-canonical S (S + L), which ZIP-215 style verification also refuses', () => {
    const v = rfc[0]!;
    const sig = Buffer.from(v.sig, 'hex');
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    let t = s + L;
    const malleated = Buffer.from(sig);
    for (let i = 0; i < 32; i++) {
      malleated[32 + i] = Number(t & 0xffn);
      t >>= 8n;
    }
    expect(ed25519Verify(malleated, Buffer.alloc(0), Buffer.from(v.pub, 'hex'))).toBe(false);
  });

  it('refuses wrong lengths and encodings of public keys', () => {
    expect(codeOf(() => edKey('ab'))).toBe('E_KEY_FORMAT');
    expect(codeOf(() => edKey(vectors.public_hex.toUpperCase()))).toBe('E_KEY_FORMAT');
  });
});

describe('sign then verify, for every scheme', () => {
  const keys = [generateSigningKey({ type: 'ed25519' }), generateSigningKey({ type: 'ecdsa' }), generateSigningKey({ type: 'rsa', bits: 2048 })];
  it.each(keys.map((k) => [k.public.scheme, k] as const))('%s: property: a signature verifies, and any flipped bit fails', (_scheme, key) => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (message, at, bit) => {
        const signature = key.sign(message);
        expect(verifySignature(key.public, signature, message)).toBe(true);
        const flipped = Uint8Array.from(message);
        flipped[at % flipped.length]! ^= 1 << bit;
        expect(verifySignature(key.public, signature, flipped)).toBe(false);
        const badSig = Uint8Array.from(signature);
        badSig[at % badSig.length]! ^= 1 << bit;
        expect(verifySignature(key.public, badSig, message)).toBe(false);
      }),
      { numRuns: key.public.keytype === 'rsa' ? 20 : 50 },
    );
  });
  it('a signature by one key does not verify under another', () => {
    const [a, b] = [generateSigningKey({ type: 'ed25519' }), generateSigningKey({ type: 'ed25519' })];
    const sig = a.sign(Buffer.from('x'));
    expect(verifySignature(b.public, sig, Buffer.from('x'))).toBe(false);
  });
  it('never exposes private material through JSON or inspection', async () => {
    const key = keys[0]!;
    const seedHex = Buffer.from((key.exportPrivate() as { seed: Uint8Array }).seed).toString('hex');
    const { inspect } = await import('node:util');
    expect(JSON.stringify(key)).not.toContain(seedHex);
    expect(inspect(key, { depth: 10, showHidden: true })).not.toContain(seedHex);
  });
});

describe('key files', () => {
  const dir = tempDir();
  it.each(['alice', 'bob', 'carol'])('reads the reference key pair %s, and private and public keyids agree', (name) => {
    const priv = loadSigningKeyFile(join(FIXTURES, 'keys', name));
    const pub = loadPublicKeyFile(join(FIXTURES, 'keys', `${name}.pub`));
    expect(priv.keyid).toBe(pub.keyid);
    expect(pub.keyid).toMatch(/^[0-9a-f]{64}$/);
  });
  it('matches the keyids the reference wrote into its links', () => {
    const bob = loadPublicKeyFile(join(FIXTURES, 'keys', 'bob.pub'));
    const carol = loadPublicKeyFile(join(FIXTURES, 'keys', 'carol.pub'));
    const layout = readFileSync(join(FIXTURES, 'chain', 'root.layout'), 'utf8');
    expect(layout).toContain(bob.keyid);
    expect(layout).toContain(carol.keyid);
  });
  it.each(['ed25519', 'rsa', 'ecdsa'] as const)('%s: writes a pair that reads back, private file mode 0600', (type) => {
    const key = generateSigningKey({ type, ...(type === 'rsa' ? { bits: 2048 } : {}) });
    const path = join(dir, `k-${type}`);
    writeKeyPair(key, path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(isEncryptedKeyFile(path)).toBe(false);
    expect(loadSigningKeyFile(path).keyid).toBe(key.keyid);
    expect(loadPublicKeyFile(`${path}.pub`).keyid).toBe(key.keyid);
  });
  it.each(['ed25519', 'rsa', 'ecdsa'] as const)('%s: an encrypted key needs its password', (type) => {
    const key = generateSigningKey({ type, ...(type === 'rsa' ? { bits: 2048 } : {}) });
    const path = join(dir, `enc-${type}`);
    writeKeyPair(key, path, 'correct horse');
    expect(isEncryptedKeyFile(path)).toBe(true);
    expect(codeOf(() => loadSigningKeyFile(path))).toBe('E_KEY_PASSWORD');
    expect(codeOf(() => loadSigningKeyFile(path, { password: 'wrong' }))).toBe('E_KEY_PASSWORD');
    expect(loadSigningKeyFile(path, { password: 'correct horse' }).keyid).toBe(key.keyid);
  });
  it('a traditional encrypted PEM (Proc-Type: 4,ENCRYPTED) is seen as encrypted and needs its password', () => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    expect(privateKey).toContain('Proc-Type: 4,ENCRYPTED');
    const path = join(dir, 'enc-traditional');
    writeFileSync(path, privateKey);
    expect(isEncryptedKeyFile(path)).toBe(true);
    expect(codeOf(() => loadSigningKeyFile(path))).toBe('E_KEY_PASSWORD');
    expect(loadSigningKeyFile(path, { password: 'correct horse' }).public.keytype).toBe('rsa');
  });
  it('refuses a private key where a public key is expected, and the reverse', () => {
    expect(codeOf(() => loadPublicKeyFile(join(FIXTURES, 'keys', 'alice')))).toBe('E_KEY_PUBLIC_EXPECTED');
    expect(codeOf(() => loadPublicKeyFile(join(FIXTURES, 'keys', 'bob')))).toBe('E_KEY_PUBLIC_EXPECTED');
    expect(codeOf(() => loadSigningKeyFile(join(FIXTURES, 'keys', 'alice.pub')))).toBe('E_KEY_PRIVATE_EXPECTED');
    expect(codeOf(() => loadSigningKeyFile(join(FIXTURES, 'keys', 'bob.pub')))).toBe('E_KEY_PRIVATE_EXPECTED');
  });
  it('checks -t against the detected type', () => {
    expect(codeOf(() => loadPublicKeyFile(join(FIXTURES, 'keys', 'alice.pub'), { expectedType: 'rsa' }))).toBe('E_KEY_UNSUPPORTED');
    expect(loadPublicKeyFile(join(FIXTURES, 'keys', 'alice.pub'), { expectedType: 'ed25519' }).keytype).toBe('ed25519');
  });
  it('refuses a key file whose public and private halves differ', () => {
    const a = JSON.parse(readFileSync(join(FIXTURES, 'keys', 'alice'), 'utf8')) as { keyval: { private: string } };
    a.keyval.private = '11'.repeat(32);
    const path = join(dir, 'mismatched');
    writeFileSync(path, JSON.stringify(a));
    expect(codeOf(() => loadSigningKeyFile(path))).toBe('E_KEY_FORMAT');
  });
  it('refuses garbage, empty and oversized key files with typed errors', () => {
    for (const [name, content] of [['garbage', 'hello'], ['empty', ''], ['big', 'x'.repeat(70_000)], ['badjson', '{"keytype": ']] as const) {
      const path = join(dir, name);
      writeFileSync(path, content);
      expect(codeOf(() => loadPublicKeyFile(path))).toMatch(/^E_(KEY_FORMAT|FILE_TOO_LARGE)$/);
    }
  });
  it('keytype and scheme that do not fit are refused', () => {
    const object = { keytype: 'ed25519', scheme: 'rsassa-pss-sha256', keyval: { public: vectors.public_hex } };
    expect(codeOf(() => publicKeyFromObject(parseJson(JSON.stringify(object)), { where: 'x' }))).toBe('E_KEY_UNSUPPORTED');
    const rsaAsEcdsa = { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: readFileSync(join(FIXTURES, 'keys', 'bob.pub'), 'utf8') } };
    expect(codeOf(() => publicKeyFromObject(parseJson(JSON.stringify(rsaAsEcdsa)), { where: 'x' }))).toBe('E_KEY_UNSUPPORTED');
  });
  it('attack: private material inside a public key object is refused; the reference\'s empty "private" is tolerated', () => {
    const withPrivate = { ...(vectors.legacy_object as object), keyval: { public: vectors.public_hex, private: vectors.private_seed_hex } };
    expect(codeOf(() => publicKeyFromObject(parseJson(JSON.stringify(withPrivate)), { where: 'x' }))).toBe('E_KEY_PUBLIC_EXPECTED');
    const empty = { ...(vectors.legacy_object as object), keyval: { public: vectors.public_hex, private: '' } };
    expect(publicKeyFromObject(parseJson(JSON.stringify(empty)), { where: 'x' }).keyid).toBe(vectors.legacy_keyid);
  });
});

describe('strict base64 (DSSE)', () => {
  const table: [string, string | null][] = [
    ['aGVsbG8=', 'hello'],
    ['aGVsbG8', 'hello'],
    ['-_8=', '\u00fb\u00ff'],
    ['+/8=', '\u00fb\u00ff'],
    ['aGVsbG8==', null],
    ['aGVsbG9=', null], // unused bits set
    ['aGV sbG8=', null],
    ['aGVsbG8=\n', null],
    ['+_8=', null], // mixed alphabets
    ['a', null],
    ['a=bc', null],
  ];
  it.each(table)('%s', (text, expected) => {
    if (expected === null) expect(codeOf(() => decodeBase64Strict(text))).toBe('E_BASE64');
    else expect(Buffer.from(decodeBase64Strict(text)).toString('latin1')).toBe(expected);
  });
});

function edKey(hex: string): PublicKey {
  return makePublicKey({ keytype: 'ed25519', scheme: 'ed25519', publicValue: hex, keyidHashAlgorithms: undefined }, 'test');
}




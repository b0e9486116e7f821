import { createHash, createPrivateKey, createPublicKey, randomBytes, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import * as ed from '@noble/ed25519';

/**
 * ed25519 with strict RFC 8032 rules, and small-order public keys refused when loaded
 * (THREATS.md: the identity point verifies any signature under lax rules).
 *
 * Verification goes through node:crypto (OpenSSL), with the strict checks made here first:
 * the public key is a canonical encoding of a point that is not of small order (checked with
 * noble, once per key), and S < L. OpenSSL then checks the cofactorless equation
 * [S]B = R + [k]A by re-encoding [S]B - [k]A and comparing it byte for byte with R, which
 * refuses a non-canonical R as well. That is at least as strict as noble's `zip215: false`
 * (canonical A and R, S < L, cofactored equation: anything cofactorless-valid is
 * cofactored-valid), and noble stays the reference ({@link ed25519VerifyNoble}, held to the
 * same answers by a differential test). OpenSSL hashes the message where it lies; noble copies
 * R || A || message into one array first (11 MB for a link of 50,000 artifacts) and builds its
 * base-point tables on first use (about 40 ms).
 *
 * Signing and deriving a public key go through OpenSSL too: ed25519 signatures are
 * deterministic (RFC 8032 §5.1.6), so the bytes are the same.
 */

// noble needs a synchronous SHA-512 for its sync API; node:crypto (OpenSSL) provides it.
ed.hashes.sha512 = (message: Uint8Array): Uint8Array<ArrayBuffer> => {
  const digest: Uint8Array<ArrayBuffer> = new Uint8Array(createHash('sha512').update(message).digest());
  return digest;
};

export const ED25519_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

/** Why the 32 bytes are not an acceptable ed25519 public key, or undefined. Never throws. */
export function ed25519PublicKeyProblem(publicKey: Uint8Array): string | undefined {
  if (publicKey.length !== ED25519_KEY_BYTES) return `must be ${ED25519_KEY_BYTES} bytes`;
  let point: ed.Point;
  try {
    point = ed.Point.fromBytes(publicKey, false);
  } catch {
    return 'is not a canonical encoding of a curve point';
  }
  if (point.isSmallOrder()) return 'is a small-order point (it would accept forged signatures)';
  return undefined;
}

/** L, the order of the base point, little-endian (RFC 8032 §5.1). */
const L_LE = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

/** S (the second half of a signature, little-endian) < L: the check against malleability. */
function scalarBelowL(signature: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i] as number;
    const l = L_LE[i] as number;
    if (s !== l) return s < l;
  }
  return false; // S = L
}

// SPKI DER of an ed25519 public key (RFC 8410), up to the 32 raw bytes that follow.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * The OpenSSL key of a public key that passed {@link ed25519PublicKeyProblem} (null when it did
 * not), cached per array with a copy of the bytes it was made from: a loaded key keeps one
 * array for its lifetime, and an array changed since is checked again rather than trusted.
 */
const verifyKeys = new WeakMap<Uint8Array, { readonly bytes: Buffer; readonly key: KeyObject | null }>();

function verifyKeyOf(publicKey: Uint8Array): KeyObject | null {
  const cached = verifyKeys.get(publicKey);
  if (cached !== undefined && cached.bytes.equals(publicKey)) return cached.key;
  const bytes = Buffer.from(publicKey);
  const key = ed25519PublicKeyProblem(bytes) === undefined ? createPublicKey({ key: Buffer.concat([SPKI_PREFIX, bytes]), format: 'der', type: 'spki' }) : null;
  verifyKeys.set(publicKey, { bytes, key });
  return key;
}

/**
 * Strict RFC 8032 verification (see above); false for any malformed input, a small-order or
 * non-canonical public key included. Never throws.
 */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES || publicKey.length !== ED25519_KEY_BYTES) return false;
  if (!scalarBelowL(signature)) return false;
  try {
    const key = verifyKeyOf(publicKey);
    return key !== null && nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * The same verification through @noble/ed25519 (`zip215: false`) and this module's public-key
 * check: the reference the OpenSSL path is tested against. Never throws.
 */
export function ed25519VerifyNoble(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES || ed25519PublicKeyProblem(publicKey) !== undefined) return false;
  try {
    return ed.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

// PKCS#8 DER of an ed25519 private key (RFC 8410), up to the 32-byte seed that follows.
const PKCS8_SEED_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function privateKeyObject(seed: Uint8Array): KeyObject {
  if (seed.length !== ED25519_KEY_BYTES) throw new RangeError(`an ed25519 seed is ${ED25519_KEY_BYTES} bytes`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_SEED_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** Signs with a 32-byte RFC 8032 seed. */
export function ed25519Sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, message, privateKeyObject(seed)));
}

/** The public key of a 32-byte seed. */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - ED25519_KEY_BYTES));
}

/** A fresh random 32-byte seed from the operating system's CSPRNG. */
export function ed25519RandomSeed(): Uint8Array {
  return new Uint8Array(randomBytes(ED25519_KEY_BYTES));
}

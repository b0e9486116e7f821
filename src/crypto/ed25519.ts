import { createHash, createPrivateKey, createPublicKey, randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import * as ed from '@noble/ed25519';

/**
 * ed25519 verification through @noble/ed25519 with strict RFC 8032 rules (`zip215: false`:
 * canonical encodings of A and R, S < L) and small-order public keys refused when loaded
 * (THREATS.md: the identity point verifies any signature under lax rules).
 *
 * Signing and deriving a public key go through node:crypto (OpenSSL) instead: ed25519
 * signatures are deterministic (RFC 8032 §5.1.6), so the bytes are the same, and OpenSSL
 * spares every `intoto-run` the ~40 ms noble spends building its base-point tables on first use.
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

/** Strict RFC 8032 verification; false for any malformed input. Never throws. */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES || publicKey.length !== ED25519_KEY_BYTES) return false;
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

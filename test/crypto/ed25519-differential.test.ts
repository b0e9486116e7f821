import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ed25519PublicKey, ed25519Sign, ed25519Verify, ed25519VerifyNoble } from '../../src/crypto/ed25519.js';

/**
 * ed25519Verify goes through OpenSSL with our own strict checks in front (S < L, a canonical
 * public key not of small order); noble with `zip215: false` is the reference. They must agree
 * on honest signatures and on every tampering, and OpenSSL must never accept what noble
 * refuses. They differ on purpose in one corner only: a public key with a torsion component
 * (A + T, T of order 8), where noble's cofactored equation accepts signatures that OpenSSL's
 * cofactorless one refuses; no honest signer produces those.
 */

const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function leToBig(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

function bigToLe(n: bigint, length = 32): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function withS(signature: Uint8Array, s: bigint): Uint8Array {
  const out = Uint8Array.from(signature);
  out.set(bigToLe(s), 32);
  return out;
}

function both(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): [boolean, boolean] {
  return [ed25519Verify(signature, message, publicKey), ed25519VerifyNoble(signature, message, publicKey)];
}

const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const messageArb = fc.uint8Array({ maxLength: 300 });

describe('ed25519: OpenSSL path against the noble reference', () => {
  it('property: honest signatures verify in both; any flipped bit of message, signature or key fails in both', () => {
    fc.assert(
      fc.property(seedArb, messageArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (seed, message, at, bit) => {
        const publicKey = ed25519PublicKey(seed);
        const signature = ed25519Sign(message, seed);
        expect(both(signature, message, publicKey)).toEqual([true, true]);
        const badSig = Uint8Array.from(signature);
        badSig[at % 64]! ^= 1 << bit;
        const [o1, n1] = both(badSig, message, publicKey);
        expect(o1).toBe(n1);
        expect(o1).toBe(false);
        const badKey = Uint8Array.from(publicKey);
        badKey[at % 32]! ^= 1 << bit;
        const [o2, n2] = both(signature, message, badKey);
        expect(o2).toBe(n2);
        expect(o2).toBe(false);
        if (message.length > 0) {
          const badMessage = Uint8Array.from(message);
          badMessage[at % message.length]! ^= 1 << bit;
          expect(both(signature, badMessage, publicKey)).toEqual([false, false]);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('property: S >= L (S + L, S + kL, S = L, S = 2^256 - 1) fails in both', () => {
    fc.assert(
      fc.property(seedArb, messageArb, fc.integer({ min: 1, max: 15 }), (seed, message, k) => {
        const publicKey = ed25519PublicKey(seed);
        const signature = ed25519Sign(message, seed);
        const s = leToBig(signature.subarray(32));
        for (const bad of [s + L, s + BigInt(k) * L, L, (1n << 256n) - 1n]) {
          if (bad >= 1n << 256n) continue;
          expect(both(withS(signature, bad), message, publicKey)).toEqual([false, false]);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('non-canonical encodings of R fail in both (y >= p, x = 0 with the sign bit)', () => {
    const seed = new Uint8Array(32).fill(7);
    const publicKey = ed25519PublicKey(seed);
    const message = new Uint8Array([1, 2, 3]);
    const signature = ed25519Sign(message, seed);
    const p = (1n << 255n) - 19n;
    const encodings = [
      bigToLe(p + 1n), // y = 1 (the identity) written as p + 1
      bigToLe(1n | (1n << 255n)), // the identity with the sign bit set (x = 0)
      bigToLe(p - 1n + (1n << 255n)), // y = -1 (order 2, x = 0) with the sign bit set
      bigToLe(p), // y = 0 written as p
    ];
    for (const r of encodings) {
      const forged = Uint8Array.from(signature);
      forged.set(r, 0);
      expect(both(forged, message, publicKey)).toEqual([false, false]);
    }
  });

  it('small-order and non-canonical public keys fail in both, whatever the signature', () => {
    const identity = bigToLe(1n);
    const forged = new Uint8Array(64);
    forged.set(identity, 0); // R = identity, S = 0: valid for any message under lax rules
    const p = (1n << 255n) - 19n;
    for (const key of [identity, bigToLe(p + 1n), bigToLe((1n << 255n) - 1n), new Uint8Array(32)]) {
      expect(both(forged, new Uint8Array([9]), key)).toEqual([false, false]);
    }
  });

  it('wrong lengths fail in both without throwing', () => {
    const seed = new Uint8Array(32).fill(3);
    const publicKey = ed25519PublicKey(seed);
    const signature = ed25519Sign(new Uint8Array(), seed);
    expect(both(signature.subarray(0, 63), new Uint8Array(), publicKey)).toEqual([false, false]);
    expect(both(signature, new Uint8Array(), publicKey.subarray(0, 31))).toEqual([false, false]);
  });

  it('a key array changed after use is checked again, not trusted from the cache', () => {
    const seed = new Uint8Array(32).fill(5);
    const publicKey = Uint8Array.from(ed25519PublicKey(seed));
    const signature = ed25519Sign(new Uint8Array([1]), seed);
    expect(ed25519Verify(signature, new Uint8Array([1]), publicKey)).toBe(true);
    publicKey.set(bigToLe(1n)); // now the identity point
    expect(ed25519Verify(signature, new Uint8Array([1]), publicKey)).toBe(false);
  });

  it('property: a key with a torsion component: OpenSSL accepts only what noble accepts (and exactly when 8 divides k)', () => {
    // A point of order 8 (from libsodium's list of small-order encodings).
    const torsion = ed.Point.fromBytes(Buffer.from('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'hex'));
    const sha512 = (...parts: Uint8Array[]): bigint => {
      const h = createHash('sha512');
      for (const part of parts) h.update(part);
      return leToBig(h.digest()) % L;
    };
    fc.assert(
      fc.property(seedArb, messageArb, (seed, message) => {
        const h = createHash('sha512').update(seed).digest();
        const a0 = Uint8Array.from(h.subarray(0, 32));
        a0[0]! &= 248;
        a0[31]! &= 127;
        a0[31]! |= 64;
        const a = leToBig(a0);
        const mixed = ed.Point.BASE.multiply(a % L).add(torsion);
        const publicKey = mixed.toBytes();
        const r = sha512(h.subarray(32), message) || 1n;
        const R = ed.Point.BASE.multiply(r).toBytes();
        const k = sha512(R, publicKey, message);
        const s = (r + k * a) % L;
        const signature = new Uint8Array(64);
        signature.set(R, 0);
        signature.set(bigToLe(s), 32);
        const [openssl, noble] = both(signature, message, publicKey);
        expect(noble).toBe(true);
        // [S]B = R + [k]A - [k]T: cofactorless-valid exactly when [k]T is the identity.
        expect(openssl).toBe(k % 8n === 0n);
      }),
      { numRuns: 40 },
    );
  });
});

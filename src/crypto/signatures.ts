import { constants, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { CryptoError } from '../errors.js';
import { ed25519Sign, ed25519Verify } from './ed25519.js';
import { keyMaterial, publicKeyInForm, type KeyidForm, type PublicKey } from './keys.js';

/**
 * Signing and verification for the three schemes in-toto 1.3.1 uses:
 * - ed25519 (strict RFC 8032, see ed25519.ts);
 * - rsassa-pss-sha256: MGF1-SHA256; we sign with salt length = digest length (as
 *   securesystemslib) and verify any salt length (RSA_PSS_SALTLEN_AUTO), as it does;
 * - ecdsa-sha2-nistp256/384/521: DER-encoded (r, s) over SHA-256/384/512, as securesystemslib
 *   (and in-toto-golang, for P-521) write them.
 */

/**
 * True when `signature` is a valid signature of `data` by `key`. Malformed signatures give
 * false, never an exception.
 */
export function verifySignature(key: PublicKey, signature: Uint8Array, data: Uint8Array): boolean {
  const material = keyMaterial(key);
  if (material.kind === 'ed25519') return ed25519Verify(signature, data, material.raw);
  try {
    switch (key.scheme) {
      case 'rsassa-pss-sha256':
        return nodeVerify(
          'sha256',
          data,
          { key: material.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
          signature,
        );
      case 'ecdsa-sha2-nistp256':
        return nodeVerify('sha256', data, { key: material.key, dsaEncoding: 'der' }, signature);
      case 'ecdsa-sha2-nistp384':
        return nodeVerify('sha384', data, { key: material.key, dsaEncoding: 'der' }, signature);
      case 'ecdsa-sha2-nistp521':
        return nodeVerify('sha512', data, { key: material.key, dsaEncoding: 'der' }, signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

type PrivateMaterial = { readonly kind: 'ed25519'; readonly seed: Uint8Array } | { readonly kind: 'node'; readonly key: KeyObject };

/**
 * A private key able to sign. The private material lives in a private field: it is not
 * enumerable, not serialised by JSON.stringify, and redacted by util.inspect, so a log line
 * or an error report can never print it.
 */
export class SigningKey {
  readonly public: PublicKey;
  readonly #material: PrivateMaterial;

  /** @internal Use the key-file loaders or generators. */
  constructor(publicKey: PublicKey, material: PrivateMaterial) {
    this.public = publicKey;
    this.#material = material;
  }

  get keyid(): string {
    return this.public.keyid;
  }

  /** The same key signing under the keyid of `form` (what names and signature keyids show). */
  inForm(form: KeyidForm): SigningKey {
    return new SigningKey(publicKeyInForm(this.public, form), this.#material);
  }

  /**
   * The same key known as `key` (a layout's entry for it, under whatever keyid the layout
   * uses), or undefined when `key` is another key's. Never throws.
   */
  as(key: PublicKey): SigningKey | undefined {
    return key.identity === this.public.identity && key.scheme === this.public.scheme ? new SigningKey(key, this.#material) : undefined;
  }

  /**
   * Signs `data` with this key's scheme.
   * @throws CryptoError E_KEY_FORMAT when the underlying library refuses the key
   */
  sign(data: Uint8Array): Uint8Array {
    const material = this.#material;
    try {
      if (material.kind === 'ed25519') return ed25519Sign(data, material.seed);
      switch (this.public.scheme) {
        case 'rsassa-pss-sha256':
          return nodeSign('sha256', data, {
            key: material.key,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: 32, // = SHA-256 digest length, as securesystemslib signs
          });
        case 'ecdsa-sha2-nistp256':
          return nodeSign('sha256', data, { key: material.key, dsaEncoding: 'der' });
        case 'ecdsa-sha2-nistp384':
          return nodeSign('sha384', data, { key: material.key, dsaEncoding: 'der' });
        case 'ecdsa-sha2-nistp521':
          return nodeSign('sha512', data, { key: material.key, dsaEncoding: 'der' });
        default:
          throw new CryptoError('E_KEY_UNSUPPORTED', `cannot sign with scheme ${this.public.scheme}`);
      }
    } catch (cause) {
      if (cause instanceof CryptoError) throw cause;
      throw new CryptoError('E_KEY_FORMAT', `key ${this.keyid}: signing failed`, { cause });
    }
  }

  /** The private seed or PEM, for writing key files only. */
  exportPrivate(): PrivateMaterial {
    return this.#material;
  }

  toJSON(): { keyid: string; private: string } {
    return { keyid: this.keyid, private: '[redacted]' };
  }

  [inspect.custom](): string {
    return `SigningKey { keyid: '${this.keyid}', scheme: '${this.public.scheme}', private: [redacted] }`;
  }
}

export type { PrivateMaterial };

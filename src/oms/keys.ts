import { X509Certificate, createHash, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { loadPublicKeyFile, loadSigningKeyFile } from '../crypto/keyfiles.js';
import { keyMaterial } from '../crypto/keys.js';
import { privateKeyFromPemText, publicKeyFromPemText } from '../crypto/pem.js';
import type { SigningKey } from '../crypto/signatures.js';
import { CryptoError } from '../errors.js';
import { LIMITS, readRegularFileSync } from '../io/files.js';

/**
 * Keys for OMS signatures: ECDSA on P-256, P-384 or P-521 only (the algorithm registry allows
 * nothing else), the digest fixed by the curve (SHA-256, SHA-384, SHA-512, as model_signing and
 * the Sigstore registry pair them), signatures DER-encoded. Key files are our own
 * (`intoto keygen -t ecdsa`, securesystemslib JSON) or PEM/DER from openssl.
 */

type EcHash = 'sha256' | 'sha384' | 'sha512';

const HASH_OF_CURVE: Readonly<Record<string, EcHash>> = { prime256v1: 'sha256', secp384r1: 'sha384', secp521r1: 'sha512' };
const CURVE_NAME: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/**
 * The digest an OMS signature by `key` uses.
 * @throws CryptoError E_KEY_UNSUPPORTED for anything but an EC key on P-256, P-384 or P-521
 */
export function ecHashOf(key: KeyObject, where: string): EcHash {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const hash = key.asymmetricKeyType === 'ec' && curve !== undefined ? HASH_OF_CURVE[curve] : undefined;
  if (hash === undefined) {
    const what = key.asymmetricKeyType === 'ec' ? `an EC key on ${String(curve)}` : `a ${String(key.asymmetricKeyType)} key`;
    throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: OMS signatures need ECDSA on P-256, P-384 or P-521, this is ${what}`);
  }
  return hash;
}

/** "P-384" for a key on secp384r1. */
export function curveName(key: KeyObject): string {
  return CURVE_NAME[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? String(key.asymmetricKeyDetails?.namedCurve);
}

/** model_signing's key hint: hex(sha256(the SubjectPublicKeyInfo PEM text, final newline included)). */
export function keyHint(key: KeyObject): string {
  return createHash('sha256').update(key.export({ type: 'spki', format: 'pem' })).digest('hex');
}

/** True when `signature` (DER) is a valid signature of `data` by `key` with `hash`. Never throws. */
export function ecVerify(key: KeyObject, hash: EcHash, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return nodeVerify(hash, data, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

/**
 * A private key that signs OMS payloads. The private half lives in a private field: not
 * enumerable, not serialised by JSON.stringify, redacted by util.inspect. `certificates` are
 * DER certificates for the certificate method (the leaf, whose key is this key, then the chain).
 */
export class ModelSigner {
  readonly #key: KeyObject;
  readonly publicKey: KeyObject;
  readonly hash: EcHash;
  readonly certificates: readonly Buffer[] | undefined;

  private constructor(privateKey: KeyObject, publicKey: KeyObject, certificates: readonly Buffer[] | undefined, where: string) {
    this.#key = privateKey;
    this.publicKey = publicKey;
    this.hash = ecHashOf(publicKey, where);
    this.certificates = certificates;
  }

  /**
   * A signer from a node private key.
   * @throws CryptoError E_KEY_UNSUPPORTED (not ECDSA P-256/384/521), E_KEY_PRIVATE_EXPECTED
   */
  static fromKeyObject(privateKey: KeyObject, where = 'signing key'): ModelSigner {
    if (privateKey.type !== 'private') throw new CryptoError('E_KEY_PRIVATE_EXPECTED', `${where}: is a public key; signing needs the private key`);
    return new ModelSigner(privateKey, createPublicKey(privateKey), undefined, where);
  }

  /**
   * A signer from a key already loaded by the key-file loaders (a functionary's ECDSA key):
   * how a pipeline step signs a model with the key it holds, outside any sandbox.
   * @throws CryptoError E_KEY_UNSUPPORTED for an ed25519 or RSA key
   */
  static fromSigningKey(key: SigningKey, where = `key ${key.keyid.slice(0, 8)}`): ModelSigner {
    const material = key.exportPrivate();
    if (material.kind !== 'node') throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: OMS signatures need ECDSA on P-256, P-384 or P-521, this is an ed25519 key`);
    const publicMaterial = keyMaterial(key.public);
    const publicKey = publicMaterial.kind === 'node' ? publicMaterial.key : createPublicKey(material.key);
    return new ModelSigner(material.key, publicKey, undefined, where);
  }

  /**
   * The same key with a signing certificate and its chain (certificate method).
   * @throws CryptoError E_KEY_FORMAT when the certificate's key is not this key
   */
  withCertificates(leaf: Buffer, chain: readonly Buffer[], leafKey: KeyObject, where: string): ModelSigner {
    const ours = this.publicKey.export({ type: 'spki', format: 'der' });
    if (!ours.equals(leafKey.export({ type: 'spki', format: 'der' }))) {
      throw new CryptoError('E_KEY_FORMAT', `${where}: the certificate's public key is not the signing key's`);
    }
    return new ModelSigner(this.#key, this.publicKey, [leaf, ...chain], where);
  }

  /** Signs `data` (the DSSE PAE) with the curve's digest; DER-encoded. */
  sign(data: Uint8Array): Buffer {
    return nodeSign(this.hash, data, { key: this.#key, dsaEncoding: 'der' });
  }

  toJSON(): { publicKeyHint: string } {
    return { publicKeyHint: keyHint(this.publicKey) };
  }

  [inspect.custom](): string {
    return `ModelSigner(${curveName(this.publicKey)}, hint ${keyHint(this.publicKey).slice(0, 16)}..., private key redacted)`;
  }
}

const isJsonText = (bytes: Buffer): boolean => /^\s*\{/.test(bytes.subarray(0, 64).toString('latin1'));

/**
 * Loads a signing key: a PEM private key (SEC1 `EC PRIVATE KEY` or PKCS#8, optionally
 * encrypted) as openssl writes it, or our ECDSA key file (securesystemslib JSON, optionally
 * encrypted).
 * @throws IoError; CryptoError E_KEY_FORMAT, E_KEY_PASSWORD, E_KEY_UNSUPPORTED, E_KEY_PRIVATE_EXPECTED
 */
export function loadModelSigner(path: string, password?: string): ModelSigner {
  const bytes = readRegularFileSync(path, { maxBytes: LIMITS.keyBytes, what: 'key file' });
  const text = bytes.toString('utf8');
  if (isJsonText(bytes) || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    if (!isJsonText(bytes) && /-----BEGIN PUBLIC KEY-----/.test(text)) throw new CryptoError('E_KEY_PRIVATE_EXPECTED', `${path}: is a public key; signing needs the private key file`);
    return ModelSigner.fromSigningKey(loadSigningKeyFile(path, password === undefined ? {} : { password }), path);
  }
  // Parsed by crypto/pem.ts: OpenSSL never sees an encrypted PEM without its password, so it
  // can never prompt on the terminal (issue 19), and the key derivation is bounded first.
  const key = privateKeyFromPemText(text, password, path);
  return ModelSigner.fromKeyObject(key, path);
}

/**
 * Loads a public key to verify with: PEM (text before the PEM block, as certtool writes it, is
 * skipped), DER SubjectPublicKeyInfo, or our `.pub` file (securesystemslib JSON).
 * @throws IoError; CryptoError E_KEY_FORMAT, E_KEY_UNSUPPORTED, E_KEY_PUBLIC_EXPECTED
 */
export function loadModelPublicKey(path: string): KeyObject {
  const bytes = readRegularFileSync(path, { maxBytes: LIMITS.keyBytes, what: 'key file' });
  const text = bytes.toString('latin1');
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new CryptoError('E_KEY_PUBLIC_EXPECTED', `${path}: is a private key; verify with the public key`);
  }
  let key: KeyObject;
  if (isJsonText(bytes)) {
    const material = keyMaterial(loadPublicKeyFile(path));
    if (material.kind !== 'node') throw new CryptoError('E_KEY_UNSUPPORTED', `${path}: OMS signatures need ECDSA on P-256, P-384 or P-521, this is an ed25519 key`);
    key = material.key;
  } else {
    if (text.includes('-----BEGIN')) {
      key = publicKeyFromPemText(text, path); // never PEM text to OpenSSL: it could prompt
    } else {
      try {
        key = createPublicKey({ key: bytes, format: 'der', type: 'spki' });
      } catch (cause) {
        throw new CryptoError('E_KEY_FORMAT', `${path}: not a PEM or DER public key`, { cause });
      }
    }
  }
  ecHashOf(key, path);
  return key;
}

/**
 * A public key to verify with, given as PEM text rather than a file (`--public-key-pem`: how a
 * layout's model-verify inspection carries the key the layout owner signed). Parsed by our PEM
 * reader, never handed to OpenSSL as text.
 * @throws CryptoError E_KEY_FORMAT (not one PEM public key), E_KEY_PUBLIC_EXPECTED (a private
 *   key), E_KEY_UNSUPPORTED (not ECDSA P-256/384/521)
 */
export function modelPublicKeyFromPem(text: string, where: string): KeyObject {
  if (text.length > LIMITS.keyBytes) throw new CryptoError('E_KEY_FORMAT', `${where}: longer than a public key (${LIMITS.keyBytes} bytes)`);
  const key = publicKeyFromPemText(text, where);
  ecHashOf(key, where);
  return key;
}

/** Reads PEM certificates (one or more per file) as DER. @throws IoError; CryptoError E_KEY_FORMAT */
export function readPemCertificates(path: string): Buffer[] {
  const text = readRegularFileSync(path, { maxBytes: LIMITS.keyBytes * 16, what: 'certificate file' }).toString('latin1');
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  if (blocks.length === 0) throw new CryptoError('E_KEY_FORMAT', `${path}: holds no PEM certificate`);
  return blocks.map((m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}


/**
 * `signer` with the certificate of its key (`certificate`, PEM) and the chain above it
 * (`chain`, PEM files, issuer first), for the certificate method.
 * @throws IoError; CryptoError E_KEY_FORMAT (no certificate, or one for another key)
 */
export function withCertificateFiles(signer: ModelSigner, certificate: string, chain: readonly string[]): ModelSigner {
  const leaf = readPemCertificates(certificate)[0];
  if (leaf === undefined) throw new CryptoError('E_KEY_FORMAT', `${certificate}: holds no PEM certificate`);
  let leafKey: KeyObject;
  try {
    leafKey = new X509Certificate(leaf).publicKey;
  } catch (cause) {
    throw new CryptoError('E_KEY_FORMAT', `${certificate}: not a readable X.509 certificate`, { cause });
  }
  return signer.withCertificates(leaf, chain.flatMap(readPemCertificates), leafKey, certificate);
}

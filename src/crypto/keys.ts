import { createHash, type KeyObject } from 'node:crypto';
import { CryptoError } from '../errors.js';
import { canonicalBytes } from '../canonical/encode.js';
import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { bytesToHex, hexToBytes } from './encoding.js';
import { ed25519PublicKeyProblem, ED25519_KEY_BYTES } from './ed25519.js';
import { publicKeyFromPemText, spkiPemText } from './pem.js';

/**
 * Public keys in the securesystemslib form that layouts and key files use:
 * `{keytype, scheme, keyval: {public}, keyid_hash_algorithms?}` and keyid =
 * hex(sha256(canonical JSON of that object)). in-toto 1.3.1 includes
 * `keyid_hash_algorithms: ["sha256", "sha512"]` in the hashed object (the "legacy" form);
 * newer tools omit it. We hash exactly the fields the object carries, so both forms verify,
 * and a declared keyid that is not that hash is refused.
 *
 * The two keyid forms of one key ({@link KeyidForm}): in-toto 1.3.1's ("legacy": with
 * keyid_hash_algorithms, an RSA PEM without its final newline) and securesystemslib >= 0.28's,
 * which in-toto 2.x and 3.x use for PEM keys ("standard": compute_default_keyid over
 * {keytype, scheme, keyval} with the PEM that pyca/cryptography writes). Every key knows both,
 * so a key file matches a layout key under either; signatures are still verified with the key
 * material, never accepted on a keyid.
 */

export type KeyType = 'ed25519' | 'rsa' | 'ecdsa';
export type SignatureScheme = 'ed25519' | 'rsassa-pss-sha256' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ecdsa-sha2-nistp521';

/** in-toto 1.3.1's keyid ("legacy") or securesystemslib >= 0.28's, in-toto 2.x/3.x ("standard"). */
export type KeyidForm = 'legacy' | 'standard';
export const KEYID_FORMS: readonly KeyidForm[] = ['legacy', 'standard'];

/** The keyid_hash_algorithms in-toto 1.3.1 writes (and hashes into the keyid). */
export const LEGACY_KEYID_HASH_ALGORITHMS: readonly string[] = ['sha256', 'sha512'];

const SCHEMES: ReadonlyMap<KeyType, readonly SignatureScheme[]> = new Map<KeyType, readonly SignatureScheme[]>([
  ['ed25519', ['ed25519']],
  ['rsa', ['rsassa-pss-sha256']],
  ['ecdsa', ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521']],
]);

const CURVE_OF_SCHEME: Readonly<Record<string, string>> = {
  'ecdsa-sha2-nistp256': 'prime256v1',
  'ecdsa-sha2-nistp384': 'secp384r1',
  'ecdsa-sha2-nistp521': 'secp521r1',
};

/** The ECDSA scheme of each supported curve (OpenSSL's curve names). */
export const SCHEME_OF_CURVE: ReadonlyMap<string, SignatureScheme> = new Map([
  ['prime256v1', 'ecdsa-sha2-nistp256'],
  ['secp384r1', 'ecdsa-sha2-nistp384'],
  ['secp521r1', 'ecdsa-sha2-nistp521'],
]);

/** What a user reads for an unsupported curve. */
export function unsupportedCurve(curve: string | undefined, where: string, claimed?: string): CryptoError {
  const claim = claimed === undefined ? '' : ` (the key claims ${claimed})`;
  return new CryptoError(
    'E_KEY_UNSUPPORTED',
    `${where}: unsupported elliptic curve ${curve ?? 'unknown'}${claim}: ECDSA keys must be on NIST P-256, P-384 or P-521`,
  );
}

export const MIN_RSA_BITS = 2048;

export interface PublicKey {
  readonly keyid: string;
  readonly keytype: KeyType;
  readonly scheme: SignatureScheme;
  /** `keyval.public` exactly as written: lowercase hex for ed25519, PEM for rsa and ecdsa. */
  readonly publicValue: string;
  /** Present when the key object carries it (it is then part of the keyid). */
  readonly keyidHashAlgorithms: readonly string[] | undefined;
  /**
   * sha256 of the key material in one canonical encoding (raw bytes for ed25519, SPKI DER for
   * rsa/ecdsa). Equal for the same key whatever keyid, PEM wrapping or object form it comes
   * under: thresholds count distinct identities, not keyids.
   */
  readonly identity: string;
  /** The keyid of this key in each form (one of them is usually `keyid`). */
  readonly keyidForms: Readonly<Record<KeyidForm, string>>;
}

/** Parsed key material, kept out of the plain PublicKey value. */
export type KeyMaterial = { readonly kind: 'ed25519'; readonly raw: Uint8Array } | { readonly kind: 'node'; readonly key: KeyObject };

const materials = new WeakMap<PublicKey, KeyMaterial>();

/** The parsed material of a key made by this module. @throws CryptoError E_KEY_FORMAT */
export function keyMaterial(key: PublicKey): KeyMaterial {
  const material = materials.get(key);
  if (!material) throw new CryptoError('E_KEY_FORMAT', `key ${key.keyid}: not created by the key loader`);
  return material;
}

const KEY_OBJECT_FIELDS = new Set(['keyid', 'keyid_hash_algorithms', 'keytype', 'keyval', 'scheme']);

export interface KeyObjectOptions {
  /** Where the object came from, for messages ("layout keys", a file name). */
  readonly where: string;
  /** The keyid the object is filed under (a layout's `keys` map key); must equal the computed one. */
  readonly declaredKeyid?: string;
  /** Accept `keyval.private` (only when loading a private key file). */
  readonly allowPrivate?: boolean;
}

/**
 * Reads a securesystemslib public key object (from a layout's `keys` or a `.pub` file),
 * checks its type, scheme, material and keyid.
 * @throws CryptoError E_KEY_FORMAT, E_KEY_UNSUPPORTED, E_KEY_WEAK, E_KEYID_MISMATCH,
 *   E_KEY_PUBLIC_EXPECTED (private material where only a public key belongs)
 */
export function publicKeyFromObject(value: JsonValue, options: KeyObjectOptions): PublicKey {
  const { where } = options;
  const bad = (message: string): CryptoError => new CryptoError('E_KEY_FORMAT', `${where}: ${message}`);
  if (!isJsonObject(value)) throw bad('a key must be a JSON object');
  if (isGpgKeyObject(value)) throw gpgKeyObjectError(where);
  for (const field of Object.keys(value)) {
    if (!KEY_OBJECT_FIELDS.has(field)) throw bad(`unexpected field ${JSON.stringify(field)} in a key`);
  }
  const keytype = getOwn(value, 'keytype');
  const scheme = getOwn(value, 'scheme');
  const keyval = getOwn(value, 'keyval');
  if (typeof keytype !== 'string' || typeof scheme !== 'string') throw bad('keytype and scheme must be strings');
  if (!isJsonObject(keyval)) throw bad('keyval must be an object');
  for (const field of Object.keys(keyval)) {
    if (field !== 'public' && field !== 'private') throw bad(`unexpected field ${JSON.stringify(field)} in keyval`);
  }
  const publicValue = getOwn(keyval, 'public');
  const privateValue = getOwn(keyval, 'private');
  if (typeof publicValue !== 'string') throw bad('keyval.public must be a string');
  if (privateValue !== undefined) {
    if (typeof privateValue !== 'string') throw bad('keyval.private must be a string');
    // in-toto 1.3.1 writes RSA keys into layouts with "private": "": tolerated, nothing else.
    if (privateValue !== '' && !options.allowPrivate) {
      throw new CryptoError('E_KEY_PUBLIC_EXPECTED', `${where}: holds private key material where only a public key belongs`);
    }
  }
  const kha = getOwn(value, 'keyid_hash_algorithms');
  let keyidHashAlgorithms: readonly string[] | undefined;
  if (kha !== undefined) {
    if (!Array.isArray(kha) || !kha.every((a): a is string => typeof a === 'string')) {
      throw bad('keyid_hash_algorithms must be a list of strings');
    }
    keyidHashAlgorithms = Object.freeze([...kha]);
  }
  const { keytype: type, scheme: checkedScheme } = checkTypeAndScheme(keytype, scheme, where);
  const key = makePublicKey({ keytype: type, scheme: checkedScheme, publicValue, keyidHashAlgorithms }, where);
  const declared = getOwn(value, 'keyid');
  if (declared !== undefined && typeof declared !== 'string') throw bad('keyid must be a string');
  if (declared !== undefined && declared !== key.keyid) {
    throw new CryptoError('E_KEYID_MISMATCH', `${where}: declared keyid ${JSON.stringify(declared.slice(0, 80))} is not the hash of the key (${key.keyid})`, {
      context: { keyid: declared },
    });
  }
  if (options.declaredKeyid !== undefined && options.declaredKeyid !== key.keyid) {
    throw new CryptoError(
      'E_KEYID_MISMATCH',
      `${where}: key filed under keyid ${options.declaredKeyid} hashes to ${key.keyid}`,
      { context: { keyid: options.declaredKeyid } },
    );
  }
  return key;
}

/**
 * A GPG public key as in-toto writes it into layouts (`{keyid, type, method: "pgp+...",
 * hashes, keyval: {public: {...}}}`): recognised so that it is refused by name, not by a
 * schema error. Never throws.
 */
export function isGpgKeyObject(value: JsonValue): boolean {
  if (!isJsonObject(value)) return false;
  const method = getOwn(value, 'method');
  return (typeof method === 'string' && method.startsWith('pgp+')) || (getOwn(value, 'hashes') !== undefined && getOwn(value, 'type') !== undefined);
}

/** The refusal of a GPG key in metadata, naming what to use instead. */
export function gpgKeyObjectError(where: string): CryptoError {
  return new CryptoError(
    'E_KEY_UNSUPPORTED',
    `${where}: a GPG (OpenPGP) key: GPG keys are not supported; give the functionaries ed25519, RSA or ECDSA keys (intoto-keygen, or PEM keys from openssl) and re-sign the layout`,
  );
}

/** @throws CryptoError E_KEY_UNSUPPORTED naming the keytype or scheme and what is supported */
export function checkTypeAndScheme(keytype: string, scheme: string, where: string): { keytype: KeyType; scheme: SignatureScheme } {
  const schemes = SCHEMES.get(keytype as KeyType);
  if (!schemes) {
    const hint = /gpg|pgp/i.test(keytype) ? ' (GPG keys are not supported)' : '';
    throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: unsupported keytype ${JSON.stringify(keytype)}${hint}: supported are ed25519, rsa and ecdsa`);
  }
  if (!schemes.includes(scheme as SignatureScheme)) {
    throw new CryptoError(
      'E_KEY_UNSUPPORTED',
      `${where}: unsupported signature scheme ${JSON.stringify(scheme)} for keytype ${keytype}: supported are ${schemes.join(', ')}`,
    );
  }
  return { keytype: keytype as KeyType, scheme: scheme as SignatureScheme };
}

export interface PublicKeyFields {
  readonly keytype: KeyType;
  readonly scheme: SignatureScheme;
  readonly publicValue: string;
  readonly keyidHashAlgorithms: readonly string[] | undefined;
}

/**
 * Builds a PublicKey from checked fields: parses the material and computes keyid and identity.
 * @throws CryptoError E_KEY_FORMAT, E_KEY_WEAK, E_KEY_UNSUPPORTED
 */
export function makePublicKey(fields: PublicKeyFields, where: string): PublicKey {
  return withMaterial(fields, parseMaterial(fields, where));
}

function withMaterial(fields: PublicKeyFields, material: KeyMaterial): PublicKey {
  const bytes = materialBytes(material);
  const identity = createHash('sha256').update(bytes).digest('hex');
  const key: PublicKey = Object.freeze({
    keyid: computeKeyid(fields),
    keytype: fields.keytype,
    scheme: fields.scheme,
    publicValue: fields.publicValue,
    keyidHashAlgorithms: fields.keyidHashAlgorithms,
    identity,
    keyidForms: Object.freeze({
      legacy: computeKeyid(formFields(fields, bytes, 'legacy')),
      standard: computeKeyid(formFields(fields, bytes, 'standard')),
    }),
  });
  materials.set(key, material);
  return key;
}

/** The fields of a key in one keyid form, from its material (`bytes`: raw ed25519 or SPKI DER). */
function formFields(fields: PublicKeyFields, bytes: Uint8Array, form: KeyidForm): PublicKeyFields {
  const pem = fields.keytype === 'ed25519' ? fields.publicValue : spkiPemText(bytes);
  // in-toto 1.3.1 (securesystemslib 0.26) keeps an RSA PEM from BEGIN to END, without the
  // final newline; its ECDSA PEMs, and every PEM of securesystemslib >= 0.28, end with one.
  const publicValue = form === 'legacy' && fields.keytype === 'rsa' ? pem.trimEnd() : pem;
  return { keytype: fields.keytype, scheme: fields.scheme, publicValue, keyidHashAlgorithms: form === 'legacy' ? LEGACY_KEYID_HASH_ALGORITHMS : undefined };
}

/**
 * The same key under the keyid of `form` (the fields that form hashes, the same material).
 * Never throws.
 */
export function publicKeyInForm(key: PublicKey, form: KeyidForm): PublicKey {
  if (key.keyid === key.keyidForms[form]) return key;
  const material = keyMaterial(key);
  return withMaterial(formFields(key, materialBytes(material), form), material);
}

/** True when `keyid` names `key` in the form it was read in or in either keyid form. */
export function keyHasKeyid(key: PublicKey, keyid: string): boolean {
  return keyid === key.keyid || keyid === key.keyidForms.legacy || keyid === key.keyidForms.standard;
}

/** The object whose canonical JSON is hashed into the keyid (and written to layouts and .pub files). */
export function keyidObject(fields: PublicKeyFields): JsonObject {
  const object: Record<string, JsonValue> = {
    keytype: fields.keytype,
    scheme: fields.scheme,
    keyval: { public: fields.publicValue },
  };
  if (fields.keyidHashAlgorithms !== undefined) object['keyid_hash_algorithms'] = [...fields.keyidHashAlgorithms];
  return object;
}

/** keyid = hex(sha256(canonical JSON of {@link keyidObject})). */
export function computeKeyid(fields: PublicKeyFields): string {
  return createHash('sha256').update(canonicalBytes(keyidObject(fields))).digest('hex');
}

/** The key object as a layout's `keys` map holds it (with its keyid). */
export function publicKeyToObject(key: PublicKey): JsonObject {
  return { ...keyidObject(key), keyid: key.keyid };
}

function parseMaterial(fields: PublicKeyFields, where: string): KeyMaterial {
  if (fields.keytype === 'ed25519') {
    const raw = hexToBytes(fields.publicValue, ED25519_KEY_BYTES);
    if (!raw) throw new CryptoError('E_KEY_FORMAT', `${where}: ed25519 public key must be 64 lowercase hex digits`);
    const problem = ed25519PublicKeyProblem(raw);
    if (problem) throw new CryptoError('E_KEY_WEAK', `${where}: ed25519 public key ${problem}`);
    return { kind: 'ed25519', raw };
  }
  // Parsed by pem.ts: OpenSSL never sees PEM text here, so it can never prompt.
  const key = publicKeyFromPemText(fields.publicValue, `${where}: keyval.public`);
  checkNodeKey(key, fields.keytype, fields.scheme, where);
  return { kind: 'node', key };
}

/** Checks a node KeyObject is of the expected type, size and curve. @throws CryptoError */
export function checkNodeKey(key: KeyObject, keytype: KeyType, scheme: SignatureScheme, where: string): void {
  const details = key.asymmetricKeyDetails ?? {};
  if (keytype === 'rsa') {
    if (key.asymmetricKeyType !== 'rsa') {
      throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: expected an RSA key, found ${String(key.asymmetricKeyType)}`);
    }
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) {
      throw new CryptoError('E_KEY_WEAK', `${where}: RSA key of ${details.modulusLength ?? 0} bits, under ${MIN_RSA_BITS}`);
    }
  } else if (keytype === 'ecdsa') {
    if (key.asymmetricKeyType !== 'ec') {
      throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: expected an ECDSA key, found ${String(key.asymmetricKeyType)}`);
    }
    if (!SCHEME_OF_CURVE.has(details.namedCurve ?? '')) throw unsupportedCurve(details.namedCurve, where, scheme);
    if (details.namedCurve !== CURVE_OF_SCHEME[scheme]) {
      throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: the key is on curve ${String(details.namedCurve)}, which does not fit scheme ${scheme} (${SCHEME_OF_CURVE.get(details.namedCurve ?? '') ?? ''} would)`);
    }
  } else if (key.asymmetricKeyType !== 'ed25519') {
    throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: expected an ed25519 key, found ${String(key.asymmetricKeyType)}`);
  }
}

function materialBytes(material: KeyMaterial): Uint8Array {
  return material.kind === 'ed25519' ? material.raw : material.key.export({ type: 'spki', format: 'der' });
}

/** Raw 32-byte ed25519 public key from a node KeyObject. */
export function ed25519RawFromKeyObject(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
}

/** Lowercase hex of the raw ed25519 public key. */
export function ed25519PublicHex(raw: Uint8Array): string {
  return bytesToHex(raw);
}

/** The first 8 hex digits of a keyid, as used in link file names. */
export function keyidPrefix(keyid: string): string {
  return keyid.slice(0, 8);
}

import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CryptoError, InTotoError } from '../errors.js';
import { parseJson } from '../canonical/parse.js';
import { getOwn, isJsonObject, type JsonValue } from '../canonical/json.js';
import { LIMITS, readRegularFileSync, writeFileAtomicSync } from '../io/files.js';
import { bytesToHex, hexToBytes } from './encoding.js';
import { ed25519PublicKey, ed25519RandomSeed, ED25519_KEY_BYTES } from './ed25519.js';
import {
  checkNodeKey,
  ed25519RawFromKeyObject,
  keyMaterial,
  LEGACY_KEYID_HASH_ALGORITHMS,
  makePublicKey,
  publicKeyFromObject,
  SCHEME_OF_CURVE,
  unsupportedCurve,
  type KeyType,
  type PublicKey,
  type PublicKeyFields,
} from './keys.js';
import { gpgKeyError, privateKeyBlock, privateKeyFromPemText, publicKeyFromPemText } from './pem.js';
import { SigningKey } from './signatures.js';
import { checkSslibEncryptedKey, decryptSslibKey, encryptSslibKey, isEncryptedSslibKey } from './sslib-encryption.js';

/**
 * Key files, read and written as the reference's tools do:
 * - securesystemslib JSON (in-toto-keygen -t ed25519 / -t ecdsa), optionally encrypted
 *   with securesystemslib's PBKDF2 + AES-256-CTR + HMAC format;
 * - PEM: RSA (PKCS#1 "RSA PRIVATE KEY" as in-toto-keygen -t rsa writes, PKCS#8, SPKI),
 *   ECDSA and ed25519 (PKCS#8 private, SPKI public).
 * The key type is detected from the file; callers' `-t` flags are accepted for compatibility
 * and checked against what was found.
 */

export interface LoadKeyOptions {
  /** Password for an encrypted private key. */
  readonly password?: string;
  /** A key type the user named with `-t`; a file of another type is an error. */
  readonly expectedType?: KeyType;
}

type Detected = { readonly format: 'json'; readonly value: JsonValue } | { readonly format: 'encrypted-json' } | { readonly format: 'pem'; readonly text: string };

function readKeyFile(path: string): { text: string; detected: Detected } {
  const bytes = readRegularFileSync(path, { maxBytes: LIMITS.keyBytes, what: 'key file' });
  const text = bytes.toString('utf8');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    try {
      return { text, detected: { format: 'json', value: parseJson(bytes, { source: path }) } };
    } catch (cause) {
      throw new CryptoError('E_KEY_FORMAT', `${path}: not a valid JSON key file`, { cause, context: { file: path } });
    }
  }
  if (isEncryptedSslibKey(trimmed)) {
    // Its parameters (the PBKDF2 iteration count above all) are checked before anything else
    // is done with the file: before a password is asked for, before a command runs.
    checkSslibEncryptedKey(trimmed, path);
    return { text, detected: { format: 'encrypted-json' } };
  }
  if (/-----BEGIN PGP /.test(trimmed)) throw gpgKeyError(path);
  if (trimmed.includes('-----BEGIN ')) return { text, detected: { format: 'pem', text: trimmed } };
  throw new CryptoError('E_KEY_FORMAT', `${path}: not a key file (expected securesystemslib JSON or PEM)`, {
    context: { file: path },
  });
}

function checkExpectedType(found: KeyType, options: LoadKeyOptions, path: string): void {
  if (options.expectedType !== undefined && options.expectedType !== found) {
    throw new CryptoError('E_KEY_UNSUPPORTED', `${path}: -t ${options.expectedType} given, but the file holds an ${found} key`, {
      context: { file: path },
    });
  }
}

function withFile<T>(path: string, action: () => T): T {
  try {
    return action();
  } catch (error) {
    if (error instanceof InTotoError && error.context.file === undefined) throw error.withContext('', { file: path });
    throw error;
  }
}

/**
 * Loads a public key file (`.pub` JSON, or a PEM public key).
 * @throws IoError; CryptoError E_KEY_FORMAT, E_KEY_UNSUPPORTED, E_KEY_WEAK, E_KEYID_MISMATCH,
 *   E_KEY_PUBLIC_EXPECTED (a private key file: pass the .pub file to a verifier)
 */
export function loadPublicKeyFile(path: string, options: LoadKeyOptions = {}): PublicKey {
  return withFile(path, () => {
    const { detected } = readKeyFile(path);
    let key: PublicKey;
    if (detected.format === 'json') {
      key = publicKeyFromObject(detected.value, { where: path });
    } else if (detected.format === 'encrypted-json') {
      throw new CryptoError('E_KEY_PUBLIC_EXPECTED', `${path}: is an encrypted private key; pass the public key file (.pub)`);
    } else {
      key = publicKeyFromPem(detected.text, path);
    }
    checkExpectedType(key.keytype, options, path);
    return key;
  });
}

/**
 * Whether a private key file is encrypted (securesystemslib's encrypted JSON, or an encrypted
 * PEM), so a caller can ask for the password before it needs the key.
 * @throws IoError; CryptoError E_KEY_FORMAT (not a key file)
 */
export function isEncryptedKeyFile(path: string): boolean {
  return withFile(path, () => {
    const { detected } = readKeyFile(path);
    // Checked whole (an encrypted PEM's key derivation bounded) without decrypting, so nobody
    // is asked for the password of a key that would be refused anyway.
    if (detected.format === 'pem') return privateKeyBlock(detected.text, path).encrypted;
    return detected.format === 'encrypted-json';
  });
}

/**
 * Loads a private key file for signing.
 * @throws IoError; CryptoError E_KEY_FORMAT, E_KEY_UNSUPPORTED, E_KEY_WEAK, E_KEYID_MISMATCH,
 *   E_KEY_PASSWORD (encrypted and no or a wrong password), E_KEY_PRIVATE_EXPECTED (a .pub file)
 */
export function loadSigningKeyFile(path: string, options: LoadKeyOptions = {}): SigningKey {
  return withFile(path, () => {
    const { text, detected } = readKeyFile(path);
    let key: SigningKey;
    if (detected.format === 'json') {
      key = signingKeyFromJson(detected.value, path);
    } else if (detected.format === 'encrypted-json') {
      if (options.password === undefined || options.password === '') {
        throw new CryptoError('E_KEY_PASSWORD', `${path}: the key is encrypted; give its password (-P, or -p to be prompted)`);
      }
      const plain = decryptSslibKey(text.trim(), options.password, path);
      key = signingKeyFromJson(parseJson(plain, { source: path }), path);
    } else {
      key = signingKeyFromPem(detected.text, options.password, path);
    }
    checkExpectedType(key.public.keytype, options, path);
    return key;
  });
}

function signingKeyFromJson(value: JsonValue, path: string): SigningKey {
  const publicKey = publicKeyFromObject(value, { where: path, allowPrivate: true });
  const keyval = isJsonObject(value) ? getOwn(value, 'keyval') : undefined;
  const privateValue = isJsonObject(keyval) ? getOwn(keyval, 'private') : undefined;
  if (typeof privateValue !== 'string' || privateValue === '') {
    throw new CryptoError('E_KEY_PRIVATE_EXPECTED', `${path}: holds no private key (is it the .pub file?)`);
  }
  if (publicKey.keytype === 'ed25519') {
    const seed = hexToBytes(privateValue, ED25519_KEY_BYTES);
    if (!seed) throw new CryptoError('E_KEY_FORMAT', `${path}: ed25519 private key must be 64 lowercase hex digits`);
    if (bytesToHex(ed25519PublicKey(seed)) !== publicKey.publicValue) {
      throw new CryptoError('E_KEY_FORMAT', `${path}: the public and private halves of the key do not match`);
    }
    return new SigningKey(publicKey, { kind: 'ed25519', seed });
  }
  const privateKey = privateKeyFromPemText(privateValue, undefined, `${path}: keyval.private`);
  const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const material = keyMaterial(publicKey);
  const declared = material.kind === 'node' ? material.key.export({ type: 'spki', format: 'der' }) : undefined;
  if (declared === undefined || !derived.equals(declared)) {
    throw new CryptoError('E_KEY_FORMAT', `${path}: the public and private halves of the key do not match`);
  }
  checkNodeKey(privateKey, publicKey.keytype, publicKey.scheme, path);
  return new SigningKey(publicKey, { kind: 'node', key: privateKey });
}


/** The securesystemslib fields of a node public key (keyid in the in-toto 1.3.1 legacy form). */
function fieldsOfNodeKey(key: KeyObject, path: string, rsaPem?: string): PublicKeyFields {
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') {
    return { keytype: 'ed25519', scheme: 'ed25519', publicValue: bytesToHex(ed25519RawFromKeyObject(key)), keyidHashAlgorithms: LEGACY_KEYID_HASH_ALGORITHMS };
  }
  if (type === 'rsa') {
    // securesystemslib keeps the PEM text from BEGIN to END, CRLF folded, without the final newline.
    const pem = rsaPem ?? spkiPem(key).trimEnd();
    return { keytype: 'rsa', scheme: 'rsassa-pss-sha256', publicValue: pem, keyidHashAlgorithms: LEGACY_KEYID_HASH_ALGORITHMS };
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const scheme = SCHEME_OF_CURVE.get(curve ?? '');
    if (!scheme) throw unsupportedCurve(curve, path);
    // securesystemslib writes ECDSA public PEMs with their final newline.
    return { keytype: 'ecdsa', scheme, publicValue: spkiPem(key), keyidHashAlgorithms: LEGACY_KEYID_HASH_ALGORITHMS };
  }
  throw new CryptoError('E_KEY_UNSUPPORTED', `${path}: unsupported key type ${String(type)}`);
}

function spkiPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

const PUBLIC_PEM = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/;

function publicKeyFromPem(text: string, path: string): PublicKey {
  const key = publicKeyFromPemText(text, path);
  // in-toto 1.3.1 hashes an RSA key's PEM text as the file has it, from BEGIN to END.
  const extracted = PUBLIC_PEM.exec(text)?.[0]?.replace(/\r\n/g, '\n');
  const fields = fieldsOfNodeKey(key, path, key.asymmetricKeyType === 'rsa' ? extracted : undefined);
  return makePublicKey(fields, path);
}

function signingKeyFromPem(text: string, password: string | undefined, path: string): SigningKey {
  const privateKey = privateKeyFromPemText(text, password, path);
  const fields = fieldsOfNodeKey(createPublicKey(privateKey), path);
  const publicKey = makePublicKey(fields, path);
  if (publicKey.keytype === 'ed25519') {
    const jwk = privateKey.export({ format: 'jwk' });
    return new SigningKey(publicKey, { kind: 'ed25519', seed: new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url')) });
  }
  return new SigningKey(publicKey, { kind: 'node', key: privateKey });
}

// ---------------------------------------------------------------------------------------------
// Generation and writing

export interface GenerateOptions {
  readonly type: KeyType;
  /** RSA modulus size (default 3072, as in-toto-keygen). */
  readonly bits?: number;
}

/**
 * Generates a key pair. ed25519 seeds come from the OS CSPRNG.
 * @throws CryptoError E_KEY_WEAK for an RSA size under 2048 bits
 */
export function generateSigningKey(options: GenerateOptions): SigningKey {
  if (options.type === 'ed25519') {
    const seed = ed25519RandomSeed();
    const publicKey = makePublicKey(
      { keytype: 'ed25519', scheme: 'ed25519', publicValue: bytesToHex(ed25519PublicKey(seed)), keyidHashAlgorithms: LEGACY_KEYID_HASH_ALGORITHMS },
      'generated key',
    );
    return new SigningKey(publicKey, { kind: 'ed25519', seed });
  }
  if (options.type === 'rsa') {
    const bits = options.bits ?? 3072;
    if (!Number.isSafeInteger(bits) || bits < 2048 || bits > 16384) {
      throw new CryptoError('E_KEY_WEAK', `RSA key size must be an integer from 2048 to 16384 bits, got ${bits}`);
    }
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 });
    return new SigningKey(makePublicKey(fieldsOfNodeKey(createPublicKey(privateKey), 'generated key'), 'generated key'), { kind: 'node', key: privateKey });
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return new SigningKey(makePublicKey(fieldsOfNodeKey(createPublicKey(privateKey), 'generated key'), 'generated key'), { kind: 'node', key: privateKey });
}

/** `"a": "b"` pairs in Python's default `json.dumps` style (separators ", " and ": "). */
function pyDict(entries: readonly (readonly [string, string])[]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(', ')}}`;
}
const pyStr = (s: string): string => JSON.stringify(s);
const pyList = (items: readonly string[]): string => `[${items.map(pyStr).join(', ')}]`;

/** The `.pub` file text exactly as in-toto-keygen writes it. */
export function publicKeyFileText(key: PublicKey): string {
  if (key.keytype === 'rsa') return key.publicValue;
  return pyDict([
    ['keytype', pyStr(key.keytype)],
    ['scheme', pyStr(key.scheme)],
    ['keyid_hash_algorithms', pyList(key.keyidHashAlgorithms ?? LEGACY_KEYID_HASH_ALGORITHMS)],
    ['keyval', pyDict([['public', pyStr(key.publicValue)]])],
  ]);
}

/** The private key file text as in-toto-keygen writes it (before optional encryption). */
function privateKeyFileText(key: SigningKey): string {
  const material = key.exportPrivate();
  const pub = key.public;
  if (material.kind === 'ed25519') {
    return pyDict([
      ['keytype', pyStr('ed25519')],
      ['scheme', pyStr('ed25519')],
      ['keyid', pyStr(pub.keyid)],
      ['keyid_hash_algorithms', pyList(pub.keyidHashAlgorithms ?? LEGACY_KEYID_HASH_ALGORITHMS)],
      ['keyval', pyDict([['public', pyStr(pub.publicValue)], ['private', pyStr(bytesToHex(material.seed))]])],
    ]);
  }
  if (pub.keytype === 'ecdsa') {
    const privatePem = material.key.export({ type: 'sec1', format: 'pem' }).toString();
    return pyDict([
      ['keytype', pyStr('ecdsa')],
      ['scheme', pyStr(pub.scheme)],
      ['keyid', pyStr(pub.keyid)],
      ['keyval', pyDict([['public', pyStr(pub.publicValue)], ['private', pyStr(privatePem)]])],
      ['keyid_hash_algorithms', pyList(pub.keyidHashAlgorithms ?? LEGACY_KEYID_HASH_ALGORITHMS)],
    ]);
  }
  return material.key.export({ type: 'pkcs1', format: 'pem' }).toString().trimEnd();
}

/**
 * Writes `path` (private, mode 0600) and `path.pub` as in-toto-keygen does. With a password,
 * ed25519/ecdsa keys use securesystemslib's encrypted format and RSA keys an encrypted PEM
 * (AES-256-CBC), both readable by the reference.
 * @throws IoError E_IO
 */
export function writeKeyPair(key: SigningKey, path: string, password?: string): void {
  let privateText: string;
  const material = key.exportPrivate();
  if (password !== undefined && password !== '') {
    if (key.public.keytype === 'rsa' && material.kind === 'node') {
      privateText = material.key.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: password }).toString().trimEnd();
    } else {
      privateText = encryptSslibKey(privateKeyFileText(key), password);
    }
  } else {
    privateText = privateKeyFileText(key);
  }
  writeFileAtomicSync(path, privateText, 0o600);
  writeFileAtomicSync(`${path}.pub`, publicKeyFileText(key.public), 0o644);
}

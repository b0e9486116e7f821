import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { CryptoError } from '../errors.js';
import { MAX_KDF_ITERATIONS } from './pem.js';

/**
 * securesystemslib's encrypted key format (rsa_keys.encrypt_key / decrypt_key), used by
 * `in-toto-keygen -p` for ed25519 and ecdsa keys:
 *   hex(salt) @@@@ iterations @@@@ hex(hmac) @@@@ hex(iv) @@@@ hex(ciphertext)
 * key = PBKDF2-HMAC-SHA256(password, salt, iterations, 32 bytes); ciphertext =
 * AES-256-CTR(key, iv, JSON text); hmac = HMAC-SHA256(key, ciphertext), checked before
 * decrypting.
 */

const DELIMITER = '@@@@';
const SALT_BYTES = 16;
const IV_BYTES = 16;
const ITERATIONS = 100_000;

const ENCRYPTED = /^[0-9a-f]+@@@@[0-9]+@@@@[0-9a-f]{64}@@@@[0-9a-f]{32}@@@@[0-9a-f]+$/;

/** True when `text` has the shape of an encrypted securesystemslib key. */
export function isEncryptedSslibKey(text: string): boolean {
  return ENCRYPTED.test(text);
}

/** Encrypts key JSON text with a fresh salt and IV. */
export function encryptSslibKey(plaintext: string, password: string): string {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const key = pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256');
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const hmac = createHmac('sha256', key).update(ciphertext).digest('hex');
  return [salt.toString('hex'), String(ITERATIONS), hmac, iv.toString('hex'), ciphertext.toString('hex')].join(DELIMITER);
}

interface Parts {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly hmac: Buffer;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
}

/**
 * Checks an encrypted key's every parameter (form, lengths, the PBKDF2 iteration count under
 * its cap) without deriving anything: called when the file is first read, so a hostile file
 * is refused before a password is asked for or a command runs, never after seconds of PBKDF2.
 * @throws CryptoError E_KEY_FORMAT
 */
export function checkSslibEncryptedKey(text: string, where: string): void {
  partsOf(text, where);
}

function partsOf(text: string, where: string): Parts {
  const parts = text.split(DELIMITER);
  const [saltHex, iterationsText, hmacHex, ivHex, ciphertextHex] = parts;
  if (parts.length !== 5 || !saltHex || !iterationsText || !hmacHex || !ivHex || !ciphertextHex || !isEncryptedSslibKey(text)) {
    throw new CryptoError('E_KEY_FORMAT', `${where}: malformed encrypted key`);
  }
  if (saltHex.length % 2 || ciphertextHex.length % 2) throw new CryptoError('E_KEY_FORMAT', `${where}: malformed encrypted key (odd-length hex)`);
  const iterations = /^[1-9][0-9]{0,15}$/.test(iterationsText) ? Number(iterationsText) : Number.NaN;
  if (!Number.isSafeInteger(iterations) || iterations > MAX_KDF_ITERATIONS) {
    throw new CryptoError('E_KEY_FORMAT', `${where}: encrypted key asks for ${iterationsText.slice(0, 20)} PBKDF2 iterations; at most ${MAX_KDF_ITERATIONS} are accepted`);
  }
  return {
    salt: Buffer.from(saltHex, 'hex'),
    iterations,
    hmac: Buffer.from(hmacHex, 'hex'),
    iv: Buffer.from(ivHex, 'hex'),
    ciphertext: Buffer.from(ciphertextHex, 'hex'),
  };
}

/**
 * Decrypts; a wrong password fails the HMAC check.
 * @throws CryptoError E_KEY_PASSWORD (wrong password), E_KEY_FORMAT (malformed)
 */
export function decryptSslibKey(text: string, password: string, where: string): string {
  const { salt, iterations, hmac, iv, ciphertext } = partsOf(text, where);
  const key = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const expected = createHmac('sha256', key).update(ciphertext).digest();
  if (!timingSafeEqual(expected, hmac)) {
    throw new CryptoError('E_KEY_PASSWORD', `${where}: wrong password for the encrypted key`);
  }
  const decipher = createDecipheriv('aes-256-ctr', key, iv);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
}

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { CryptoError } from '../errors.js';
import { pkcs8KeyDerivation, type KeyDerivation } from './der.js';

/**
 * PEM read by us, never by OpenSSL's PEM reader where a prompt could follow. OpenSSL asks for
 * a pass phrase on the terminal when it meets encryption headers it has no pass phrase for
 * (a `PUBLIC KEY` block with `Proc-Type: 4,ENCRYPTED` blocks `createPublicKey` at a terminal
 * forever). So every block is parsed here first: public keys reach OpenSSL only as DER
 * (`spki` or `pkcs1`), which has no room for encryption, and private keys as DER too, except
 * the legacy encrypted form (its DEK-Info header has no DER equivalent), which is handed over
 * with the password given, never without one. A prompt is impossible by construction.
 *
 * The key derivation of an encrypted PKCS#8 key is read from its DER and bounded before
 * OpenSSL runs it (see {@link checkKeyDerivation}).
 */

export interface PemBlock {
  readonly label: string;
  /** RFC 1421 headers (`Proc-Type`, `DEK-Info`), by name. */
  readonly headers: ReadonlyMap<string, string>;
  readonly der: Uint8Array;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]{1,40})-----/g;
const MAX_BLOCKS = 8;

/** The PBKDF2 (and PBE) iteration count above which a key is refused unread. */
export const MAX_KDF_ITERATIONS = 10_000_000;
/** scrypt: at most 256 MiB of memory (128 * N * r * p bytes) and N up to 2^20. */
const MAX_SCRYPT_BYTES = 256 * 1024 * 1024;

function formatError(where: string, message: string): CryptoError {
  return new CryptoError('E_KEY_FORMAT', `${where}: ${message}`);
}

/**
 * Every PEM block in `text` (text around them is ignored, as OpenSSL ignores it).
 * @throws CryptoError E_KEY_FORMAT for a block whose END does not match, bad headers or base64
 */
function pemBlocks(text: string, where: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    const [, label, body, endLabel] = match as unknown as [string, string, string, string];
    if (label !== endLabel) throw formatError(where, `PEM block BEGIN ${label} ends with END ${endLabel}`);
    if (blocks.length === MAX_BLOCKS) throw formatError(where, `more than ${MAX_BLOCKS} PEM blocks`);
    blocks.push(readBody(label, body, where));
  }
  return blocks;
}

function readBody(label: string, body: string, where: string): PemBlock {
  const lines = body.split(/\r?\n/);
  const headers = new Map<string, string>();
  // RFC 1421 headers: "Name: value" lines, then one empty line.
  if (lines[0]?.includes(':')) {
    while (lines.length > 0 && lines[0] !== '') {
      const line = lines.shift() as string;
      const colon = line.indexOf(':');
      if (colon < 1) throw formatError(where, `malformed header line in the PEM block ${label}`);
      headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    lines.shift();
  }
  const base64 = lines.join('').replace(/[ \t]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0 || base64.length === 0) {
    throw formatError(where, `the PEM block ${label} is not valid base64`);
  }
  return { label, headers, der: new Uint8Array(Buffer.from(base64, 'base64')) };
}

/** True when the block is encrypted: PKCS#8 `ENCRYPTED PRIVATE KEY`, or legacy headers. */
function isEncryptedBlock(block: PemBlock): boolean {
  return block.label === 'ENCRYPTED PRIVATE KEY' || /ENCRYPTED/i.test(block.headers.get('Proc-Type') ?? '') || block.headers.has('DEK-Info');
}

const PUBLIC_LABELS: ReadonlyMap<string, 'spki' | 'pkcs1'> = new Map([
  ['PUBLIC KEY', 'spki'],
  ['RSA PUBLIC KEY', 'pkcs1'],
]);
const PRIVATE_LABELS: ReadonlyMap<string, 'pkcs8' | 'pkcs1' | 'sec1'> = new Map([
  ['PRIVATE KEY', 'pkcs8'],
  ['RSA PRIVATE KEY', 'pkcs1'],
  ['EC PRIVATE KEY', 'sec1'],
  ['ENCRYPTED PRIVATE KEY', 'pkcs8'],
]);

/**
 * The one public key in PEM `text`, as a node KeyObject, OpenSSL given only its DER.
 * @throws CryptoError E_KEY_PUBLIC_EXPECTED (a private key, encrypted or not),
 *   E_KEY_UNSUPPORTED (a certificate), E_KEY_FORMAT (anything else, encryption headers on
 *   a public key included)
 */
export function publicKeyFromPemText(text: string, where: string): KeyObject {
  const blocks = pemBlocks(text, where);
  if (blocks.some((b) => PRIVATE_LABELS.has(b.label))) {
    const encrypted = blocks.some(isEncryptedBlock) ? 'an encrypted private key' : 'a private key';
    throw new CryptoError('E_KEY_PUBLIC_EXPECTED', `${where}: holds ${encrypted} where a public key belongs; pass the public key (.pub)`);
  }
  if (blocks.some((b) => b.label === 'CERTIFICATE')) {
    throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: an X.509 certificate, not a public key (extract it with 'openssl x509 -pubkey -noout')`);
  }
  if (blocks.some((b) => /PGP/.test(b.label))) throw gpgKeyError(where);
  const keys = blocks.filter((b) => PUBLIC_LABELS.has(b.label));
  if (keys.length !== 1) throw formatError(where, keys.length === 0 ? 'no PEM public key (BEGIN PUBLIC KEY)' : 'more than one PEM public key');
  const block = keys[0] as PemBlock;
  if (block.headers.size > 0) throw formatError(where, `the PEM public key carries headers (${[...block.headers.keys()].join(', ')}): a public key is never encrypted`);
  try {
    return createPublicKey({ key: Buffer.from(block.der), format: 'der', type: PUBLIC_LABELS.get(block.label) as 'spki' | 'pkcs1' });
  } catch (cause) {
    throw new CryptoError('E_KEY_FORMAT', `${where}: not a readable PEM public key`, { cause });
  }
}

/** The refusal of a GPG key, naming what to use instead. */
export function gpgKeyError(where: string): CryptoError {
  return new CryptoError(
    'E_KEY_UNSUPPORTED',
    `${where}: a GPG (OpenPGP) key: GPG keys are not supported; use an ed25519, RSA or ECDSA key file (intoto-keygen, or PEM from openssl)`,
  );
}

/**
 * Bounds a key derivation before OpenSSL (or we) run it.
 * @throws CryptoError E_KEY_FORMAT naming the parameter over its cap
 */
function checkKeyDerivation(derivation: KeyDerivation, where: string): void {
  if (derivation.kind === 'scrypt') {
    const { cost, blockSize, parallelization } = derivation;
    const bytes = 128 * cost * blockSize * parallelization;
    if (cost < 2 || cost > 2 ** 20 || blockSize < 1 || parallelization < 1 || !(bytes <= MAX_SCRYPT_BYTES)) {
      throw formatError(where, `scrypt parameters N=${cost} r=${blockSize} p=${parallelization} are over the cap (N <= 2^20, at most ${MAX_SCRYPT_BYTES / 1024 / 1024} MiB)`);
    }
    return;
  }
  if (derivation.iterations < 1 || derivation.iterations > MAX_KDF_ITERATIONS) {
    throw formatError(where, `${derivation.iterations} key derivation iterations, over the cap of ${MAX_KDF_ITERATIONS}`);
  }
}

/**
 * The one private key block in PEM `text`, checked without OpenSSL: no GPG, exactly one key,
 * no stray headers, and for an encrypted PKCS#8 key a key derivation within its caps. Nothing
 * is decrypted.
 * @throws CryptoError E_KEY_PRIVATE_EXPECTED (a public key), E_KEY_UNSUPPORTED (GPG, an
 *   unknown encryption scheme), E_KEY_FORMAT
 */
export function privateKeyBlock(text: string, where: string): { block: PemBlock; encrypted: boolean } {
  const blocks = pemBlocks(text, where);
  if (blocks.some((b) => /PGP/.test(b.label))) throw gpgKeyError(where);
  const keys = blocks.filter((b) => PRIVATE_LABELS.has(b.label));
  if (keys.length === 0) {
    if (blocks.some((b) => PUBLIC_LABELS.has(b.label))) {
      throw new CryptoError('E_KEY_PRIVATE_EXPECTED', `${where}: is a public key; signing needs the private key file`);
    }
    throw formatError(where, 'no PEM private key');
  }
  if (keys.length > 1) throw formatError(where, 'more than one PEM private key');
  const block = keys[0] as PemBlock;
  const encrypted = isEncryptedBlock(block);
  if (!encrypted && block.headers.size > 0) throw formatError(where, `unexpected PEM headers (${[...block.headers.keys()].join(', ')})`);
  if (block.label === 'ENCRYPTED PRIVATE KEY') checkKeyDerivation(pkcs8KeyDerivation(block.der, where), where);
  return { block, encrypted };
}

/**
 * The one private key in PEM `text`. An encrypted key needs `password` (refused before
 * OpenSSL sees it otherwise); its key derivation is bounded first.
 * @throws CryptoError E_KEY_PASSWORD (encrypted, no or a wrong password), E_KEY_PRIVATE_EXPECTED
 *   (a public key), E_KEY_UNSUPPORTED, E_KEY_FORMAT
 */
export function privateKeyFromPemText(text: string, password: string | undefined, where: string): KeyObject {
  const { block, encrypted } = privateKeyBlock(text, where);
  const type = PRIVATE_LABELS.get(block.label) as 'pkcs8' | 'pkcs1' | 'sec1';
  if (encrypted && (password === undefined || password === '')) {
    throw new CryptoError('E_KEY_PASSWORD', `${where}: the key is encrypted; give its password (-P, or -p to be prompted)`);
  }
  try {
    if (!encrypted) return createPrivateKey({ key: Buffer.from(block.der), format: 'der', type });
    if (block.label === 'ENCRYPTED PRIVATE KEY') {
      return createPrivateKey({ key: Buffer.from(block.der), format: 'der', type: 'pkcs8', passphrase: password as string });
    }
    // The legacy form (Proc-Type/DEK-Info) exists only as PEM; OpenSSL gets the password with it.
    return createPrivateKey({ key: pemText(block), format: 'pem', passphrase: password as string });
  } catch (cause) {
    if (encrypted) throw new CryptoError('E_KEY_PASSWORD', `${where}: wrong password for the encrypted key`, { cause });
    throw formatError(where, 'not a readable PEM private key');
  }
}

/** A block written back as PEM (headers, then the base64 body in 64-column lines). */
function pemText(block: PemBlock): string {
  const body = Buffer.from(block.der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  const headers = [...block.headers].map(([name, value]) => `${name}: ${value}\n`).join('');
  return `-----BEGIN ${block.label}-----\n${headers}${headers === '' ? '' : '\n'}${body}\n-----END ${block.label}-----\n`;
}

/** SPKI DER as the PEM text cryptography (and Node) write: 64 columns, final newline. */
export function spkiPemText(der: Uint8Array): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
}

import { CryptoError } from '../errors.js';

/**
 * The little of DER (X.690) we read ourselves, before any key bytes reach OpenSSL: the
 * encryption parameters of a PKCS#8 EncryptedPrivateKeyInfo (RFC 5958 §3, RFC 8018), so that
 * a hostile file cannot make OpenSSL run billions of PBKDF2 rounds or allocate gigabytes for
 * scrypt. Definite lengths only, every length checked against what is left.
 */

export interface Tlv {
  readonly tag: number;
  /** The value bytes (a view into the input). */
  readonly value: Uint8Array;
  /** Offset just after this element. */
  readonly end: number;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const OID = 0x06;

function bad(where: string, what: string): CryptoError {
  return new CryptoError('E_KEY_FORMAT', `${where}: malformed encrypted private key (${what})`);
}

/** Reads one element at `offset` of `bytes`. @throws CryptoError E_KEY_FORMAT */
function readTlv(bytes: Uint8Array, offset: number, where: string): Tlv {
  if (offset + 2 > bytes.length) throw bad(where, 'truncated');
  const tag = bytes[offset]!;
  let length = bytes[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > bytes.length) throw bad(where, 'bad length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i]!;
    start += count;
  }
  if (start + length > bytes.length) throw bad(where, 'length past the end');
  return { tag, value: bytes.subarray(start, start + length), end: start + length };
}

/** The elements of a constructed value, in order. @throws CryptoError E_KEY_FORMAT */
export function children(value: Uint8Array, where: string): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = 0; offset < value.length; ) {
    const tlv = readTlv(value, offset, where);
    out.push(tlv);
    offset = tlv.end;
    if (out.length > 64) throw bad(where, 'too many elements');
  }
  return out;
}

/** Dotted text of an OBJECT IDENTIFIER's value. @throws CryptoError E_KEY_FORMAT */
function oidText(value: Uint8Array, where: string): string {
  if (value.length === 0 || value.length > 64) throw bad(where, 'bad object identifier');
  const parts: number[] = [];
  let n = 0;
  for (const byte of value) {
    n = n * 128 + (byte & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER / 128) throw bad(where, 'bad object identifier');
    if ((byte & 0x80) === 0) {
      parts.push(n);
      n = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

/** A non-negative INTEGER up to 2^53 - 1 (larger ones are refused). @throws CryptoError E_KEY_FORMAT */
function smallInteger(tlv: Tlv | undefined, where: string, what: string): number {
  if (tlv === undefined || tlv.tag !== INTEGER || tlv.value.length === 0) throw bad(where, `${what} missing`);
  const bytes = tlv.value;
  if (bytes[0]! & 0x80) throw bad(where, `${what} negative`);
  let n = 0;
  for (const byte of bytes) {
    n = n * 256 + byte;
    if (n > Number.MAX_SAFE_INTEGER) return Number.MAX_SAFE_INTEGER;
  }
  return n;
}

/** The password-based key derivation a PKCS#8 encrypted key asks for. */
export type KeyDerivation =
  | { readonly kind: 'pbkdf2'; readonly iterations: number }
  | { readonly kind: 'scrypt'; readonly cost: number; readonly blockSize: number; readonly parallelization: number }
  | { readonly kind: 'pbe'; readonly iterations: number; readonly oid: string };

const PBES2 = '1.2.840.113549.1.5.13';
const PBKDF2 = '1.2.840.113549.1.5.12';
const SCRYPT = '1.3.6.1.4.1.11591.4.11';
/** PKCS#5 v1.5 PBES1 (pbeWithMD5AndDES-CBC ...) and PKCS#12 PBE (pbeWithSHAAnd3-KeyTripleDES-CBC ...). */
const PBE_PREFIXES = ['1.2.840.113549.1.5.', '1.2.840.113549.1.12.1.'];

/**
 * The key derivation of an EncryptedPrivateKeyInfo (the DER of an `ENCRYPTED PRIVATE KEY`
 * PEM block).
 * @throws CryptoError E_KEY_FORMAT (not that structure), E_KEY_UNSUPPORTED (another scheme)
 */
export function pkcs8KeyDerivation(der: Uint8Array, where: string): KeyDerivation {
  const outer = readTlv(der, 0, where);
  if (outer.tag !== SEQUENCE || outer.end !== der.length) throw bad(where, 'not an EncryptedPrivateKeyInfo');
  const [algorithm, data] = children(outer.value, where);
  if (algorithm?.tag !== SEQUENCE || data?.tag !== OCTET_STRING) throw bad(where, 'not an EncryptedPrivateKeyInfo');
  const [oid, params] = children(algorithm.value, where);
  if (oid?.tag !== OID) throw bad(where, 'no algorithm');
  const scheme = oidText(oid.value, where);
  if (scheme === PBES2) {
    if (params?.tag !== SEQUENCE) throw bad(where, 'no PBES2 parameters');
    const [kdf] = children(params.value, where);
    if (kdf?.tag !== SEQUENCE) throw bad(where, 'no key derivation');
    const [kdfOid, kdfParams] = children(kdf.value, where);
    if (kdfOid?.tag !== OID || kdfParams?.tag !== SEQUENCE) throw bad(where, 'no key derivation');
    const kdfName = oidText(kdfOid.value, where);
    const fields = children(kdfParams.value, where);
    if (kdfName === PBKDF2) return { kind: 'pbkdf2', iterations: smallInteger(fields[1], where, 'PBKDF2 iteration count') };
    if (kdfName === SCRYPT) {
      return {
        kind: 'scrypt',
        cost: smallInteger(fields[1], where, 'scrypt cost'),
        blockSize: smallInteger(fields[2], where, 'scrypt block size'),
        parallelization: smallInteger(fields[3], where, 'scrypt parallelization'),
      };
    }
    throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: encrypted private key with an unknown key derivation (${kdfName})`);
  }
  if (PBE_PREFIXES.some((prefix) => scheme.startsWith(prefix))) {
    if (params?.tag !== SEQUENCE) throw bad(where, 'no PBE parameters');
    return { kind: 'pbe', oid: scheme, iterations: smallInteger(children(params.value, where)[1], where, 'PBE iteration count') };
  }
  throw new CryptoError('E_KEY_UNSUPPORTED', `${where}: encrypted private key with an unknown encryption scheme (${scheme})`);
}

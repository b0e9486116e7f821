import { ParseError } from '../errors.js';

/** Byte encodings used in metadata: lowercase hex (keys, Metablock signatures) and base64 (DSSE). */

const LOWER_HEX = /^(?:[0-9a-f]{2})*$/;

/** True for an even-length string of lowercase hex digits. */
export function isLowerHex(text: string): boolean {
  return LOWER_HEX.test(text);
}

/**
 * Decodes lowercase hex, of an exact byte length when `length` is given; undefined when the
 * text is not such hex (callers raise the error code that fits their context). Never throws.
 */
export function hexToBytes(text: string, length?: number): Uint8Array | undefined {
  if (!isLowerHex(text)) return undefined;
  if (length !== undefined && text.length !== length * 2) return undefined;
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

const STANDARD = /^[A-Za-z0-9+/]*$/;
const URL_SAFE = /^[A-Za-z0-9_-]*$/;

/**
 * Strict base64 as DSSE requires verifiers to accept: the standard or the URL-safe alphabet
 * (one of them, not a mix), with or without `=` padding (when present it must be exact). No
 * whitespace, and the unused low bits of the last character must be zero, so that each byte
 * string has exactly one accepted encoding per alphabet (Node's decoder would silently skip
 * invalid characters and ignore those bits).
 * @throws ParseError E_BASE64
 */
export function decodeBase64Strict(text: string, what = 'base64 value'): Uint8Array {
  let body = text;
  const padStart = text.indexOf('=');
  if (padStart !== -1) {
    const padding = text.slice(padStart);
    body = text.slice(0, padStart);
    if (!/^={1,2}$/.test(padding) || text.length % 4 !== 0) {
      throw new ParseError('E_BASE64', `${what}: invalid base64 padding`);
    }
  }
  if (body.length % 4 === 1) throw new ParseError('E_BASE64', `${what}: invalid base64 length`);
  if (!STANDARD.test(body) && !URL_SAFE.test(body)) {
    throw new ParseError('E_BASE64', `${what}: not base64 (or mixes the standard and URL-safe alphabets)`);
  }
  const bytes = Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  // Round-trip check catches non-zero trailing bits: only the canonical encoding is accepted.
  const again = bytes.toString('base64').replace(/=+$/, '');
  if (again !== body.replace(/-/g, '+').replace(/_/g, '/')) {
    throw new ParseError('E_BASE64', `${what}: non-canonical base64 (unused bits set)`);
  }
  return new Uint8Array(bytes);
}

/** Standard base64 with padding (what we write). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

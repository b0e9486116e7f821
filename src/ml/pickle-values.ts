import type { PolicyEntry } from './policy.js';

/**
 * What the scanner knows about each value on the unpickler's stack: whether it is a `str`
 * whose text we know (STACK_GLOBAL imports the two strs on top of the stack; an import from an
 * operand we cannot read is a finding), which import a global is and whether the policy allows
 * it (so that REDUCE and NEWOBJ can be judged by what they call or build), the items of short
 * tuples (the arguments of rebuild helpers), small ints and dicts (joblib's array wrappers say
 * where their data ends), and the objects calls build. Everything else is data that is
 * certainly not a str, or unknown.
 *
 * A str keeps a view of its bytes and is decoded only if STACK_GLOBAL uses it ({@link strText}):
 * most strings in a model are keys and labels, and decoding each would dominate the scan.
 */

/** How a str's bytes become its text (see {@link strText}). */
type StrEncoding = 'utf8' | 'latin1' | 'ascii';

/** An imported global as the stack holds it; `entry` is set when the policy allows it. */
export interface GlobalValue {
  readonly kind: 'global';
  readonly module: string;
  readonly name: string;
  readonly entry: PolicyEntry | undefined;
}

/**
 * The result of a call or an instantiation: an object of class `of` (when that was an import
 * we know), with the arguments it was built from and the state BUILD gave it.
 */
export interface ObjectValue {
  readonly kind: 'object';
  readonly of: GlobalValue | undefined;
  readonly args: PickleValue | undefined;
  state: PickleValue | undefined;
}

/** A dict: its str-keyed entries are kept while it has few (joblib's array wrappers need them). */
export interface DictValue {
  readonly kind: 'dict';
  entries: Map<string, PickleValue> | undefined;
}

/**
 * A value on the symbolic stack: a str (bytes and how to decode them), a small int, None or a
 * bool, a tuple (its items while it is short), a dict, an imported global, an object built by
 * a call, certainly-not-a-str data that is not tracked, or unknown.
 */
export type PickleValue =
  | { readonly kind: 'str'; readonly bytes: Uint8Array; readonly encoding: StrEncoding }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'none' }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'tuple'; readonly items: readonly PickleValue[] | undefined }
  | DictValue
  | GlobalValue
  | ObjectValue
  | { readonly kind: 'data' }
  | { readonly kind: 'unknown' };

/** Certainly not a str, and not tracked further. */
export const DATA: PickleValue = { kind: 'data' };
/** Could be anything, a str included. */
export const UNKNOWN: PickleValue = { kind: 'unknown' };
export const NONE: PickleValue = { kind: 'none' };
export const TRUE: PickleValue = { kind: 'bool', value: true };
export const FALSE: PickleValue = { kind: 'bool', value: false };
export const EMPTY_TUPLE: PickleValue = { kind: 'tuple', items: [] };

/** Tuples longer than this keep no items (argument tuples and shapes are short). */
export const MAX_TRACKED_ITEMS = 32;
/** Dicts with more entries than this keep none. */
export const MAX_TRACKED_ENTRIES = 64;

const SMALL_INTS: readonly PickleValue[] = Array.from({ length: 256 }, (_, value) => ({ kind: 'int', value }));

/** An int value (shared objects for 0..255, which most pickles use). */
export function intValue(value: number): PickleValue {
  return value >= 0 && value < 256 ? (SMALL_INTS[value] as PickleValue) : { kind: 'int', value };
}

/** A tuple of `items`, keeping them only while there are few. */
export function tupleValue(items: PickleValue[]): PickleValue {
  if (items.length === 0) return EMPTY_TUPLE;
  return { kind: 'tuple', items: items.length <= MAX_TRACKED_ITEMS ? items : undefined };
}

/** The int of a value, or undefined. */
export function intOrUndefined(value: PickleValue | undefined): number | undefined {
  return value?.kind === 'int' ? value.value : undefined;
}

/**
 * Strings longer than this become UNKNOWN: no module or attribute name is this long, and
 * decoding a huge string only to compare it would be wasted work.
 */
const MAX_DECODED_BYTES = 4096;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Strict UTF-8 as Python's "strict" codec: invalid sequences and encoded surrogates fail, a
 * leading BOM stays part of the text (hence ignoreBOM).
 */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Latin-1, byte for byte (TextDecoder's "latin1" is windows-1252, which differs). */
function decodeLatin1(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

function isAscii(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte >= 0x80) return false;
  return true;
}

const BACKSLASH = 0x5c;

/**
 * The text of a str value, or undefined when it cannot be known for certain: UTF-8 that strict
 * decoding refuses (a lone surrogate, which the loader's "surrogatepass" would accept), or a
 * Python 2 byte string outside ASCII (its text depends on the loader's `encoding`).
 */
export function strText(value: PickleValue): string | undefined {
  if (value.kind !== 'str') return undefined;
  switch (value.encoding) {
    case 'utf8':
      return decodeUtf8(value.bytes);
    case 'latin1':
      return decodeLatin1(value.bytes);
    case 'ascii':
      return isAscii(value.bytes) ? decodeLatin1(value.bytes) : undefined;
  }
}

/** SHORT_BINUNICODE, BINUNICODE, BINUNICODE8: UTF-8 (with "surrogatepass"). */
export function binaryUnicodeValue(bytes: Uint8Array): PickleValue {
  if (bytes.length > MAX_DECODED_BYTES) return UNKNOWN;
  return { kind: 'str', bytes, encoding: 'utf8' };
}

/**
 * UNICODE: raw-unicode-escape. Without a backslash that is latin-1; with one, `\uXXXX`
 * escapes apply, and rather than reimplement their corner cases the value stays UNKNOWN.
 */
export function textUnicodeValue(bytes: Uint8Array): PickleValue {
  if (bytes.length > MAX_DECODED_BYTES || bytes.includes(BACKSLASH)) return UNKNOWN;
  return { kind: 'str', bytes, encoding: 'latin1' };
}

/**
 * SHORT_BINSTRING, BINSTRING and the unquoted body of STRING: Python 2 byte strings, which
 * Python 3 decodes with the unpickler's `encoding` (ASCII by default, latin-1 or "bytes" when
 * the caller says so). Only pure ASCII gives the same str under every encoding that yields a
 * str, so only that is decoded (by {@link strText}); with `escaped` (STRING), a backslash
 * escape makes it UNKNOWN.
 */
export function byteStringValue(bytes: Uint8Array, escaped: boolean): PickleValue {
  if (bytes.length > MAX_DECODED_BYTES || (escaped && bytes.includes(BACKSLASH))) return UNKNOWN;
  return { kind: 'str', bytes, encoding: 'ascii' };
}

// Text arguments in the exact forms pickle writes them. CPython reads laxer forms (" 1", "0x1",
// "1_0", a NUL ending the number); those come only from hand-made streams, and are reported as
// malformed rather than interpreted, so that our reading can never differ from the loader's.
const INT_LINE = /^[+-]?[0-9]+$/;
const LONG_LINE = /^[+-]?[0-9]+L?$/;
const FLOAT_LINE = /^[+-]?(?:inf|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)$/;
const MEMO_INDEX = /^[0-9]+$/;

/** The ASCII text of a line argument, or undefined if it has a byte outside ASCII. */
function asciiLine(bytes: Uint8Array): string | undefined {
  return bytes.length <= MAX_DECODED_BYTES && isAscii(bytes) ? decodeLatin1(bytes) : undefined;
}

/** Why an INT, LONG or FLOAT text argument is not in the form pickle writes, or undefined. */
export function numberLineProblem(op: 'INT' | 'LONG' | 'FLOAT', bytes: Uint8Array): string | undefined {
  const text = asciiLine(bytes);
  const form = op === 'INT' ? INT_LINE : op === 'LONG' ? LONG_LINE : FLOAT_LINE;
  return text !== undefined && form.test(text) ? undefined : `${op} argument is not a decimal number`;
}

/** The memo index of a GET or PUT text argument, or undefined unless it is plain digits. */
export function memoIndex(bytes: Uint8Array): number | undefined {
  const text = asciiLine(bytes);
  if (text === undefined || !MEMO_INDEX.test(text)) return undefined;
  const value = Number(text);
  // Above 2^53 two indices could round to one number; CPython cannot hold such a memo anyway.
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * The value of a STRING argument: quoted with ' or ", as both loaders demand, then decoded
 * as {@link byteStringValue}. Undefined when the quotes are missing (the loader refuses it).
 */
export function quotedStringValue(bytes: Uint8Array): PickleValue | undefined {
  const first = bytes[0];
  const last = bytes[bytes.length - 1];
  if (bytes.length < 2 || first !== last || (first !== 0x27 && first !== 0x22)) return undefined;
  return byteStringValue(bytes.subarray(1, bytes.length - 1), true);
}

import { ParseError } from '../errors.js';
import { ByteWriter } from './byte-writer.js';
import { compareCodePoints, type JsonObject, type JsonValue } from './json.js';

/**
 * Encoders that reproduce the Python reference byte for byte:
 * - {@link canonicalString}/{@link canonicalBytes}: securesystemslib `encode_canonical`, the
 *   bytes every Metablock signature covers;
 * - {@link pythonJsonDumps}: Python's `json.dumps(obj, indent=1, separators=(",", ": "),
 *   sort_keys=True)` with its default `ensure_ascii=True`, the text of `.link` and `.layout` files.
 */

const MAX_ENCODE_DEPTH = 256;

/**
 * Canonical JSON as securesystemslib writes it: keys sorted by code point, no whitespace,
 * strings escape only `\` and `"` (control characters and non-ASCII stay raw), integers only.
 * @throws ParseError E_CANONICAL for a non-integer number or a lone surrogate
 */
export function canonicalString(value: JsonValue): string {
  return encodeCanonical(value, 0);
}

/**
 * UTF-8 bytes of {@link canonicalString}, written straight into a buffer: signature checks
 * encode links of 100,000 artifacts, and building the string first costs three times as much.
 * @throws ParseError E_CANONICAL
 */
export function canonicalBytes(value: JsonValue): Uint8Array {
  const writer = new ByteWriter();
  writeBytes(value, writer, 0);
  return writer.finish();
}

/**
 * Writes `text` as a canonical JSON string.
 * @throws ParseError E_CANONICAL for a lone surrogate
 */
function writeCanonicalString(out: ByteWriter, text: string): void {
  // Canonical JSON escapes only `"` and `\`: any other ASCII is written as it is.
  if (!out.plainQuoted(text, 0x00, 0x7f)) out.utf8(canonicalQuote(text));
}

/**
 * Writes {@link canonicalString} of `value` as UTF-8.
 * @throws ParseError E_CANONICAL
 */
export function writeCanonical(value: JsonValue, out: ByteWriter): void {
  writeBytes(value, out, 0);
}

function writeBytes(value: JsonValue, out: ByteWriter, depth: number): void {
  if (depth > MAX_ENCODE_DEPTH) throw new ParseError('E_CANONICAL', 'value nested too deeply to encode');
  if (value === null) out.ascii('null');
  else if (value === true) out.ascii('true');
  else if (value === false) out.ascii('false');
  else if (typeof value === 'number') out.ascii(integerText(value));
  else if (typeof value === 'string') writeCanonicalString(out, value);
  else if (Array.isArray(value)) {
    out.byte(0x5b);
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.byte(0x2c);
      writeBytes(value[i] as JsonValue, out, depth + 1);
    }
    out.byte(0x5d);
  } else {
    const object = value as JsonObject;
    const keys = Object.keys(object);
    if (keys.length > 1) keys.sort(compareCodePoints);
    out.byte(0x7b);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (i > 0) out.byte(0x2c);
      writeCanonicalString(out, key);
      out.byte(0x3a);
      writeBytes(object[key] as JsonValue, out, depth + 1);
    }
    out.byte(0x7d);
  }
}

// Built by string concatenation, not by joining a list of parts: V8 keeps the pieces as a
// rope and flattens once, which allocates far less for links of 100,000 artifacts.
function encodeCanonical(value: JsonValue, depth: number): string {
  if (depth > MAX_ENCODE_DEPTH) throw new ParseError('E_CANONICAL', 'value nested too deeply to encode');
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return integerText(value);
  if (typeof value === 'string') return canonicalQuote(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += encodeCanonical(value[i] as JsonValue, depth + 1);
    }
    return `${out}]`;
  }
  const object = value as JsonObject;
  const keys = Object.keys(object);
  if (keys.length > 1) keys.sort(compareCodePoints);
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0) out += ',';
    out += `${canonicalQuote(key)}:${encodeCanonical(object[key] as JsonValue, depth + 1)}`;
  }
  return `${out}}`;
}

function integerText(n: number): string {
  if (!Number.isSafeInteger(n)) {
    throw new ParseError('E_CANONICAL', `canonical JSON allows only integers, got ${String(n)}`);
  }
  return n === 0 ? '0' : String(n);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const CANONICAL_ESCAPES = /["\\]/g;

// Strings with no quote, backslash or surrogate need no escaping and no surrogate check.
const CANONICAL_PLAIN = /^[^"\\\ud800-\udfff]*$/;

function canonicalQuote(s: string): string {
  if (CANONICAL_PLAIN.test(s)) return `"${s}"`;
  if (LONE_SURROGATE.test(s)) throw new ParseError('E_CANONICAL', 'string holds a lone surrogate');
  return `"${s.replace(CANONICAL_ESCAPES, (c) => `\\${c}`)}"`;
}

/**
 * Python `json.dumps(value, indent=1, separators=(",", ": "), sort_keys=True)` (ensure_ascii on),
 * the layout of metadata files written by the reference. `indent: null` gives the compact
 * form `separators=(",", ":")`.
 * @throws ParseError E_CANONICAL for a non-integer number or a lone surrogate
 */
export function pythonJsonDumps(value: JsonValue, indent: number | null = 1): string {
  return writePython(value, indent, 0, []);
}

type Frame = readonly [open: string, separator: string, close: string];

// Built by string concatenation (V8 ropes, flattened once when written), with the indentation
// strings of each level made once: a link of 20,000 artifacts otherwise allocates a parts
// array of 250,000 entries and three strings per object, garbage that grows intoto-run's peak
// memory by tens of megabytes.
function writePython(value: JsonValue, indent: number | null, level: number, frames: Frame[]): string {
  if (level > MAX_ENCODE_DEPTH) throw new ParseError('E_CANONICAL', 'value nested too deeply to encode');
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return integerText(value);
  if (typeof value === 'string') return pythonQuote(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const [open, sep, close] = (frames[level] ??= frame(indent, level));
    let out = `[${open}`;
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += sep;
      out += writePython(value[i] as JsonValue, indent, level + 1, frames);
    }
    return `${out}${close}]`;
  }
  const object = value as JsonObject;
  const keys = Object.keys(object).sort(compareCodePoints);
  if (keys.length === 0) return '{}';
  const [open, sep, close] = (frames[level] ??= frame(indent, level));
  const colon = indent === null ? ':' : ': ';
  let out = `{${open}`;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0) out += sep;
    out += pythonQuote(key) + colon + writePython(object[key] as JsonValue, indent, level + 1, frames);
  }
  return `${out}${close}}`;
}

function frame(indent: number | null, level: number): Frame {
  if (indent === null) return ['', ',', ''];
  const inner = `\n${' '.repeat(indent * (level + 1))}`;
  return [inner, `,${inner}`, `\n${' '.repeat(indent * level)}`];
}

const PY_SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};
// Python's ESCAPE_ASCII: a backslash, a quote, or anything outside printable ASCII.
const PY_ESCAPE = /["\\]|[^ -~]/g;

const PY_PLAIN = /^[ !#-[\]-~]*$/;

function pythonQuote(s: string): string {
  if (PY_PLAIN.test(s)) return `"${s}"`;
  if (LONE_SURROGATE.test(s)) throw new ParseError('E_CANONICAL', 'string holds a lone surrogate');
  return `"${s.replace(PY_ESCAPE, (c) => PY_SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

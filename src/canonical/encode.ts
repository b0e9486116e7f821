import { ParseError } from '../errors.js';
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
  const parts: string[] = [];
  writeCanonical(value, parts, 0);
  return parts.join('');
}

/** UTF-8 bytes of {@link canonicalString}. @throws ParseError E_CANONICAL */
export function canonicalBytes(value: JsonValue): Uint8Array {
  return Buffer.from(canonicalString(value), 'utf8');
}

function writeCanonical(value: JsonValue, out: string[], depth: number): void {
  if (depth > MAX_ENCODE_DEPTH) throw new ParseError('E_CANONICAL', 'value nested too deeply to encode');
  if (value === null) out.push('null');
  else if (value === true) out.push('true');
  else if (value === false) out.push('false');
  else if (typeof value === 'number') out.push(integerText(value));
  else if (typeof value === 'string') out.push(canonicalQuote(value));
  else if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      writeCanonical(value[i] as JsonValue, out, depth + 1);
    }
    out.push(']');
  } else {
    const object = value as JsonObject;
    const keys = Object.keys(object).sort(compareCodePoints);
    out.push('{');
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (i > 0) out.push(',');
      out.push(canonicalQuote(key), ':');
      writeCanonical(object[key] as JsonValue, out, depth + 1);
    }
    out.push('}');
  }
}

function integerText(n: number): string {
  if (!Number.isSafeInteger(n)) {
    throw new ParseError('E_CANONICAL', `canonical JSON allows only integers, got ${String(n)}`);
  }
  return n === 0 ? '0' : String(n);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const CANONICAL_ESCAPES = /["\\]/g;

function canonicalQuote(s: string): string {
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
  const parts: string[] = [];
  writePython(value, parts, indent, 0);
  return parts.join('');
}

function writePython(value: JsonValue, out: string[], indent: number | null, level: number): void {
  if (level > MAX_ENCODE_DEPTH) throw new ParseError('E_CANONICAL', 'value nested too deeply to encode');
  if (value === null) out.push('null');
  else if (value === true) out.push('true');
  else if (value === false) out.push('false');
  else if (typeof value === 'number') out.push(integerText(value));
  else if (typeof value === 'string') out.push(pythonQuote(value));
  else if (Array.isArray(value)) {
    if (value.length === 0) {
      out.push('[]');
      return;
    }
    const [open, sep, close] = frame(indent, level);
    out.push('[', open);
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(sep);
      writePython(value[i] as JsonValue, out, indent, level + 1);
    }
    out.push(close, ']');
  } else {
    const object = value as JsonObject;
    const keys = Object.keys(object).sort(compareCodePoints);
    if (keys.length === 0) {
      out.push('{}');
      return;
    }
    const [open, sep, close] = frame(indent, level);
    out.push('{', open);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (i > 0) out.push(sep);
      out.push(pythonQuote(key), indent === null ? ':' : ': ');
      writePython(object[key] as JsonValue, out, indent, level + 1);
    }
    out.push(close, '}');
  }
}

function frame(indent: number | null, level: number): [string, string, string] {
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

function pythonQuote(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new ParseError('E_CANONICAL', 'string holds a lone surrogate');
  return `"${s.replace(PY_ESCAPE, (c) => PY_SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

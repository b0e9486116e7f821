import { ParseError } from '../errors.js';
import { compareCodePoints, type JsonObject, type JsonValue } from './json.js';

/**
 * A strict JSON reader for everything we load (RFC 8259 plus our restrictions), and a reader
 * for securesystemslib canonical JSON, the exact bytes a Metablock signature covers.
 *
 * Restrictions (THREATS.md, "Parsers"): duplicate keys are rejected (`JSON.parse` keeps the
 * last one silently); nesting depth is capped; numbers must be integers in the safe range
 * (no fraction, no exponent: `1e999` and `9007199254740993` would be rounded by `JSON.parse`),
 * written one way only (`-0` is refused, not read as 0);
 * input must be valid UTF-8 without a BOM, and `\u` escapes may not leave lone surrogates.
 * Objects come back with a null prototype.
 */

export interface ParseOptions {
  /** Maximum nesting of arrays and objects (default 64; in-toto metadata needs about 8). */
  readonly maxDepth?: number;
  /**
   * Accept only canonical JSON (securesystemslib `encode_canonical`): no whitespace, keys in
   * strictly increasing code-point order, only `\\` and `\"` escapes, control characters raw
   * (`-0` is refused in every mode). Used to decode exactly the bytes a signature was checked over.
   */
  readonly canonical?: boolean;
  /** Names the document in error messages. */
  readonly source?: string;
  /**
   * Accept an integer written with a zero fraction (`1000000000.0`, as protobuf's JSON writes
   * every number of a Struct) as that integer. Other fractions and exponents stay errors.
   */
  readonly zeroFractions?: boolean;
}

export const DEFAULT_MAX_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes UTF-8 strictly: invalid sequences and a leading byte-order mark are errors.
 * @throws ParseError E_JSON_UTF8
 */
export function decodeUtf8(bytes: Uint8Array, source = 'input'): string {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new ParseError('E_JSON_UTF8', `${source}: starts with a UTF-8 byte-order mark`);
  }
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new ParseError('E_JSON_UTF8', `${source}: not valid UTF-8`, { cause });
  }
}

/**
 * Parses JSON text (or UTF-8 bytes) under the restrictions above.
 * @throws ParseError E_JSON_SYNTAX, E_JSON_DUPLICATE_KEY, E_JSON_DEPTH, E_JSON_NUMBER (also `-0`),
 *   E_JSON_UTF8, E_CANONICAL (canonical mode: input not in canonical form)
 */
export function parseJson(input: Uint8Array | string, options: ParseOptions = {}): JsonValue {
  const source = options.source ?? 'JSON';
  const text = typeof input === 'string' ? input : decodeUtf8(input, source);
  return new Parser(text, options.maxDepth ?? DEFAULT_MAX_DEPTH, options.canonical ?? false, source, options.zeroFractions ?? false).document();
}

/**
 * Parses the one JSON value that starts exactly at `start` in `text`, as {@link parseJson}
 * would read it inside a document where it sits at nesting `depth` (0 for a whole document,
 * 1 for a member of the top-level object); returns it and the position just after it. For
 * readers that walk the structure around the value themselves (model/link-reader.ts).
 * @throws ParseError as parseJson (E_JSON_SYNTAX also for whitespace at `start`)
 */
export function parseJsonValueAt(text: string, start: number, depth: number, options: ParseOptions = {}): { value: JsonValue; end: number } {
  const parser = new Parser(text, options.maxDepth ?? DEFAULT_MAX_DEPTH, options.canonical ?? false, options.source ?? 'JSON');
  return parser.valueAt(start, depth);
}

/**
 * The objects the parser returns. Their prototype is an empty object whose own prototype is
 * null, so, as with Object.create(null), nothing is inherited: no `constructor`, no
 * `__proto__` setter (assigning `__proto__` makes an ordinary own property), no `toString`.
 * Unlike Object.create(null), which V8 always keeps as a slow hash table, such objects get
 * hidden classes: a link of 100,000 digest objects parses and is read several times faster,
 * and with far less garbage.
 */
function JsonRecord(this: object): void {}
JsonRecord.prototype = Object.create(null) as object;
const JsonRecordClass = JsonRecord as unknown as new () => object;

/** Characters a string can hold with no escape and no check: not a quote, backslash or control. */
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;

class Parser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
    private readonly canonical: boolean,
    private readonly source: string,
    private readonly zeroFractions: boolean = false,
  ) {}

  document(): JsonValue {
    this.skipSpace();
    const value = this.value(0);
    this.skipSpace();
    if (this.pos !== this.text.length) this.fail('unexpected data after the JSON value');
    return value;
  }

  valueAt(start: number, depth: number): { value: JsonValue; end: number } {
    this.pos = start;
    const value = this.value(depth);
    return { value, end: this.pos };
  }

  private fail(what: string, code: 'E_JSON_SYNTAX' | 'E_JSON_NUMBER' | 'E_JSON_UTF8' | 'E_CANONICAL' | 'E_JSON_DUPLICATE_KEY' | 'E_JSON_DEPTH' = 'E_JSON_SYNTAX'): never {
    const { line, column } = this.lineColumn();
    throw new ParseError(code, `${this.source}: ${what} at line ${line}, column ${column}`);
  }

  private lineColumn(): { line: number; column: number } {
    let line = 1;
    let lineStart = 0;
    const end = Math.min(this.pos, this.text.length);
    for (let i = 0; i < end; i++) {
      if (this.text.charCodeAt(i) === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    return { line, column: end - lineStart + 1 };
  }

  private skipSpace(): void {
    const t = this.text;
    let p = this.pos;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        if (this.canonical) {
          this.pos = p;
          this.fail('whitespace is not allowed in canonical JSON', 'E_CANONICAL');
        }
        p++;
      } else break;
    }
    this.pos = p;
  }

  private value(depth: number): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */:
        return this.object(depth + 1);
      case 0x5b /* [ */:
        return this.array(depth + 1);
      case 0x22 /* " */:
        return this.string();
      case 0x74 /* t */:
        return this.literal('true', true);
      case 0x66 /* f */:
        return this.literal('false', false);
      case 0x6e /* n */:
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        if (Number.isNaN(c)) this.fail('unexpected end of input');
        return this.fail(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    }
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail('invalid literal');
    this.pos += word.length;
    return value;
  }

  private enter(depth: number): void {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth} levels`, 'E_JSON_DEPTH');
  }

  private object(depth: number): JsonObject {
    this.enter(depth);
    this.pos++; // {
    const result = new JsonRecordClass() as Record<string, JsonValue>;
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return result;
    }
    let previous: string | undefined;
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail('expected a string key');
      const keyStart = this.pos;
      const key = this.string();
      // `result` has no prototype and no value is ever undefined: a plain lookup is an own-key test.
      if (result[key] !== undefined) {
        this.pos = keyStart;
        this.fail(`duplicate key ${JSON.stringify(key)}`, 'E_JSON_DUPLICATE_KEY');
      }
      if (this.canonical && previous !== undefined && compareCodePoints(previous, key) >= 0) {
        this.pos = keyStart;
        this.fail('keys are not in canonical order', 'E_CANONICAL');
      }
      previous = key;
      this.skipSpace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      this.skipSpace();
      result[key] = this.value(depth);
      if (!this.more(0x7d, "expected ',' or '}'")) return result;
    }
  }

  /**
   * After a member or an element: past a ',' (and the space after it), true; past the closing
   * bracket `close`, false; anything else fails with `message`.
   */
  private more(close: number, message: string): boolean {
    this.skipSpace();
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x2c) {
      this.pos++;
      this.skipSpace();
      return true;
    }
    if (c === close) {
      this.pos++;
      return false;
    }
    return this.fail(message);
  }

  private array(depth: number): JsonValue[] {
    this.enter(depth);
    this.pos++; // [
    const result: JsonValue[] = [];
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return result;
    }
    for (;;) {
      result.push(this.value(depth));
      if (!this.more(0x5d, "expected ',' or ']'")) return result;
    }
  }

  private number(): number {
    const t = this.text;
    const start = this.pos;
    let p = start;
    if (t.charCodeAt(p) === 0x2d) p++;
    const first = t.charCodeAt(p);
    if (first === 0x30) {
      p++;
    } else if (first >= 0x31 && first <= 0x39) {
      while (p < t.length && t.charCodeAt(p) >= 0x30 && t.charCodeAt(p) <= 0x39) p++;
    } else {
      this.pos = p;
      this.fail('invalid number');
    }
    let end = p;
    if (this.zeroFractions && t.charCodeAt(p) === 0x2e && t.charCodeAt(p + 1) === 0x30) {
      end = p + 1;
      while (t.charCodeAt(end) === 0x30) end++;
    }
    const next = t.charCodeAt(end);
    if (next === 0x2e || next === 0x65 || next === 0x45 || (end !== p && next >= 0x31 && next <= 0x39)) {
      this.pos = start;
      this.fail('only integers are allowed (no fraction or exponent)', 'E_JSON_NUMBER');
    }
    if (p - start > 17) {
      this.pos = start;
      this.fail('integer outside the safe range', 'E_JSON_NUMBER');
    }
    const digits = t.slice(start, p);
    const value = Number(digits);
    if (!Number.isSafeInteger(value)) {
      this.pos = start;
      this.fail('integer outside the safe range', 'E_JSON_NUMBER');
    }
    // `-0` is 0 written another way: canonical JSON (and the reference, which reads it as 0)
    // has one spelling per number, so signed bytes holding it are refused, not normalised.
    if (digits === '-0') {
      this.pos = start;
      this.fail('-0 is not a canonical number (refused, not read as 0)', 'E_JSON_NUMBER');
    }
    this.pos = end;
    return value;
  }

  private string(): string {
    const t = this.text;
    let p = this.pos + 1; // after the opening quote
    // Fast path: a run of characters that need no attention, found by one sticky regex.
    PLAIN_RUN.lastIndex = p;
    PLAIN_RUN.test(t);
    const end = PLAIN_RUN.lastIndex;
    if (t.charCodeAt(end) === 0x22) {
      this.pos = end + 1;
      return t.slice(p, end);
    }
    let out = '';
    let chunk = p;
    for (;;) {
      if (p >= t.length) {
        this.pos = p;
        this.fail('unterminated string');
      }
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        out += t.slice(chunk, p);
        this.pos = p + 1;
        return out;
      }
      if (c === 0x5c) {
        out += t.slice(chunk, p);
        p = this.escape(p, (s) => (out += s));
        chunk = p;
        continue;
      }
      if (c < 0x20 && !this.canonical) {
        this.pos = p;
        this.fail('unescaped control character in a string');
      }
      p++;
    }
  }

  /** Decodes the escape at `p` (a backslash), appends it, returns the position after it. */
  private escape(p: number, append: (s: string) => void): number {
    const t = this.text;
    const e = t.charCodeAt(p + 1);
    if (this.canonical && e !== 0x5c && e !== 0x22) {
      this.pos = p;
      this.fail('canonical JSON escapes only \\\\ and \\"', 'E_CANONICAL');
    }
    switch (e) {
      case 0x22: append('"'); return p + 2;
      case 0x5c: append('\\'); return p + 2;
      case 0x2f: append('/'); return p + 2;
      case 0x62: append('\b'); return p + 2;
      case 0x66: append('\f'); return p + 2;
      case 0x6e: append('\n'); return p + 2;
      case 0x72: append('\r'); return p + 2;
      case 0x74: append('\t'); return p + 2;
      case 0x75: {
        const unit = this.hex4(p + 2);
        if (unit >= 0xdc00 && unit <= 0xdfff) {
          this.pos = p;
          this.fail('lone low surrogate in \\u escape', 'E_JSON_UTF8');
        }
        if (unit >= 0xd800 && unit <= 0xdbff) {
          if (t.charCodeAt(p + 6) !== 0x5c || t.charCodeAt(p + 7) !== 0x75) {
            this.pos = p;
            this.fail('lone high surrogate in \\u escape', 'E_JSON_UTF8');
          }
          const low = this.hex4(p + 8);
          if (low < 0xdc00 || low > 0xdfff) {
            this.pos = p;
            this.fail('lone high surrogate in \\u escape', 'E_JSON_UTF8');
          }
          append(String.fromCharCode(unit, low));
          return p + 12;
        }
        append(String.fromCharCode(unit));
        return p + 6;
      }
      default:
        this.pos = p;
        return this.fail('invalid escape sequence');
    }
  }

  private hex4(p: number): number {
    const s = this.text.slice(p, p + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(s)) {
      this.pos = p;
      this.fail('invalid \\u escape');
    }
    return parseInt(s, 16);
  }
}

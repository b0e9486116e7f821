import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalString, pythonJsonDumps } from '../../src/canonical/encode.js';
import { parseJson } from '../../src/canonical/parse.js';
import type { JsonValue } from '../../src/canonical/json.js';
import { InTotoError } from '../../src/errors.js';
import { codeOf } from '../helpers/errors.js';

interface CanonicalVectors {
  cases: { input_json: string; canonical_hex: string; canonical_length: number; sha256: string }[];
  must_fail: string[];
}
const vectors = JSON.parse(
  readFileSync(new URL('../vectors/canonical-json.json', import.meta.url), 'utf8'),
) as CanonicalVectors;

/** JSON values with integers only (canonical JSON has no floats), full Unicode strings. */
const integerJson = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.string({ unit: 'binary' }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'binary' }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('canonical JSON (securesystemslib encode_canonical)', () => {
  it.each(vectors.cases)('matches the vector bytes for $input_json', (c) => {
    const bytes = canonicalBytes(parseJson(c.input_json));
    expect(Buffer.from(bytes).toString('hex')).toBe(c.canonical_hex);
    expect(bytes.length).toBe(c.canonical_length);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(c.sha256);
  });

  it.each(vectors.must_fail)('refuses %s (not an integer)', (input) => {
    expect(codeOf(() => parseJson(input))).toBe('E_JSON_NUMBER');
  });

  it('sorts astral characters after U+FFFF-range BMP characters (code point, not UTF-16 order)', () => {
    expect(canonicalString({ '\u{1F600}': 1, '\uffff': 2, a: 3 })).toBe('{"a":3,"\uffff":2,"\u{1F600}":1}');
  });

  it('escapes only backslash and quote, leaves control characters raw', () => {
    expect(canonicalString('a\n\t"\\\u0001é')).toBe('"a\n\t\\"\\\\\u0001é"');
  });

  it('refuses a float and a lone surrogate', () => {
    expect(codeOf(() => canonicalString(1.5))).toBe('E_CANONICAL');
    expect(codeOf(() => canonicalString('\ud800'))).toBe('E_CANONICAL');
  });

  it('property: bytes do not depend on the insertion order of keys', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.boolean())), (dict) => {
        const reversed = Object.fromEntries(Object.entries(dict).reverse());
        expect(canonicalString(reversed)).toBe(canonicalString(dict));
      }),
    );
  });

  it('property: canonical text reads back in canonical mode to the same value', () => {
    fc.assert(
      fc.property(integerJson, (raw) => {
        const value = parseJson(JSON.stringify(raw));
        const text = canonicalString(value);
        expect(canonicalString(parseJson(text, { canonical: true }))).toBe(text);
      }),
    );
  });
});

describe('strict JSON reading', () => {
  const table: [string, string | Uint8Array, string][] = [
    ['duplicate keys', '{"a":1,"a":2}', 'E_JSON_DUPLICATE_KEY'],
    ['duplicate __proto__ keys', '{"__proto__":1,"__proto__":2}', 'E_JSON_DUPLICATE_KEY'],
    ['an unsafe integer', '9007199254740993', 'E_JSON_NUMBER'],
    ['an exponent', '1e999', 'E_JSON_NUMBER'],
    ['a fraction', '[0.5]', 'E_JSON_NUMBER'],
    ['a leading zero', '01', 'E_JSON_SYNTAX'],
    ['a trailing comma', '[1,]', 'E_JSON_SYNTAX'],
    ['an empty document', '', 'E_JSON_SYNTAX'],
    ['a truncated document', '{"a":[1,2', 'E_JSON_SYNTAX'],
    ['trailing data', '{} {}', 'E_JSON_SYNTAX'],
    ['a raw control character', '"a\u0001"', 'E_JSON_SYNTAX'],
    ['a lone high surrogate escape', '"\\ud800"', 'E_JSON_UTF8'],
    ['a lone low surrogate escape', '"\\udc00x"', 'E_JSON_UTF8'],
    ['invalid UTF-8', Uint8Array.from([0x22, 0xc3, 0x28, 0x22]), 'E_JSON_UTF8'],
    ['a byte-order mark', Uint8Array.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), 'E_JSON_UTF8'],
    ['nesting 10,000 deep', '['.repeat(10_000) + ']'.repeat(10_000), 'E_JSON_DEPTH'],
    ['NaN', 'NaN', 'E_JSON_SYNTAX'],
  ];
  it.each(table)('rejects %s', (_name, input, code) => {
    expect(codeOf(() => parseJson(input))).toBe(code);
  });

  it('keeps __proto__ and constructor as plain data in objects that inherit nothing', () => {
    const value = parseJson('{"__proto__":{"polluted":1},"constructor":2}') as Record<string, JsonValue>;
    // The prototype is an empty object with a null prototype (parse.ts, JsonRecord): nothing
    // is inherited, as with Object.create(null), but V8 gives such objects hidden classes.
    const proto = Object.getPrototypeOf(value) as object;
    expect(Object.getPrototypeOf(proto)).toBeNull();
    expect(Reflect.ownKeys(proto)).toEqual([]);
    expect((parseJson('{}') as Record<string, unknown>)['toString']).toBeUndefined();
    expect(Object.keys(value)).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('accepts the largest safe integer and reads escapes', () => {
    expect(parseJson('[9007199254740991,-9007199254740991,"\\u00e9\\ud83d\\ude00\\/"]')).toEqual([
      9007199254740991, -9007199254740991, 'é😀/',
    ]);
  });

  it('canonical mode refuses whitespace, unsorted keys, extra escapes and -0', () => {
    expect(codeOf(() => parseJson('{"a": 1}', { canonical: true }))).toBe('E_CANONICAL');
    expect(codeOf(() => parseJson('{"b":1,"a":2}', { canonical: true }))).toBe('E_CANONICAL');
    expect(codeOf(() => parseJson('"\\n"', { canonical: true }))).toBe('E_CANONICAL');
    expect(codeOf(() => parseJson('-0', { canonical: true }))).toBe('E_JSON_NUMBER');
    expect(parseJson('"a\nb"', { canonical: true })).toBe('a\nb');
  });

  it('property: only InTotoError escapes, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          parseJson(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(InTotoError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('Python json.dumps(indent=1, sort_keys=True) emulation', () => {
  it('writes the layout of reference metadata files', () => {
    const value = parseJson('{"b":[],"a":{"x":[1,"é\\n\\u0001\\u007f😀"],"e":{}}}');
    expect(pythonJsonDumps(value)).toBe(
      '{\n "a": {\n  "e": {},\n  "x": [\n   1,\n   "\\u00e9\\n\\u0001\\u007f\\ud83d\\ude00"\n  ]\n },\n "b": []\n}',
    );
  });
  it('writes the compact form', () => {
    expect(pythonJsonDumps(parseJson('{"b":1,"a":[true,null]}'), null)).toBe('{"a":[true,null],"b":1}');
  });
});

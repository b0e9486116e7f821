import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalString } from '../../src/canonical/encode.js';
import type { JsonValue } from '../../src/canonical/json.js';

/**
 * canonicalBytes writes straight into a buffer (the signature path for large links);
 * canonicalString builds text. They must agree byte for byte on every value.
 */
const json: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: fc.constantFrom('"', '\\', 'a', '\u0000', '\u007f', '\u0080', 'é', '€', '😀'), maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('canonicalBytes', () => {
  it('equals the UTF-8 of canonicalString for any JSON value', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(Buffer.from(canonicalBytes(value)).equals(Buffer.from(canonicalString(value), 'utf8'))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('grows its buffer past the first 64 KiB without losing bytes', () => {
    const value = { a: 'x'.repeat(100_000), b: Array.from({ length: 5000 }, (_, i) => `é${i}`) };
    expect(Buffer.from(canonicalBytes(value)).equals(Buffer.from(canonicalString(value), 'utf8'))).toBe(true);
  });
});

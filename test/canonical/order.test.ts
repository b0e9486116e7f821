import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareCodePoints, indicesByCodePoints } from '../../src/canonical/json.js';

/** Code-point order as Python's sorted() sees it: compare the sequences of code points. */
function byCodePointsSlow(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

// Characters on both sides of the surrogate range, astral ones, and ASCII.
const unit = fc.constantFrom('a', 'b', '/', '.', 'é', '\ud7ff', '\ue000', '\uffff', '😀', '𝄞', '\u{10ffff}');
const text = fc.array(unit, { maxLength: 6 }).map((parts) => parts.join(''));

describe('code-point order', () => {
  it('compareCodePoints orders as Python does (astral characters after U+FFFF)', () => {
    fc.assert(fc.property(text, text, (a, b) => Math.sign(compareCodePoints(a, b)) === Math.sign(byCodePointsSlow(a, b))));
    expect(compareCodePoints('\uffff', '😀')).toBeLessThan(0); // UTF-16 order says the opposite
  });

  it('indicesByCodePoints is a permutation in the order Python sorts, with and without surrogates', () => {
    for (const strings of [fc.array(text, { maxLength: 30 }), fc.array(fc.string({ maxLength: 8 }), { maxLength: 30 })]) {
      fc.assert(
        fc.property(strings, (list) => {
          const order = indicesByCodePoints(list);
          expect([...order].sort((a, b) => a - b)).toEqual([...list.keys()]);
          expect(order.map((i) => list[i])).toEqual([...list].sort(byCodePointsSlow));
        }),
      );
    }
    expect(indicesByCodePoints(['b', '\uffff', '😀', 'a'])).toEqual([3, 0, 1, 2]);
  });
});

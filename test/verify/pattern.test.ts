import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePattern, fnmatchCase } from '../../src/verify/pattern.js';
import { hasReference, reference } from './reference.js';

// [pattern, name, fnmatch.fnmatchcase(name, pattern)], each checked against Python 3.11 below.
const TABLE: [string, string, boolean][] = [
  ['*', '', true],
  ['*', 'a/b/c', true], // `*` crosses `/`
  ['*.py', 'src/x.py', true],
  ['src/*', 'src/a/b.py', true],
  ['?', 'ab', false],
  ['?', '😀', true], // one code point, two UTF-16 units
  ['??', '😀', false],
  ['a?c', 'a/c', true],
  ['Evil.sh', 'evil.sh', false], // case-sensitive on POSIX
  ['[abc]', 'b', true],
  ['[!abc]', 'b', false],
  ['[!abc]', 'd', true],
  ['[]]', ']', true], // `]` first is a member
  ['[!]]', 'a', true],
  ['[!]]', ']', false],
  ['[]', '[]', true], // unmatched `[`: both characters literal
  ['[!]', '[!]', true],
  ['[', '[', true],
  ['a[b', 'a[b', true],
  ['[a-]', '-', true], // trailing hyphen is a member
  ['[a-]', 'b', false],
  ['[-a]', '-', true], // leading hyphen is a member
  ['[a-c]', 'b', true],
  ['[c-a]', 'b', false], // reversed range matches nothing
  ['[c-a]', 'c', false],
  ['[!c-a]', 'x', true], // negated empty class: any character
  ['[z-a!]', 'q', true], // reversed range leaves `!` alone: any character
  ['[z-ax]', 'x', true],
  ['[a-c-e]', '-', true], // `a-c`, then `-` and `e` literal
  ['[a-c-e]', 'd', false],
  ['[\\]', '\\', true], // no escape character
  ['[^a]', '^', true],
  ['[^a]', 'b', false],
  ['[&&]', '&', true],
  ['*a*a*a*a*b', 'aaaaab', true],
  ['*a*a*a*a*b', 'aaaaa', false],
  ['a*a', 'a', false], // head and tail may not overlap
  ['a*a', 'aa', true],
  ['**', 'x', true],
  ['*[é]*', 'café', true],
  ['x*😀?', 'x😀😀z', true],
  ['x*😀?', 'x😀', false],
];

describe('fnmatch pattern semantics (Python fnmatch.fnmatchcase)', () => {
  it.each(TABLE)('%j against %j is %s', (pattern, name, expected) => {
    expect(fnmatchCase(name, pattern)).toBe(expected);
  });

  it.runIf(hasReference)('the table agrees with Python', () => {
    const got = reference<boolean>('fnmatch', TABLE.map(([p, n]) => [p, n]));
    expect(got).toEqual(TABLE.map(([, , e]) => e));
  });

  it('reports literals and match-all patterns for the fast paths', () => {
    expect(compilePattern('model.pkl').literal).toBe('model.pkl');
    expect(compilePattern('a[b').literal).toBe('a[b');
    expect(compilePattern('a[b]').literal).toBeUndefined();
    expect(compilePattern('***').matchesAll).toBe(true);
    expect(compilePattern('*?').matchesAll).toBe(false);
  });

  it('matches adversarial patterns in linear time (no backtracking blow-up)', () => {
    const name = 'a'.repeat(200_000);
    const started = performance.now();
    expect(fnmatchCase(name, '*a*a*a*a*a*a*a*a*a*a*b')).toBe(false);
    expect(fnmatchCase(name, '*[a]*[a]*?*[!b]*b')).toBe(false);
    expect(fnmatchCase(name + 'b', '*a*a*a*a*a*a*a*a*a*a*b')).toBe(true);
    expect(performance.now() - started).toBeLessThan(200);
  });
});

// Alphabets rich in the characters that carry meaning, plus a look-alike and an astral character.
const PATTERN_CHARS = ['a', 'b', 'z', '/', '.', '*', '*', '?', '[', '[', ']', ']', '!', '!', '-', '-', '^', '\\', '&', 'é', '😀'];
const NAME_CHARS = ['a', 'b', 'z', '/', '.', '-', ']', '[', '!', '^', '\\', '&', 'é', '😀', 'A'];

const patternArb = fc.array(fc.constantFrom(...PATTERN_CHARS), { maxLength: 10 }).map((cs) => cs.join(''));
const nameArb = fc.array(fc.constantFrom(...NAME_CHARS), { maxLength: 12 }).map((cs) => cs.join(''));
/** A name built from the pattern, so that matches are common, not rare. */
const nearNameArb = patternArb.chain((pattern) =>
  fc
    .array(fc.array(fc.constantFrom(...NAME_CHARS), { maxLength: 3 }), {
      minLength: pattern.length,
      maxLength: pattern.length,
    })
    .map((fills) => {
      const chars = Array.from(pattern);
      const name = chars
        .map((c, i) => (c === '*' ? (fills[i] ?? []).join('') : c === '?' || c === '[' || c === ']' ? (fills[i]?.[0] ?? 'a') : c))
        .join('');
      return [pattern, name] as [string, string];
    }),
);

/** Bracket expressions dense in `-`, `!`, `]` and reversed ranges, where Python's rules are subtle. */
const CLASS_CHARS = ['a', 'b', 'c', 'z', '-', '-', '-', '!', ']', '^', '\\', '[', 'é'];
const bracketArb = fc
  .tuple(
    fc.array(fc.constantFrom(...CLASS_CHARS), { minLength: 1, maxLength: 7 }),
    fc.constantFrom(...CLASS_CHARS, 'x', '😀'),
    fc.constantFrom('', '*', '?'),
  )
  .map(([inside, name, tail]) => [`[${inside.join('')}]${tail}`, name] as [string, string]);

describe.runIf(hasReference)('differential: ours vs Python fnmatch.fnmatchcase', () => {
  it('agrees on thousands of random pattern/name pairs', () => {
    const seed = Date.now();
    const pairs = [
      ...fc.sample(fc.tuple(patternArb, nameArb), { numRuns: 6000, seed }),
      ...fc.sample(nearNameArb, { numRuns: 6000, seed: seed + 1 }),
      ...fc.sample(bracketArb, { numRuns: 6000, seed: seed + 2 }),
    ];
    const expected = reference<boolean>('fnmatch', pairs);
    const wrong = pairs
      .map(([p, n], i) => ({ pattern: p, name: n, python: expected[i], ours: fnmatchCase(n, p) }))
      .filter((r) => r.python !== r.ours)
      .sort((x, y) => x.pattern.length + x.name.length - (y.pattern.length + y.name.length));
    expect(wrong.slice(0, 5), `seed ${seed}`).toEqual([]);
    // The batch must exercise both verdicts, or it proves little.
    expect(expected.filter(Boolean).length).toBeGreaterThan(1000);
  });
});

describe('robustness', () => {
  it('compiles and matches a pattern far over the rule-length cap without overflowing', () => {
    const long = 'a'.repeat(1_000_000);
    expect(compilePattern(long).matches(long)).toBe(true);
    expect(compilePattern(`${long}*`).matches(`${long}b`)).toBe(true);
    expect(compilePattern(`[${long}`).matches(`[${long}`)).toBe(true);
  });

  it('compiles a pattern of 200,000 unclosed [ in linear time', () => {
    const started = performance.now();
    expect(compilePattern('['.repeat(200_000)).matches('['.repeat(200_000))).toBe(true);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

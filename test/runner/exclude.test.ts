import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileExcludePatterns } from '../../src/runner/exclude.js';
import { referencePathspec } from './helpers/reference.js';
import { codeOf } from '../helpers/errors.js';

describe('gitwildmatch exclude patterns (pathspec 0.11)', () => {
  const defaults = ['*.link*', '.git', '*.pyc', '*~'];
  it.each([
    // [patterns, path, excluded]
    [defaults, 'a.txt', false],
    [defaults, 'b.abc123.link', true],
    [defaults, 'sub/x.link-unfinished', true],
    [defaults, '.git', true],
    [defaults, 'sub/.git/config', true],
    [defaults, '.github', false],
    [defaults, 'm/cache.pyc', true],
    [defaults, 'notes~', true],
    [defaults, '/abs/notes~', true],
    [defaults, './a.link', true],
    [['sub'], 'sub', true],
    [['sub'], 'x/sub/y', true],
    [['sub/'], 'sub', false], // a trailing slash matches what is below, not the name itself
    [['sub/'], 'sub/y', true],
    [['/sub'], 'x/sub', false],
    [['a/b'], 'x/a/b', false],
    [['*.txt', '!keep.txt'], 'keep.txt', false],
    [['*.txt', '!keep.txt'], 'drop.txt', true],
    [['[!a]*'], 'b', true],
    [['[!a]*'], 'a', false],
    [['[]]'], ']', true],
    [['[^x]'], '^', true], // pathspec escapes a leading ^: a set of ^ and x
    [['[^x]'], 'y', false],
    [['\\#x'], '#x', true],
    [['#x'], '#x', false], // a comment
    [['  a  '], 'a', true], // surrounding whitespace is stripped
    [['**/'], 'a/b', true],
    [['**/'], 'a', false],
    [['a/**/b'], 'a/x/y/b', true],
    [['a/**/b'], 'a/b', true],
    [['?'], '😀', true], // one code point, not one UTF-16 unit
    [['x'], 'x\n', true], // Python's $ matches before a final newline
  ] as const)('%j on %j -> %s', (patterns, path, excluded) => {
    expect(compileExcludePatterns(patterns).excludes(path)).toBe(excluded);
  });

  it.each(['a\\', '!', '[z-a]', '[a-\\]'])('refuses the invalid pattern %j with E_USAGE', (pattern) => {
    expect(codeOf(() => compileExcludePatterns([pattern]))).toBe('E_USAGE');
  });

  it('refuses a pattern with a lone surrogate', () => {
    expect(codeOf(() => compileExcludePatterns(['a\ud800']))).toBe('E_USAGE');
  });

  it('matches exactly what pathspec matches (differential property, one Python run)', () => {
    const patternChars = ['a', 'b', '.', '*', '*', '?', '[', ']', '!', '^', '-', '\\', '/', '/', '#', ' ', '\t', '\u0085', '\u00e9', '\u{1f600}', 'z'];
    const pathChars = ['a', 'b', '.', '/', '/', '-', '^', '!', '[', ']', '\\', '\u00e9', '\u{1f600}', ' ', '\n', '~', '#', 'z'];
    const pattern = fc.array(fc.constantFrom(...patternChars), { maxLength: 8 }).map((cs) => cs.join(''));
    const path = fc.array(fc.constantFrom(...pathChars), { minLength: 1, maxLength: 10 }).map((cs) => cs.join(''));
    const caseArb = fc.record({
      patterns: fc.array(pattern, { minLength: 1, maxLength: 3 }),
      paths: fc.array(path, { minLength: 1, maxLength: 8 }),
    });
    const cases = fc.sample(caseArb, { numRuns: 3000, seed: 20240611 });
    // Sprinkle in paths built from the patterns' own text, so that literal matches are common.
    for (const c of cases) c.paths.push(...c.patterns.map((p) => p.replace(/[*?[\]\\!#]/g, '')).filter((p) => p !== ''));
    const expected = referencePathspec(cases);
    let compared = 0;
    cases.forEach((c, i) => {
      const want = expected[i]!;
      const context = JSON.stringify(c);
      if ('error' in want) {
        expect(codeOf(() => compileExcludePatterns(c.patterns)), context).toBe('E_USAGE');
        return;
      }
      const filter = compileExcludePatterns(c.patterns);
      c.paths.forEach((p, k) => {
        expect(filter.excludes(p), `${context} path ${JSON.stringify(p)}`).toBe(want.matches[k]);
        compared++;
      });
    });
    expect(compared).toBeGreaterThan(5000);
  });
});

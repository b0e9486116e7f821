import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isUnder, normalizeRelative, pathProblem } from '../../src/oms/paths.js';
import { BAD_PATH } from '../../src/oms/statement.js';

describe('OMS resource names', () => {
  it('the one-regex screen agrees with pathProblem on every string of a small alphabet', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', '.', '/', '\0', '\ud800', '\udc00', 'é'), { minLength: 1, maxLength: 8 }), (parts) => {
        const name = parts.join('');
        expect(BAD_PATH.test(name)).toBe(pathProblem(name) !== undefined);
      }),
      { numRuns: 2000 },
    );
  });
  it.each(['a', 'a/b', 'a.b/.c', '..a', 'a..', 'dir/file.safetensors'])('%s is canonical', (name) => expect(pathProblem(name)).toBeUndefined());
  it.each(['/a', 'a/', 'a//b', './a', 'a/./b', '../a', 'a/..', '.', '..', ''])('%s is refused', (name) => expect(pathProblem(name)).toBeDefined());
  it('ignore paths are normalised and matched as exact prefixes', () => {
    expect(normalizeRelative('./cache//x/')).toBe('cache/x');
    expect(normalizeRelative('a/../b')).toBeUndefined();
    expect(isUnder('cache/x', 'cache')).toBe(true);
    expect(isUnder('cachet', 'cache')).toBe(false);
  });
});

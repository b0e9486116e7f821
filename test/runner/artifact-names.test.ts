import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertRecordableName,
  assertRecordableNames,
  checkLstripPrefixes,
  childName,
  lstripCovers,
  lstripName,
  pythonNormpath,
} from '../../src/runner/artifact-names.js';
import { referenceNormpath } from './helpers/reference.js';
import { codeOf } from '../helpers/errors.js';

describe('pythonNormpath', () => {
  it.each([
    ['', '.'],
    ['.', '.'],
    ['./a.txt', 'a.txt'],
    ['sub/../a.txt', 'a.txt'],
    ['sub/', 'sub'],
    ['../x', '../x'],
    ['a/../../x', '../x'],
    ['/..', '/'],
    ['//x', '//x'],
    ['///x', '/x'],
  ])('%j -> %j', (input, output) => {
    expect(pythonNormpath(input)).toBe(output);
  });

  it('agrees with posixpath.normpath (differential property, one Python run)', () => {
    const arb = fc.array(fc.constantFrom('a', 'b', '.', '..', '', '/', 'é'), { maxLength: 8 }).map((parts) => parts.join('/'));
    const inputs = fc.sample(arb, { numRuns: 2000, seed: 7 });
    const expected = referenceNormpath(inputs);
    inputs.forEach((input, i) => expect(pythonNormpath(input), JSON.stringify(input)).toBe(expected[i]));
  });

  it('joins a child as normpath(join(dir, name)) does', () => {
    expect(childName('.', 'a')).toBe('a');
    expect(childName('sub', 'a')).toBe('sub/a');
    expect(childName('/', 'a')).toBe('/a');
    expect(childName('//', 'a')).toBe('//a');
  });
});

describe('--lstrip-paths', () => {
  it('strips the first matching prefix as plain text', () => {
    expect(lstripName('sub/a.txt', ['sub/'])).toBe('a.txt');
    expect(lstripName('sub/a.txt', ['x/', 'sub/'])).toBe('a.txt');
    expect(lstripName('sub/a.txt', ['sub'])).toBe('/a.txt');
    expect(lstripName('other/a.txt', ['sub/'])).toBe('other/a.txt');
  });

  it('refuses overlapping prefixes with E_LSTRIP, as the reference', () => {
    expect(codeOf(() => checkLstripPrefixes(['sub/', 'sub/deeper/']))).toBe('E_LSTRIP');
    expect(codeOf(() => checkLstripPrefixes(['a/', 'a/']))).toBe('E_LSTRIP');
    expect(codeOf(() => checkLstripPrefixes(['a/', 'b/']))).toBeUndefined();
  });

  it('covers a directory given without its trailing slash', () => {
    expect(lstripCovers('/tmp/my/review/docs', ['/tmp/my/review/docs/'])).toBe(true);
    expect(lstripCovers('/tmp/my/review/docs/document.pdf', ['/tmp/my/review/docs/'])).toBe(true);
    expect(lstripCovers('/tmp/my', ['/tmp/my/review/'])).toBe(false);
  });
});

describe('names the runner may record', () => {
  it.each([
    ['/abs/a.txt', 'absolute'],
    ['a\nb', 'control character'],
    ['e\u0301.txt', 'not NFC'],
    ['x/../y', 'dot-dot'],
    ['a\ud800', 'lone surrogate'],
  ])('refuses %j (%s) with E_ARTIFACT_NAME', (name) => {
    expect(codeOf(() => assertRecordableName(name, name))).toBe('E_ARTIFACT_NAME');
  });

  it.each([
    ['sub\\evil', 'backslash'],
    ['model.pkl\u200b', 'zero-width space'],
    ['evil\u202elkp.exe', 'right-to-left override'],
  ])('refuses %j (%s) with E_ARTIFACT_ALIAS', (name) => {
    expect(codeOf(() => assertRecordableName(name, name))).toBe('E_ARTIFACT_ALIAS');
  });

  it('refuses, before hashing, two names of one recording equal under case folding (E_ARTIFACT_ALIAS)', () => {
    expect(codeOf(() => assertRecordableNames(['data/a.csv', 'Model.pkl', 'model.pkl']))).toBe('E_ARTIFACT_ALIAS');
    expect(codeOf(() => assertRecordableNames(['straße', 'STRASSE']))).toBe('E_ARTIFACT_ALIAS');
    expect(codeOf(() => assertRecordableNames(['README', 'src/README', 'Makefile', 'é', 'É/x']))).toBeUndefined();
  });

  it('accepts ordinary, dotted, spaced and Unicode names', () => {
    for (const name of ['a.txt', '.hidden', 'with space.txt', '\u00e9t\u00e9/日本.txt', '__proto__']) {
      expect(codeOf(() => assertRecordableName(name, name))).toBeUndefined();
    }
  });
});

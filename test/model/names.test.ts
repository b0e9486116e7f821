import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { artifactNameFault, caseFoldCollision, foldCase, stepNameProblem } from '../../src/model/names.js';

/**
 * Names that alias each other or fool a reader (issue 18): their own code, E_ARTIFACT_ALIAS,
 * apart from names that are simply malformed (E_ARTIFACT_NAME).
 */

describe('artifactNameFault', () => {
  it.each([
    ['sub\\evil.sh', 'E_ARTIFACT_ALIAS'],
    ['model.pkl\u200b', 'E_ARTIFACT_ALIAS'],
    ['a\u200db', 'E_ARTIFACT_ALIAS'],
    ['invoice\u202efdp.exe', 'E_ARTIFACT_ALIAS'],
    ['x\u2066y', 'E_ARTIFACT_ALIAS'],
    ['\ufeffdata.csv', 'E_ARTIFACT_ALIAS'],
    ['emoji\ufe0f', 'E_ARTIFACT_ALIAS'],
    ['a/../b', 'E_ARTIFACT_NAME'],
    ['./a', 'E_ARTIFACT_NAME'],
    ['a\u0001', 'E_ARTIFACT_NAME'],
    ['', 'E_ARTIFACT_NAME'],
  ])('%j: %s', (name, code) => {
    expect(artifactNameFault(name)?.code).toBe(code);
  });

  it('accepts ordinary names, Unicode included', () => {
    for (const name of ['a.txt', 'data/000/f1.bin', '.hidden', 'with space', 'été/日本.txt', '__proto__', 'a-b_c+d=e~f']) expect(artifactNameFault(name)).toBeUndefined();
  });
});

describe('case-fold collisions', () => {
  it('finds two names equal without case, Unicode full case mapping included', () => {
    expect(caseFoldCollision(['a/Model.pkl', 'a/model.pkl'])).toEqual(['a/model.pkl', 'a/Model.pkl']);
    expect(caseFoldCollision(['README', 'ReadMe'])).toEqual(['README', 'ReadMe']);
    expect(caseFoldCollision(['straße.csv', 'STRASSE.CSV'])).toBeDefined();
    expect(caseFoldCollision(['ſ', 's'])).toBeDefined();
    expect(caseFoldCollision(['É', 'é'])).toBeDefined();
  });

  it('leaves distinct names alone', () => {
    expect(caseFoldCollision(['README', 'src/README', 'a', 'b', 'é', 'e'])).toBeUndefined();
    expect(caseFoldCollision([])).toBeUndefined();
  });

  it('property: agrees with comparing every pair by foldCase', () => {
    const name = fc.stringMatching(/^[aAbBßsSſéÉ]{1,3}$/);
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 8 }), (names) => {
        let pair = false;
        for (let i = 0; i < names.length; i++) for (let j = i + 1; j < names.length; j++) if (foldCase(names[i]!) === foldCase(names[j]!)) pair = true;
        expect(caseFoldCollision(names) !== undefined).toBe(pair);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('step names', () => {
  it.each(['.train', '.', '..', '.x.y', 'a\u200bb', 'a\u202eb'])('refuses %j', (name) => {
    expect(stepNameProblem(name)).toBeDefined();
  });
  it.each(['train', 'train.v2', 'a-b_c', 'évaluer'])('accepts %j', (name) => {
    expect(stepNameProblem(name)).toBeUndefined();
  });
});

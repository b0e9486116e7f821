import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkLayoutSource } from '../../src/pipeline/load.js';
import { readYamlText } from '../../src/pipeline/yaml-source.js';
import { tempDir } from '../helpers/reference.js';
import { BASE_YAML, makeProject, NOW } from './helpers.js';

/**
 * THREATS.md invariant 1 for YAML layout sources: whatever the bytes, reading and checking
 * returns diagnostics (or throws one of our typed errors for the file itself); it never
 * throws anything else.
 */
const dir = tempDir('intoto-yaml-fuzz-');
makeProject(dir, ['alice', 'bob']);
const file = join(dir, 'fuzz.yaml');

const SPECIALS = ['&a ', '*a', '!!str ', '!x ', '<<: ', '? ', ': ', '- ', '[', ']', '{', '}', ',', '"', "'", '#', '|', '>', '\n', '  ', '\t', '---\n', '...\n', '%YAML 1.2\n', '\u0000', '\ufeff', '__proto__', 'constructor', '~', 'null', '0x1f', '1e999'];

const mutation = fc.record({ at: fc.nat(), insert: fc.constantFrom(...SPECIALS), cut: fc.nat({ max: 8 }) });

function mutate(text: string, edits: readonly { at: number; insert: string; cut: number }[]): string {
  let out = text;
  for (const edit of edits) {
    const at = edit.at % (out.length + 1);
    out = out.slice(0, at) + edit.insert + out.slice(at + edit.cut);
  }
  return out;
}

function onlyTyped(text: string): void {
  writeFileSync(file, text);
  try {
    const result = checkLayoutSource({ file, now: NOW });
    for (const d of result.diagnostics) {
      expect(typeof d.id).toBe('string');
      expect(d.message.length).toBeGreaterThan(0);
    }
  } catch (error) {
    expect((error as { code?: unknown }).code, String(error)).toMatch(/^E_[A-Z_]+$/);
  }
}

describe('YAML layout sources: only typed outcomes', () => {
  it('mutated layouts', () => {
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (edits) => onlyTyped(mutate(BASE_YAML, edits))), { numRuns: 300 });
  });

  it('arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (text) => onlyTyped(text)), { numRuns: 200 });
  });

  it('the reader itself never throws, on any string', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: fc.constantFrom(...SPECIALS, 'a', 'b', '1') }), (text) => {
        const result = readYamlText(text);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../src/canonical/encode.js';
import { generateSigningKey } from '../../src/crypto/keyfiles.js';
import { metablockText } from '../../src/model/envelope.js';
import { linkToJson, makeLink } from '../../src/model/link.js';
import { linkCanonicalBytes, linkMetablockText, writeLinkMetablock } from '../../src/model/link-text.js';

/** The link writer's fast path against the generic encoders: the same bytes, always. */

const key = generateSigningKey({ type: 'ed25519' });
const other = generateSigningKey({ type: 'ed25519' });

// Names and texts that exercise both paths: plain ASCII, quotes, backslashes, control
// characters, non-ASCII and astral characters, DEL, the empty string.
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom('', 'a"b', 'a\\b', 'tab\there', 'new\nline', 'del\u007f', 'é', '😀', '__proto__', 'sub/dir/file.csv', '~'),
);
const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
const digests = fc.dictionary(fc.constantFrom('sha256', 'sha512', 'md5', 'Sha', 'a"b'), hex, { maxKeys: 3 }).map((d) => new Map(Object.entries(d)));
const artifacts = fc.array(fc.tuple(text, digests), { maxLength: 8 }).map((entries) => new Map(entries));
const json = fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('.') && !JSON.stringify(v).includes('e'));
const link = fc.record({
  name: text,
  command: fc.array(text, { maxLength: 4 }),
  materials: artifacts,
  products: artifacts,
  byproducts: fc.oneof(
    fc.constant({}),
    fc.record({ 'return-value': fc.integer({ min: -15, max: 255 }), stdout: text, stderr: text }),
    fc.dictionary(text, json, { maxKeys: 3 }),
  ),
  environment: fc.dictionary(text, json, { maxKeys: 2 }),
});

describe('linkMetablockText', () => {
  it('is byte for byte metablockText(linkToJson(link)), signed, unsigned and with a repeated key', () => {
    fc.assert(
      fc.property(link, (fields) => {
        const l = makeLink(fields as Parameters<typeof makeLink>[0]);
        let generic: string;
        try {
          generic = metablockText(linkToJson(l), [key, other, key]);
        } catch (error) {
          // What the generic encoder refuses (numbers it cannot encode), the fast one refuses too.
          expect(() => linkMetablockText(l, [key, other, key])).toThrow();
          return;
        }
        expect(linkMetablockText(l, [key, other, key])).toBe(generic);
        expect(linkMetablockText(l, [])).toBe(metablockText(linkToJson(l), []));
        expect(Buffer.from(linkCanonicalBytes(l)).equals(Buffer.from(canonicalBytes(linkToJson(l))))).toBe(true);
      }),
      { numRuns: 1500 },
    );
  });

  it('refuses a lone surrogate in a name, as the generic encoder does', () => {
    const l = makeLink({ name: 's', command: [], materials: new Map([['bad\ud800', new Map([['sha256', 'a'.repeat(64)]])]]), products: new Map(), byproducts: {} });
    expect(() => metablockText(linkToJson(l), [key])).toThrow();
    expect(() => linkMetablockText(l, [key])).toThrow();
  });

  it('writes links of many artifacts in batches with the same bytes: one less, exactly and one more than a batch, several batches, escapes among them', () => {
    for (const count of [4095, 4096, 4097, 8192, 10_001]) {
      const entries: [string, Map<string, string>][] = [];
      for (let i = 0; i < count; i++) {
        const name = i % 1000 === 7 ? `dir/é "${i}".bin` : `dir/f${String(i).padStart(6, '0')}.bin`;
        const digests = i % 777 === 3 ? new Map([['sha512', 'b'.repeat(128)], ['sha256', 'a'.repeat(64)]]) : new Map([['sha256', (i % 16).toString(16).repeat(64)]]);
        entries.push([name, digests]);
      }
      const l = makeLink({ name: 'big', command: ['true'], materials: new Map(entries.slice(0, 10)), products: new Map(entries), byproducts: {} });
      expect(linkMetablockText(l, [key])).toBe(metablockText(linkToJson(l), [key]));
      expect(Buffer.from(linkCanonicalBytes(l)).equals(Buffer.from(canonicalBytes(linkToJson(l))))).toBe(true);
    }
  });

  it('hands the file to its sink in chunks, and refuses an unencodable name in an unsigned link before the end', () => {
    const entries: [string, Map<string, string>][] = [];
    for (let i = 0; i < 30_000; i++) entries.push([`f${String(i).padStart(6, '0')}`, new Map([['sha256', 'c'.repeat(64)]])]);
    const l = makeLink({ name: 'big', command: [], materials: new Map(), products: new Map(entries), byproducts: {} });
    const sizes: number[] = [];
    writeLinkMetablock(l, [key], (chunk) => sizes.push(chunk.length));
    expect(sizes.length).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1 << 20);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(Buffer.byteLength(metablockText(linkToJson(l), [key])));

    const bad = makeLink({ name: 'bad', command: [], materials: new Map(), products: new Map([...entries, ['z\ud800', new Map([['sha256', 'c'.repeat(64)]])]]), byproducts: {} });
    expect(() => writeLinkMetablock(bad, [], () => undefined)).toThrow(expect.objectContaining({ code: 'E_CANONICAL' }));
  });
});


import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../src/canonical/json.js';
import { generateSigningKey, loadPublicKeyFile } from '../../src/crypto/keyfiles.js';
import type { PublicKey } from '../../src/crypto/keys.js';
import { InTotoError } from '../../src/errors.js';
import { tableOf } from '../../src/model/artifact-table.js';
import { metablockText, parseEnvelope, verifiedPayload } from '../../src/model/envelope.js';
import { linkFromJson, type Link } from '../../src/model/link.js';
import { readLinkMetablock, readSlot } from '../../src/model/link-reader.js';
import { metadataType } from '../../src/model/metadata.js';
import { CAPS, LINK_SCHEMA } from '../../src/model/schemas.js';

/**
 * The one-pass link reader (link-reader.ts) against the general path it replaces for link
 * files: parseEnvelope, the signature check over canonicalBytes(signed), then linkFromJson on
 * the payload. For every input, well-formed, unusual or malformed, both must give the same
 * outcome: the same signed bytes and the same Link (maps in the same order), or the same error
 * (code and message), or the same "not signed". And for links in the usual form the one pass
 * must really be the one that ran.
 */

const key = generateSigningKey({ type: 'ed25519' });
const other = generateSigningKey({ type: 'ed25519' });
const FIXTURES = new URL('../fixtures/reference/', import.meta.url).pathname;

type Outcome =
  | { readonly error: string }
  | { readonly unsigned: true }
  | { readonly payload: JsonValue }
  | { readonly link: unknown; readonly signedBytes: string };

/** A Link as plain data, with the order of its maps and digest dicts kept. */
function shape(link: Link): unknown {
  const artifacts = (map: Link['materials']): unknown => [...map].map(([name, digests]) => [name, [...digests], digests.size]);
  return {
    frozen: Object.isFrozen(link) && Object.isFrozen(link.command),
    type: link.type,
    name: link.name,
    command: link.command,
    materials: artifacts(link.materials),
    products: artifacts(link.products),
    byproducts: link.byproducts,
    environment: link.environment,
    prototypes: [Object.getPrototypeOf(link.byproducts), Object.getPrototypeOf(link.environment)],
  };
}

function failure(error: unknown): Outcome {
  if (error instanceof InTotoError) return { error: `${error.code}: ${error.message}` };
  throw error;
}

function general(bytes: Uint8Array, signer: PublicKey): Outcome {
  try {
    const envelope = parseEnvelope(bytes, 'f.link');
    const payload = verifiedPayload(envelope, signer);
    if (payload === undefined) return { unsigned: true };
    if (metadataType(payload) !== 'link') return { payload };
    return { link: shape(linkFromJson(payload, 'f.link')), signedBytes: Buffer.from(envelope.signedBytes).toString('hex') };
  } catch (error) {
    return failure(error);
  }
}

function onePass(bytes: Uint8Array, signer: PublicKey): Outcome {
  try {
    // readSlot writes over the bytes it is given (a reused read buffer in the verifier), and
    // reads them again when the pass declined after writing.
    const content = readSlot(new Uint8Array(bytes), 'f.link', [signer], () => new Uint8Array(bytes));
    if (content.kind === 'unsigned') return { unsigned: true };
    const read = readLinkMetablock(bytes, 'f.link');
    // The link comes from the one pass exactly when the one pass reads the file.
    expect(content.kind === 'link').toBe(read !== undefined);
    const signedBytes = Buffer.from(read?.envelope.signedBytes ?? parseEnvelope(bytes, 'f.link').signedBytes).toString('hex');
    if (content.kind === 'link') {
      expect(content.signers).toEqual([signer]);
      // The tables list the maps' entries, in order, and their indexed reads agree.
      for (const map of [content.link.materials, content.link.products]) {
        const table = tableOf(map);
        expect(table).toBe(map);
        expect([...table.names]).toEqual([...map.keys()]);
        table.names.forEach((name, i) => {
          expect(table.indexOf(name)).toBe(i);
          expect([...table.digestsAt(i)]).toEqual([...(map.get(name) ?? [])]);
        });
      }
      return { link: shape(content.link), signedBytes };
    }
    if (metadataType(content.payload) !== 'link') return { payload: content.payload };
    return { link: shape(linkFromJson(content.payload, 'f.link')), signedBytes };
  } catch (error) {
    return failure(error);
  }
}

function same(bytes: Uint8Array, signer: PublicKey = key.public): Outcome {
  const expected = general(bytes, signer);
  expect(onePass(bytes, signer)).toEqual(expected);
  return expected;
}

const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

// Names: mostly plain paths (the one pass), some it leaves to the general path (escapes,
// non-ASCII, all digits), some invalid (E_ARTIFACT_NAME after the signature check).
const segment = fc.stringMatching(/^[A-Za-z0-9 ._~+=-]{1,8}$/).filter((s) => s !== '.' && s !== '..');
const plainName = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
const name = fc.oneof(
  { weight: 30, arbitrary: plainName },
  { weight: 1, arbitrary: fc.constantFrom('a"b', 'a\\b', 'é/x', 'caf\u0065\u0301', '😀', '123', '0', '07', '__proto__', 'constructor', 'tab\tx', 'del\u007fx') },
  { weight: 1, arbitrary: fc.constantFrom('./x', 'a/../b', '/abs', 'a//b', 'dir/', '', '.', '..', 'x/.') },
);
const hexOf = (n: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
const digest = fc.oneof(
  { weight: 40, arbitrary: fc.tuple(fc.constant('sha256'), hexOf(64)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('sha512', 'sha384', 'md5', 'sha1', 'sha224'), hexOf(128)).map(([a, h]) => [a, h.slice(0, { sha512: 128, sha384: 96, md5: 32, sha1: 40, sha224: 56 }[a])] as [string, string]) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('blake2b', 'sha3_256', '256', 'x-y'), hexOf(64)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('sha256', 'SHA256', 'sha-256!', ''), fc.constantFrom('ABCDEF'.repeat(10) + 'abcd', 'a'.repeat(63), 'g'.repeat(64), 'a'.repeat(65), '')) },
);
const digests = fc.oneof(
  { weight: 10, arbitrary: fc.array(digest, { minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constant([] as [string, string][]) },
);
const artifacts = fc.array(fc.tuple(name, digests), { maxLength: 6 });
const integersOnly = (v: unknown): boolean =>
  typeof v === 'number' ? Number.isSafeInteger(v) : typeof v === 'object' && v !== null ? Object.values(v).every(integersOnly) : true;
const json = fc.jsonValue({ maxDepth: 3 }).filter(integersOnly) as fc.Arbitrary<JsonValue>;
const linkFields = fc.record({
  name: fc.oneof(plainName, fc.string()),
  command: fc.array(fc.string(), { maxLength: 3 }),
  materials: artifacts,
  products: artifacts,
  byproducts: fc.oneof(
    fc.constant({ 'return-value': 0, stderr: '', stdout: '' } as Record<string, JsonValue>),
    fc.dictionary(fc.constantFrom('return-value', 'stdout', 'stderr', 'other'), json, { maxKeys: 3 }),
  ),
  environment: fc.dictionary(fc.string({ maxLength: 5 }), json, { maxKeys: 2 }),
});

type Fields = typeof linkFields extends fc.Arbitrary<infer T> ? T : never;

/** The `signed` object of a link with these fields (duplicate names: the last one wins, as JSON would). */
function signedObject(fields: Fields, type = 'link'): Record<string, JsonValue> {
  const map = (entries: [string, [string, string][]][]): Record<string, JsonValue> => {
    const out: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
    for (const [n, ds] of entries) {
      const dict: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
      for (const [a, h] of ds) dict[a] = h;
      out[n] = dict;
    }
    return out;
  };
  return {
    _type: type,
    byproducts: fields.byproducts,
    command: fields.command,
    environment: fields.environment,
    materials: map(fields.materials),
    name: fields.name,
    products: map(fields.products),
  };
}

/** The file as the reference writes it, signed by `key`. */
function referenceText(signed: Record<string, JsonValue>): string {
  return metablockText(signed, [key]);
}

/** The same envelope written another way: compact, keys in another order, escapes. */
function otherLayout(text: string, how: 'compact' | 'reversed' | 'escaped' | 'crlf'): string {
  const value = JSON.parse(text) as { signatures: unknown; signed: Record<string, unknown> };
  if (how === 'compact') return JSON.stringify(value);
  if (how === 'reversed') return JSON.stringify({ signed: Object.fromEntries(Object.entries(value.signed).reverse()), signatures: value.signatures });
  if (how === 'escaped') return JSON.stringify(value, null, 2).replace(/\//g, '\\/');
  return JSON.stringify(value, null, '\t').replace(/\n/g, '\r\n');
}

describe('the one-pass link reader against the general path', () => {
  it('the artifact maps are, in the schema, exactly what the one pass checks entry by entry', () => {
    expect(LINK_SCHEMA.properties.materials).toEqual({ type: 'object', maxProperties: CAPS.artifactsPerLink });
    expect(LINK_SCHEMA.properties.products).toEqual({ type: 'object', maxProperties: CAPS.artifactsPerLink });
  });

  it('fixtures: links written by the reference (RSA-PSS and ECDSA signed) are read in one pass, identically', () => {
    const chain = join(FIXTURES, 'chain');
    const cases = [
      ['fetch.fe67b2c2.link', 'bob.pub'],
      ['package.bec7b6c6.link', 'carol.pub'],
    ] as const;
    for (const [file, pub] of cases) {
      const bytes = new Uint8Array(readFileSync(join(chain, file)));
      const signer = loadPublicKeyFile(join(FIXTURES, 'keys', pub));
      expect(readLinkMetablock(bytes, file)).toBeDefined();
      const outcome = same(bytes, signer);
      expect(outcome).toHaveProperty('link');
      expect(same(bytes, key.public)).toEqual({ unsigned: true });
    }
  });

  it('fixtures: a layout in a link slot (a sublayout) goes to the general path', () => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'chain', 'root.layout')));
    expect(readLinkMetablock(bytes, 'root.layout')).toBeUndefined();
    same(bytes, loadPublicKeyFile(join(FIXTURES, 'keys', 'alice.pub')));
  });

  it('property: any link, as the reference writes it: same outcome; the one pass runs for every valid link of plain names', () => {
    let onePassRuns = 0;
    fc.assert(
      fc.property(linkFields, (fields) => {
        const bytes = utf8(referenceText(signedObject(fields)));
        const outcome = same(bytes);
        expect(same(bytes, other.public)).toEqual({ unsigned: true });
        // Not plain: escapes, non-ASCII, and all-digit names or algorithms (array indices, which
        // the general path's Object.keys and for-in list first).
        const plain = [...fields.materials, ...fields.products].every(
          ([n, ds]) => /^[ -~]*$/.test(n) && !/^[0-9]+$/.test(n) && !/["\\]/.test(n) && ds.every(([a]) => !/^[0-9]+$/.test(a)),
        );
        const plainText = /^[ -~\n]*$/.test(Buffer.from(bytes).toString('latin1'));
        if ('link' in outcome && plain && plainText && !JSON.stringify(fields).includes('\\')) {
          expect(readLinkMetablock(bytes, 'f.link')).toBeDefined();
          onePassRuns++;
        }
      }),
      { numRuns: 1500 },
    );
    // The generator is not vacuous: a good share of its links take the one pass.
    expect(onePassRuns).toBeGreaterThan(1500 / 10);
  });

  it('property: the same links written compact, with keys out of order, with escapes or CRLF: same outcome', () => {
    fc.assert(
      fc.property(linkFields, fc.constantFrom('compact', 'reversed', 'escaped', 'crlf') as fc.Arbitrary<'compact' | 'reversed' | 'escaped' | 'crlf'>, (fields, how) => {
        same(utf8(otherLayout(referenceText(signedObject(fields)), how)));
      }),
      { numRuns: 600 },
    );
  });

  it('property: malformed and tampered files (bytes changed, cut, inserted): same outcome, same error code and message', () => {
    let acceptedInOnePass = 0;
    const snippets = ['"', '\\', ',', '}', '{', ']', ' ', '\n', '\u00e9', '\\u0000', '\\ud800', '1e5', '-0', '9007199254740993', '"sha256": "00"', '"x": 1, "x": 2', '\ufeff', '\u0000', '[[[[[[[[', 'null', '0'];
    fc.assert(
      fc.property(
        linkFields,
        fc.nat(),
        fc.nat({ max: 40 }),
        fc.constantFrom(...snippets),
        fc.constantFrom('replace', 'insert', 'cut', 'flip') as fc.Arbitrary<'replace' | 'insert' | 'cut' | 'flip'>,
        (fields, at, length, snippet, how) => {
          const text = referenceText(signedObject(fields));
          const i = at % (text.length + 1);
          let bytes: Uint8Array;
          if (how === 'flip') {
            bytes = utf8(text);
            if (bytes.length > 0) bytes[i % bytes.length]! ^= 1 << (at % 8);
          } else if (how === 'cut') bytes = utf8(text.slice(0, i) + text.slice(i + length));
          else if (how === 'insert') bytes = utf8(text.slice(0, i) + snippet + text.slice(i));
          else bytes = utf8(text.slice(0, i) + snippet + text.slice(i + snippet.length));
          if ('link' in same(bytes) && readLinkMetablock(bytes, 'f.link') !== undefined) acceptedInOnePass++;
        },
      ),
      { numRuns: 2000 },
    );
    // Some changes keep the file valid and signed (whitespace where whitespace was): the one
    // pass must have accepted those.
    expect(acceptedInOnePass).toBeGreaterThan(0);
  });

  it('signature objects: unknown fields ignored on both paths, but GPG\'s other_headers refused by name on both (E_KEY_UNSUPPORTED)', () => {
    const fields: Fields = {
      name: 'step',
      command: ['run'],
      materials: [['data/a.csv', [['sha256', 'a'.repeat(64)]]]],
      products: [['out.bin', [['sha256', 'b'.repeat(64)]]]],
      byproducts: { 'return-value': 0, stderr: '', stdout: '' },
      environment: {},
    };
    const text = referenceText(signedObject(fields));
    const withField = (extra: string): Uint8Array => utf8(text.replace(/"keyid": /, `${extra},\n   "keyid": `));
    // in-toto-golang's "cert": outside what the signature covers, ignored, and still one pass.
    const cert = withField('"cert": ""');
    expect(readLinkMetablock(cert, 'f.link')).toBeDefined();
    expect(same(cert)).toHaveProperty('link');
    // GPG's other_headers beside a sig: refused by name, whichever path reads it.
    const gpg = withField('"other_headers": "04000108001d162104"');
    expect(readLinkMetablock(gpg, 'f.link')).toBeUndefined();
    const outcome = same(gpg);
    expect((outcome as { error?: string }).error).toMatch(/^E_KEY_UNSUPPORTED: .*GPG/);
  });

  it('invalid links signed as they are: the general path reports them after the signature, with the same error', () => {
    const base: Fields = {
      name: 'step',
      command: ['run'],
      materials: [['data/a.csv', [['sha256', 'a'.repeat(64)]]]],
      products: [],
      byproducts: { 'return-value': 0, stderr: '', stdout: '' },
      environment: {},
    };
    const bad: [string, Record<string, JsonValue>][] = [
      ['E_ARTIFACT_NAME', signedObject({ ...base, products: [['sub/../evil.sh', [['sha256', 'b'.repeat(64)]]]] })],
      ['E_SCHEMA', signedObject({ ...base, products: [['x', [['sha256', 'B'.repeat(64)]]]] })],
      ['E_SCHEMA', signedObject({ ...base, products: [['x', []]] })],
      ['E_SCHEMA', signedObject({ ...base, products: [['x', Array.from({ length: 17 }, (_, i) => [`a${String(i).padStart(2, '0')}`, 'c'.repeat(16)] as [string, string])]] })],
      ['E_SCHEMA', { ...signedObject(base), byproducts: { 'return-value': 'zero' } }],
      ['E_SCHEMA', { ...signedObject(base), extra: 1 }],
      ['E_SCHEMA', { ...signedObject(base), command: 'run' }],
      ['E_SCHEMA', { ...signedObject(base), materials: [] as JsonValue }],
    ];
    for (const [code, signed] of bad) {
      const bytes = utf8(referenceText(signed));
      expect(readLinkMetablock(bytes, 'f.link')).toBeUndefined();
      const outcome = same(bytes);
      expect(outcome).toHaveProperty('error');
      expect((outcome as { error: string }).error.startsWith(code)).toBe(true);
    }
    // The same files signed by nobody we know are skipped, not errors, on both paths.
    for (const [, signed] of bad) expect(same(utf8(referenceText(signed)), other.public)).toEqual({ unsigned: true });
  });

  it('a link of many artifacts in the bench form: one pass, the same bytes and Link, and a tampered digest is never handed out', () => {
    const entries: [string, [string, string][]][] = Array.from({ length: 2000 }, (_, i) => [
      `data/${String(Math.floor(i / 100)).padStart(3, '0')}/f${String(i).padStart(5, '0')}.bin`,
      [['sha256', (i * 2654435761).toString(16).padStart(8, '0').repeat(8).slice(0, 64)]],
    ]);
    const text = referenceText(signedObject({ name: 'train', command: ['train'], materials: entries, products: entries.slice(5), byproducts: {}, environment: {} }));
    const bytes = utf8(text);
    expect(readLinkMetablock(bytes, 'f.link')).toBeDefined();
    expect(same(bytes)).toHaveProperty('link');
    const at = text.indexOf('"sha256": "') + 12;
    const tampered = utf8(text.slice(0, at) + (text[at] === '0' ? '1' : '0') + text.slice(at + 1));
    expect(readLinkMetablock(tampered, 'f.link')).toBeDefined(); // well-formed: read in one pass...
    expect(same(tampered)).toEqual({ unsigned: true }); // ...and not handed out: the signature fails
  });

  it('every truncation of a link (the end of the bytes in every position): same outcome, never read past the end', () => {
    const text = referenceText(signedObject({ name: 's', command: ['c'], materials: [['a b/c', [['sha256', 'a'.repeat(64)], ['sha512', 'b'.repeat(128)]]]], products: [['x', [['blake2b', 'c'.repeat(64)]]]], byproducts: {}, environment: {} }));
    const bytes = utf8(text);
    expect(readLinkMetablock(bytes, 'f.link')).toBeDefined();
    for (let end = 0; end < bytes.length; end++) {
      const cut = bytes.subarray(0, end);
      expect(readLinkMetablock(cut, 'f.link')).toBeUndefined();
      expect(same(cut)).toHaveProperty('error');
    }
  });

  it('duplicate names, duplicate algorithms and keys out of order go to the general path', () => {
    const text = referenceText(signedObject({ name: 's', command: [], materials: [['a', [['sha256', 'a'.repeat(64)]]], ['b', [['sha256', 'b'.repeat(64)]]]], products: [], byproducts: {}, environment: {} }));
    const variants = [
      text.replace('"b": {', '"a": {'), // duplicate name
      text.replace(`"sha256": "${'b'.repeat(64)}"`, `"sha256": "${'b'.repeat(64)}", "sha256": "${'b'.repeat(64)}"`), // duplicate algorithm
      text.replace('"a": {', '"c": {'), // names out of order
      text.replace(`"sha256": "${'b'.repeat(64)}"`, `"sha512": "${'b'.repeat(128)}", "sha256": "${'b'.repeat(64)}"`), // algorithms out of order
    ];
    for (const variant of variants) {
      expect(readLinkMetablock(utf8(variant), 'f.link')).toBeUndefined();
      same(utf8(variant));
    }
  });
});

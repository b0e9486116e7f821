import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../../src/canonical/parse.js';
import type { JsonValue } from '../../src/canonical/json.js';
import { loadPublicKeyFile } from '../../src/crypto/keyfiles.js';
import { publicKeyToObject } from '../../src/crypto/keys.js';
import { InTotoError } from '../../src/errors.js';
import { parseEnvelope, unverifiedPayload } from '../../src/model/envelope.js';
import { layoutFromJson, layoutToJson, parseExpires } from '../../src/model/layout.js';
import { linkFromJson, linkToJson } from '../../src/model/link.js';
import { metadataFromJson } from '../../src/model/metadata.js';
import { canonicalString } from '../../src/canonical/encode.js';
import { codeOf } from '../helpers/errors.js';

const FIXTURES = new URL('../fixtures/reference/', import.meta.url).pathname;
const layoutFile = join(FIXTURES, 'chain', 'root.layout');
const referenceLayout = (): Record<string, any> => JSON.parse(JSON.stringify(unverifiedPayload(parseEnvelope(readFileSync(layoutFile), layoutFile))));
const fetchLinkPath = (): string => {
  const bob = loadPublicKeyFile(join(FIXTURES, 'keys', 'bob.pub'));
  return join(FIXTURES, 'chain', `fetch.${bob.keyid.slice(0, 8)}.link`);
};
const referenceLink = (): Record<string, any> => JSON.parse(JSON.stringify(unverifiedPayload(parseEnvelope(readFileSync(fetchLinkPath()), 'link'))));

const load = (value: unknown): unknown => layoutFromJson(parseJson(JSON.stringify(value)), 'layout');

describe('layouts', () => {
  it('reads the reference layout: keys, steps, parsed rules, inspections', () => {
    const layout = layoutFromJson(unverifiedPayload(parseEnvelope(readFileSync(layoutFile), layoutFile)), 'root.layout');
    expect(layout.expires).toBe('2036-01-01T00:00:00Z');
    expect(layout.keys.size).toBe(2);
    expect(layout.steps.map((s) => s.name)).toEqual(['fetch', 'package']);
    expect(layout.steps[1]?.expectedMaterials[0]).toMatchObject({ kind: 'MATCH', pattern: 'data.csv', destStep: 'fetch', destType: 'products' });
    expect(layout.inspections[0]?.run).toEqual(['tar', 'xf', 'data.tar']);
    expect(Object.isFrozen(layout)).toBe(true);
  });
  it('writes back the same canonical bytes (apart from the reference\'s empty "private" field)', () => {
    const raw = referenceLayout();
    const layout = layoutFromJson(parseJson(JSON.stringify(raw)), 'x');
    for (const key of Object.values(raw['keys'] as Record<string, { keyval: Record<string, string> }>)) delete key.keyval['private'];
    expect(canonicalString(layoutToJson(layout))).toBe(canonicalString(parseJson(JSON.stringify(raw))));
  });

  type Mutation = [string, (l: Record<string, any>) => void, string];
  const firstKeyid = (l: Record<string, any>): string => Object.keys(l['keys'])[0]!;
  const table: Mutation[] = [
    ['an extra field inside signed', (l) => (l['extra'] = 1), 'E_SCHEMA'],
    ['a missing field', (l) => delete l['steps'], 'E_SCHEMA'],
    ['_type link where a layout is expected', (l) => (l['_type'] = 'link'), 'E_SCHEMA'],
    ['expires without Z', (l) => (l['expires'] = '2036-01-01T00:00:00'), 'E_EXPIRES_FORMAT'],
    ['expires with fractions', (l) => (l['expires'] = '2036-01-01T00:00:00.000Z'), 'E_EXPIRES_FORMAT'],
    ['expires on 30 February', (l) => (l['expires'] = '2036-02-30T00:00:00Z'), 'E_EXPIRES_FORMAT'],
    ['expires with an offset', (l) => (l['expires'] = '2036-01-01T00:00:00+00:00'), 'E_EXPIRES_FORMAT'],
    ['threshold 0', (l) => (l['steps'][0]['threshold'] = 0), 'E_SCHEMA'],
    ['threshold -1', (l) => (l['steps'][0]['threshold'] = -1), 'E_SCHEMA'],
    ['threshold as a string', (l) => (l['steps'][0]['threshold'] = '1'), 'E_SCHEMA'],
    ['threshold above the number of keys', (l) => (l['steps'][0]['threshold'] = 2), 'E_THRESHOLD'],
    ['a step authorising a key not in keys', (l) => (l['steps'][0]['pubkeys'] = ['ab'.repeat(32)]), 'E_LAYOUT_KEYS'],
    ['a step listing one key twice', (l) => (l['steps'][0]['pubkeys'] = [l['steps'][0]['pubkeys'][0], l['steps'][0]['pubkeys'][0]]), 'E_LAYOUT_KEYS'],
    ['a key filed under the wrong keyid', (l) => {
      const id = firstKeyid(l);
      const key = l['keys'][id];
      delete l['keys'][id];
      delete key['keyid'];
      l['keys']['ab'.repeat(32)] = key;
    }, 'E_KEYID_MISMATCH'],
    ['a private key inside the layout', (l) => (l['keys'][firstKeyid(l)]['keyval']['private'] = 'secret'), 'E_KEY_PUBLIC_EXPECTED'],
    ['duplicate step names', (l) => l['steps'].push(JSON.parse(JSON.stringify(l['steps'][0]))), 'E_DUPLICATE_NAME'],
    ['a step and an inspection with one name', (l) => (l['inspect'][0]['name'] = 'fetch'), 'E_DUPLICATE_NAME'],
    ['a step name with a path separator', (l) => (l['steps'][0]['name'] = '../../x'), 'E_STEP_NAME'],
    ['an unknown rule keyword', (l) => (l['steps'][0]['expected_products'] = [['CREATEE', 'x']]), 'E_RULE_SYNTAX'],
    ['a rule with the wrong arity', (l) => (l['steps'][0]['expected_products'] = [['CREATE', 'x', 'y']]), 'E_RULE_SYNTAX'],
    ['MATCH without FROM', (l) => (l['steps'][1]['expected_materials'] = [['MATCH', 'x', 'WITH', 'PRODUCTS']]), 'E_RULE_SYNTAX'],
    ['MATCH FROM a step that does not exist', (l) => (l['steps'][1]['expected_materials'] = [['MATCH', 'x', 'WITH', 'PRODUCTS', 'FROM', 'nope']]), 'E_RULE_UNKNOWN_STEP'],
    ['a MATCH prefix climbing out of the tree', (l) => (l['steps'][1]['expected_materials'] = [['MATCH', 'x', 'IN', '../..', 'WITH', 'PRODUCTS', 'FROM', 'fetch']]), 'E_RULE_SYNTAX'],
    ['a keyid that is not hex', (l) => (l['steps'][0]['pubkeys'] = ['XYZ']), 'E_SCHEMA'],
    ['a rule that is a string, not a list', (l) => (l['steps'][0]['expected_products'] = ['CREATE x']), 'E_SCHEMA'],
  ];
  it.each(table)('attack: refuses %s', (_name, mutate, code) => {
    const layout = referenceLayout();
    mutate(layout);
    expect(codeOf(() => load(layout))).toBe(code);
  });

  it('attack: the same public key listed under two keyids is refused', () => {
    const layout = referenceLayout();
    const id = firstKeyid(layout);
    const key = layout['keys'][id];
    // The same key in the modern form (no keyid_hash_algorithms) hashes to another keyid.
    const modern = { keytype: key.keytype, scheme: key.scheme, keyval: { public: key.keyval.public } };
    const modernId = createHash('sha256').update(canonicalString(parseJson(JSON.stringify(modern)))).digest('hex');
    layout['keys'][modernId] = { ...modern, keyid: modernId };
    expect(codeOf(() => load(layout))).toBe('E_LAYOUT_KEYS');
  });

  it('reports every schema violation with its JSON path', () => {
    const layout = referenceLayout();
    layout['steps'][0]['threshold'] = 'x';
    layout['inspect'][0]['run'] = 7;
    try {
      load(layout);
      expect.unreachable();
    } catch (error) {
      const e = error as InTotoError;
      expect(e.code).toBe('E_SCHEMA');
      expect(e.details.join('\n')).toContain('/steps/0/threshold');
      expect(e.details.join('\n')).toContain('/inspect/0/run');
    }
  });

  it('parameters: substituted into rules and run; a missing one fails closed', () => {
    const layout = referenceLayout();
    layout['steps'][0]['expected_products'] = [['CREATE', '{FILE}'], ['DISALLOW', '*']];
    layout['inspect'][0]['run'] = ['tar', 'xf', '{TARBALL}'];
    const params = new Map([['FILE', 'data.csv'], ['TARBALL', 'data.tar']]);
    const parsed = layoutFromJson(parseJson(JSON.stringify(layout)), 'l', { params });
    expect(parsed.steps[0]?.expectedProducts[0]).toMatchObject({ kind: 'CREATE', pattern: 'data.csv' });
    expect(parsed.inspections[0]?.run).toEqual(['tar', 'xf', 'data.tar']);
    expect(codeOf(() => layoutFromJson(parseJson(JSON.stringify(layout)), 'l'))).toBe('E_PARAM');
    expect(layoutFromJson(parseJson(JSON.stringify(layout)), 'l', { keepPlaceholders: true }).inspections[0]?.run).toEqual(['tar', 'xf', '{TARBALL}']);
  });

  it('parseExpires accepts the exact form only', () => {
    expect(parseExpires('2030-12-31T23:59:59Z', 'x')).toBe(Date.UTC(2030, 11, 31, 23, 59, 59));
    expect(codeOf(() => parseExpires('2030-12-31T24:00:00Z', 'x'))).toBe('E_EXPIRES_FORMAT');
    expect(codeOf(() => parseExpires(' 2030-12-31T23:59:59Z', 'x'))).toBe('E_EXPIRES_FORMAT');
  });
});

describe('links', () => {
  it('reads a reference link and writes back the same canonical bytes', () => {
    const raw = referenceLink();
    const link = linkFromJson(parseJson(JSON.stringify(raw)), 'link');
    expect(link.name).toBe('fetch');
    expect(link.products.get('data.csv')?.get('sha256')).toMatch(/^[0-9a-f]{64}$/);
    expect(canonicalString(linkToJson(link))).toBe(canonicalString(parseJson(JSON.stringify(raw))));
  });
  const table: [string, (l: Record<string, any>) => void, string][] = [
    ['an upper-case digest', (l) => (l['products']['data.csv']['sha256'] = 'A'.repeat(64)), 'E_SCHEMA'],
    ['a digest of the wrong length', (l) => (l['products']['data.csv']['sha256'] = 'a'.repeat(63)), 'E_SCHEMA'],
    ['an empty hash object', (l) => (l['products']['data.csv'] = {}), 'E_SCHEMA'],
    ['a name with ..', (l) => (l['products']['sub/../evil.sh'] = { sha256: 'a'.repeat(64) }), 'E_ARTIFACT_NAME'],
    ['a name with a leading ./', (l) => (l['products']['./evil.sh'] = { sha256: 'a'.repeat(64) }), 'E_ARTIFACT_NAME'],
    ['a name with a trailing /', (l) => (l['products']['evil.sh/'] = { sha256: 'a'.repeat(64) }), 'E_ARTIFACT_NAME'],
    ['a name with a leading //', (l) => (l['products']['//evil.sh'] = { sha256: 'a'.repeat(64) }), 'E_ARTIFACT_NAME'],
    ['a name that is not NFC', (l) => (l['products']['e\u0301vil.sh'] = { sha256: 'a'.repeat(64) }), 'E_ARTIFACT_NAME'],
    ['a name with a control character', (l) => (l['products']['evil\n.sh'] = { sha256: 'a'.repeat(64) }), 'E_ARTIFACT_NAME'],
    ['a return value that is not an integer', (l) => (l['byproducts']['return-value'] = '0'), 'E_SCHEMA'],
    ['an extra field', (l) => (l['signature'] = 'x'), 'E_SCHEMA'],
  ];
  it.each(table)('attack: refuses %s', (_name, mutate, code) => {
    const link = referenceLink();
    mutate(link);
    expect(codeOf(() => linkFromJson(parseJson(JSON.stringify(link)), 'link'))).toBe(code);
  });
  it('keeps __proto__ as an ordinary artifact name', () => {
    const link = referenceLink();
    link['products'] = JSON.parse('{"__proto__":{"sha256":"' + 'a'.repeat(64) + '"}}');
    const parsed = linkFromJson(parseJson(JSON.stringify(link)), 'link');
    expect([...parsed.products.keys()]).toEqual(['__proto__']);
  });
  it('a link passed where a layout is expected is told apart by _type', () => {
    const value = parseJson(JSON.stringify(referenceLink()));
    expect(metadataFromJson(value, 'x').type).toBe('link');
    expect(codeOf(() => layoutFromJson(value as JsonValue, 'x'))).toBe('E_SCHEMA');
    expect(codeOf(() => metadataFromJson(parseJson('{"_type":"other"}'), 'x'))).toBe('E_METADATA_TYPE');
  });
});

// publicKeyToObject gives the layout form of a key; make sure it round-trips through the reader.
describe('key objects in layouts', () => {
  it('round-trip through publicKeyToObject', () => {
    const key = loadPublicKeyFile(join(FIXTURES, 'keys', 'alice.pub'));
    const layout = referenceLayout();
    layout['keys'][key.keyid] = publicKeyToObject(key);
    const parsed = layoutFromJson(parseJson(JSON.stringify(layout)), 'x');
    expect(parsed.keys.get(key.keyid)?.identity).toBe(key.identity);
  });
});

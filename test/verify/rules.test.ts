import { describe, expect, it } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import { lacksFinalDisallowAll, parseRule, parseRuleList } from '../../src/model/rules.js';
import { assertArtifactMap, assertArtifactNames } from '../../src/verify/artifacts.js';
import { assertHashDict } from '../../src/verify/artifacts.js';
import { compareHashes } from '../../src/verify/hashes.js';
import { artifacts, context, digests, sha256, verdict, type LinkArtifacts } from './helpers.js';
import { codeOf } from '../helpers/errors.js';

const none = new Map();

/** A three-step chain: ingest -> train -> evaluate. */
function chain(): Record<string, LinkArtifacts> {
  return {
    ingest: { materials: none, products: artifacts({ 'data.csv': 'rows', 'labels.csv': 'labels' }) },
    train: {
      materials: artifacts({ 'data.csv': 'rows', 'labels.csv': 'labels', 'train.py': 'code', 'old.log': 'log' }),
      products: artifacts({ 'data.csv': 'rows', 'labels.csv': 'labels', 'train.py': 'code2', 'model.pkl': 'weights', 'out/metrics.json': '{}' }),
    },
    evaluate: { materials: artifacts({ 'model.pkl': 'weights', 'eval/metrics.json': '{}' }), products: none },
  };
}

describe('each rule kind (table)', () => {
  const ctx = context('train', chain());
  it.each<[string, 'materials' | 'products', string[][], string | true]>([
    // CREATE consumes products that are not materials.
    ['CREATE consumes new products', 'products', [['CREATE', 'model.pkl'], ['CREATE', 'out/*'], ['ALLOW', '*.csv'], ['ALLOW', 'train.py'], ['DISALLOW', '*']], true],
    ['CREATE does not consume a product that was a material', 'products', [['CREATE', '*'], ['DISALLOW', '*.csv']], 'E_RULE_DISALLOW'],
    ['CREATE consumes nothing from the materials queue', 'materials', [['CREATE', '*'], ['DISALLOW', '*']], 'E_RULE_DISALLOW'],
    // DELETE consumes materials that are not products.
    ['DELETE consumes a removed material', 'materials', [['DELETE', 'old.log'], ['DISALLOW', 'old.log']], true],
    ['DELETE does not consume a kept material', 'materials', [['DELETE', '*'], ['DISALLOW', 'data.csv']], 'E_RULE_DISALLOW'],
    // MODIFY consumes artifacts in both with different digests.
    ['MODIFY consumes a changed file', 'products', [['MODIFY', 'train.py'], ['DISALLOW', 'train.py']], true],
    ['MODIFY does not consume an unchanged file', 'products', [['MODIFY', '*'], ['DISALLOW', 'data.csv']], 'E_RULE_DISALLOW'],
    ['MODIFY does not consume a created file', 'products', [['MODIFY', '*'], ['DISALLOW', 'model.pkl']], 'E_RULE_DISALLOW'],
    // ALLOW consumes every match; DISALLOW fails on any queued match.
    ['ALLOW then DISALLOW *', 'materials', [['ALLOW', '*'], ['DISALLOW', '*']], true],
    ['DISALLOW with nothing queued matching', 'materials', [['DISALLOW', '*.exe']], true],
    ['DISALLOW on a queued match', 'materials', [['DISALLOW', '*.py']], 'E_RULE_DISALLOW'],
    // REQUIRE looks at the queue, as the reference (verify_require_rule(pattern, artifacts_queue)).
    ['REQUIRE of a queued artifact', 'products', [['REQUIRE', 'model.pkl']], true],
    ['REQUIRE of a missing artifact', 'products', [['REQUIRE', 'report.pdf']], 'E_RULE_REQUIRE'],
    ['REQUIRE after the artifact was consumed', 'products', [['ALLOW', '*'], ['REQUIRE', 'model.pkl']], 'E_RULE_REQUIRE'],
    ['REQUIRE takes its operand literally, never as a pattern', 'products', [['REQUIRE', '*.pkl']], 'E_RULE_REQUIRE'],
    // MATCH: same path and digests in the destination step's link.
    ['MATCH against an earlier step', 'materials', [['MATCH', '*.csv', 'WITH', 'PRODUCTS', 'FROM', 'ingest'], ['DISALLOW', '*.csv']], true],
    ['MATCH against a later step', 'products', [['MATCH', 'model.pkl', 'WITH', 'MATERIALS', 'FROM', 'evaluate'], ['DISALLOW', 'model.pkl']], true],
    ['MATCH with a destination prefix', 'products', [['MATCH', 'metrics.json', 'IN', 'out', 'WITH', 'MATERIALS', 'IN', 'eval/', 'FROM', 'evaluate'], ['DISALLOW', 'out/*']], true],
    ['MATCH with only a source prefix looks up the stripped path', 'products', [['MATCH', '*', 'IN', 'out', 'WITH', 'MATERIALS', 'FROM', 'evaluate'], ['DISALLOW', 'out/*']], 'E_RULE_DISALLOW'],
    ['MATCH globs the remainder after the source prefix, not the prefix', 'products', [['MATCH', 'out*', 'IN', 'out', 'WITH', 'MATERIALS', 'IN', 'eval', 'FROM', 'evaluate'], ['DISALLOW', 'out/*']], 'E_RULE_DISALLOW'],
    ['MATCH of a file the destination does not have', 'materials', [['MATCH', 'train.py', 'WITH', 'PRODUCTS', 'FROM', 'ingest'], ['DISALLOW', 'train.py']], 'E_RULE_DISALLOW'],
    ['MATCH of a file with other digests', 'products', [['MATCH', 'train.py', 'WITH', 'MATERIALS', 'FROM', 'train'], ['DISALLOW', '*.py']], 'E_RULE_DISALLOW'],
    ['MATCH FROM a step without a link consumes nothing, and is no failure by itself', 'materials', [['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'nobody']], true],
    ['... but leaves everything to the DISALLOW', 'materials', [['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'nobody'], ['DISALLOW', '*']], 'E_RULE_DISALLOW'],
  ])('%s', (_, kind, rules, expected) => {
    const v = verdict(kind, rules, ctx);
    expect(v.ok ? true : v.code).toBe(expected);
  });
});

describe('queue semantics', () => {
  const ctx = context('train', chain());
  it('applies rules in order: a DISALLOW before the ALLOW fails, after it passes', () => {
    expect(verdict('materials', [['DISALLOW', 'old.log'], ['ALLOW', 'old.log']], ctx).ok).toBe(false);
    expect(verdict('materials', [['ALLOW', 'old.log'], ['DISALLOW', 'old.log']], ctx).ok).toBe(true);
  });

  it('hides consumed artifacts from later rules, and traces what each rule consumed', () => {
    const v = verdict('products', [['CREATE', '*'], ['MODIFY', '*'], ['ALLOW', 'model.pkl'], ['ALLOW', '*']], ctx);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.trace.map((t) => [t.rule, [...t.consumed].sort()])).toEqual([
      ['CREATE *', ['model.pkl', 'out/metrics.json']],
      ['MODIFY *', ['train.py']],
      ['ALLOW model.pkl', []], // already consumed by CREATE
      ['ALLOW *', ['data.csv', 'labels.csv']],
    ]);
  });

  it('keeps the queue per rule list: product rules start again from all products', () => {
    expect(verdict('materials', [['ALLOW', '*']], ctx).ok).toBe(true);
    expect(verdict('products', [['REQUIRE', 'data.csv']], ctx).ok).toBe(true);
  });
});

describe('failure messages', () => {
  it('name the step, the rule, the artifact and both digests of a failed MATCH', () => {
    const links = chain();
    links['evaluate'] = { materials: artifacts({ 'model.pkl': 'poisoned' }), products: none };
    const v = verdict('products', [['MATCH', 'model.pkl', 'WITH', 'MATERIALS', 'FROM', 'evaluate'], ['ALLOW', '*.csv'], ['DISALLOW', '*']], context('train', links));
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.code).toBe('E_RULE_DISALLOW');
    expect(v.message).not.toContain('\n');
    expect(v.message).toContain("step 'train'");
    expect(v.message).toContain("rule 'DISALLOW *' matched");
    expect(v.message).toContain('"model.pkl"');
    expect(v.message).toContain(`sha256 differs: ${sha256('weights')} (train products) vs ${sha256('poisoned')} (evaluate materials)`);
    expect(v.details.join('\n')).toContain("'MATCH model.pkl WITH MATERIALS FROM evaluate' consumed 0");
  });

  it('say why a REQUIRE failed: consumed earlier, or never there', () => {
    const ctx = context('train', chain());
    const consumed = verdict('products', [['ALLOW', '*.pkl'], ['REQUIRE', 'model.pkl']], ctx);
    expect(!consumed.ok && consumed.message).toMatch(/consumed earlier by 'ALLOW \*\.pkl'/);
    const missing = verdict('products', [['REQUIRE', 'report.pdf']], ctx);
    expect(!missing.ok && missing.message).toMatch(/not among the products/);
  });
});

describe('hash comparison (stricter than the reference)', () => {
  const s = (x: string) => ['sha256', sha256(x)] as [string, string];
  it.each<[string, [string, string][], [string, string][], string]>([
    ['equal sha256', [s('a')], [s('a')], 'equal'],
    ['different sha256', [s('a')], [s('b')], 'different'],
    ['a common strong digest, the rest disjoint', [s('a'), ['sha512', 'ab'.repeat(64)]], [s('a')], 'equal'],
    ['empty on both sides', [], [], 'uncheckable'],
    ['empty on one side', [s('a')], [], 'uncheckable'],
    ['md5 only, equal', [['md5', 'a'.repeat(32)]], [['md5', 'a'.repeat(32)]], 'uncheckable'],
    ['sha1 only, equal', [['sha1', 'a'.repeat(40)]], [['sha1', 'a'.repeat(40)]], 'uncheckable'],
    ['md5 only, different (a weak digest still proves a difference)', [['md5', 'a'.repeat(32)]], [['md5', 'b'.repeat(32)]], 'different'],
    ['disjoint strong algorithms', [s('a')], [['sha512', 'ab'.repeat(64)]], 'uncheckable'],
    ['sha256 agrees but md5 differs (contradictory)', [s('a'), ['md5', 'a'.repeat(32)]], [s('a'), ['md5', 'b'.repeat(32)]], 'uncheckable'],
  ])('%s', (_, ours, theirs, expected) => {
    expect(compareHashes(new Map(ours), new Map(theirs)).kind).toBe(expected);
  });
});

describe('attacks on artifact rules (THREATS.md)', () => {
  it.each(['sub/../evil.sh', './evil.sh', 'evil.sh/', '//evil.sh', '/evil.sh', 'a//evil.sh', 'evil.sh\n', 'e\u0301vil.sh'])(
    'refuses the non-normal name %j at link load (E_ARTIFACT_NAME), so it cannot slip past DISALLOW evil.sh',
    (name) => {
      expect(codeOf(() => assertArtifactNames(new Map([[name, digests('x')]]), "link 'train' products"))).toBe('E_ARTIFACT_NAME');
      expect(codeOf(() => assertArtifactMap(new Map([[name, digests('x')]]), "link 'train' products"))).toBe('E_ARTIFACT_NAME');
    },
  );

  it('reports every bad name at once', () => {
    let error: unknown;
    try {
      assertArtifactNames(['ok.txt', './a', 'b/../c'], 'link');
    } catch (e) {
      error = e;
    }
    expect((error as InTotoError).details).toHaveLength(2);
  });

  it('case variants and Unicode look-alikes are other files: a deny-list misses them, DISALLOW * catches them', () => {
    // On POSIX fnmatch is case-sensitive and compares code points, as the reference: `Evil.sh`
    // and `evil.ѕh` (Cyrillic dze) are different files from `evil.sh`, not spellings of it.
    // That is safe only with an allow-list: DISALLOW * refuses whatever was not explicitly
    // consumed, whatever its name looks like. Non-NFC spellings never get this far (above).
    const lookalikes = ['Evil.sh', 'EVIL.SH', 'evil.\u0455h', 'evil\u2024sh', '\uff45vil.sh'];
    for (const name of lookalikes) {
      const ctx = context('train', { train: { materials: none, products: artifacts({ [name]: 'payload', 'model.pkl': 'w' }) } });
      expect(codeOf(() => assertArtifactNames(ctx.products, 'link'))).toBeUndefined();
      expect(verdict('products', [['DISALLOW', 'evil.sh'], ['ALLOW', '*']], ctx).ok).toBe(true);
      const v = verdict('products', [['ALLOW', 'model.pkl'], ['DISALLOW', '*']], ctx);
      expect(v.ok ? 'passed' : v.code).toBe('E_RULE_DISALLOW');
      expect(!v.ok && v.message).toContain(JSON.stringify(name));
    }
  });

  it('MATCH between empty digest objects is not a match', () => {
    const links = {
      train: { materials: artifacts({ 'data.csv': new Map() }), products: none },
      ingest: { materials: none, products: artifacts({ 'data.csv': new Map() }) },
    };
    const v = verdict('materials', [['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'ingest'], ['DISALLOW', '*']], context('train', links));
    expect(v.ok ? 'passed' : v.code).toBe('E_RULE_DISALLOW');
    expect(!v.ok && v.message).toContain('no strong hash in common');
  });

  it('MATCH between md5-only digests is not a match', () => {
    const md5 = new Map([['md5', 'd41d8cd98f00b204e9800998ecf8427e']]);
    const links = {
      train: { materials: artifacts({ 'data.csv': md5 }), products: none },
      ingest: { materials: none, products: artifacts({ 'data.csv': md5 }) },
    };
    const v = verdict('materials', [['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'ingest'], ['DISALLOW', '*']], context('train', links));
    expect(v.ok ? 'passed' : v.code).toBe('E_RULE_DISALLOW');
    expect(!v.ok && v.message).toMatch(/no strong hash in common \(md5 vs md5\)/);
  });

  it('MODIFY with uncomparable digests does not consume (fail closed)', () => {
    const links = { train: { materials: artifacts({ 'x.py': new Map([['md5', 'a'.repeat(32)]]) }), products: artifacts({ 'x.py': digests('x') }) } };
    const v = verdict('products', [['MODIFY', '*'], ['DISALLOW', '*']], context('train', links));
    expect(v.ok ? 'passed' : v.code).toBe('E_RULE_DISALLOW');
  });

  it.each<[string, [string, string][]]>([
    ['upper-case hex', [['sha256', sha256('x').toUpperCase()]]],
    ['a wrong length', [['sha256', sha256('x').slice(1)]]],
    ['a sha512 of sha256 length', [['sha512', sha256('x')]]],
    ['non-hex digits', [['sha256', 'g'.repeat(64)]]],
    ['an upper-case algorithm name', [['SHA256', sha256('x')]]],
    ['an unknown algorithm with a non-hex digest', [['blake2b', 'not hex']]],
    ['an unknown algorithm with an odd-length digest', [['blake2b', 'abc']]],
    ['no entry at all', []],
    ['a __proto__ algorithm', [['__proto__', 'ab']]],
  ])('refuses a digest dict with %s at load (E_SCHEMA)', (_, entries) => {
    expect(codeOf(() => assertHashDict(new Map(entries), "link 'train' products 'model.pkl'"))).toBe('E_SCHEMA');
  });

  it('accepts lower-case digests of the right length, and unknown algorithms in lower-case hex', () => {
    expect(codeOf(() => assertHashDict(new Map([['sha256', sha256('x')], ['blake2b', 'ab'.repeat(32)]]), 'x'))).toBeUndefined();
    expect(codeOf(() => assertArtifactMap(artifacts({ 'a.txt': 'x', ['__proto__']: 'y' }), 'x'))).toBeUndefined();
  });

  it('refuses MATCH IN prefixes that climb out of the tree, at parse time', () => {
    for (const tokens of [
      ['MATCH', '*', 'IN', '../secrets', 'WITH', 'PRODUCTS', 'FROM', 'ingest'],
      ['MATCH', '*', 'WITH', 'PRODUCTS', 'IN', 'data/../../etc', 'FROM', 'ingest'],
    ]) {
      expect(codeOf(() => parseRule(tokens, 'step'))).toBe('E_RULE_SYNTAX');
    }
  });

  it('a rule list without DISALLOW * lets an unconsumed artifact through (so layout check warns)', () => {
    const rules = [['MATCH', '*.csv', 'WITH', 'PRODUCTS', 'FROM', 'ingest']];
    const ctx = context('train', chain());
    expect(verdict('materials', rules, ctx).ok).toBe(true); // train.py and old.log pass unchecked
    expect(lacksFinalDisallowAll(parseRuleList(rules, 'x'))).toBe(true);
    expect(verdict('materials', [...rules, ['DISALLOW', '*']], ctx).ok).toBe(false);
  });

  it('treats __proto__ and constructor as plain artifact and step names', () => {
    const links = {
      // Computed keys: a literal `__proto__:` would set the prototype instead of a key.
      ['__proto__']: { materials: none, products: artifacts({ constructor: 'c' }) },
      train: { materials: artifacts({ constructor: 'c', ['__proto__']: 'p' }), products: none },
    };
    const ctx = context('train', links);
    expect(ctx.materials.size).toBe(2);
    expect(verdict('materials', [['MATCH', 'constructor', 'WITH', 'PRODUCTS', 'FROM', '__proto__'], ['ALLOW', '__proto__'], ['DISALLOW', '*']], ctx).ok).toBe(true);
  });
});

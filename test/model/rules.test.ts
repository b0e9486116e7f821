import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import {
  assertMatchTargets,
  lacksFinalDisallowAll,
  matchTargets,
  parseRule,
  parseRuleList,
  parseRuleString,
  ruleToTokens,
  shlexSplit,
  type ArtifactRule,
} from '../../src/model/rules.js';
import { hasReference, reference } from '../verify/reference.js';
import { codeOf } from '../helpers/errors.js';

const W = "step 'train' expected_materials[2]";

describe('parseRule: the reference grammar', () => {
  it.each<[string[], Partial<ArtifactRule>]>([
    [['MATCH', '*.py', 'WITH', 'PRODUCTS', 'FROM', 'compile'], { kind: 'MATCH', pattern: '*.py', sourcePrefix: '', destType: 'products', destPrefix: '', destStep: 'compile' }],
    [['MATCH', '*.py', 'IN', 'src', 'WITH', 'MATERIALS', 'FROM', 'a'], { sourcePrefix: 'src', destType: 'materials', destPrefix: '' }],
    [['MATCH', '*.py', 'WITH', 'PRODUCTS', 'IN', 'build/', 'FROM', 'a'], { sourcePrefix: '', destPrefix: 'build/' }],
    [['MATCH', '*.py', 'IN', 'src', 'WITH', 'PRODUCTS', 'IN', 'build', 'FROM', 'compile'], { sourcePrefix: 'src', destPrefix: 'build', destStep: 'compile' }],
    [['match', 'Foo.PY', 'in', 'Src', 'with', 'pRoDuCtS', 'from', 'Step'], { pattern: 'Foo.PY', sourcePrefix: 'Src', destType: 'products', destStep: 'Step' }],
    [['MATCH', '*', 'IN', '', 'WITH', 'PRODUCTS', 'FROM', 'a'], { sourcePrefix: '' }], // '' is "no prefix", as the reference
    [['create', 'x'], { kind: 'CREATE', pattern: 'x' }],
    [['Delete', 'x'], { kind: 'DELETE' }],
    [['MODIFY', 'x'], { kind: 'MODIFY' }],
    [['ALLOW', '__proto__'], { kind: 'ALLOW', pattern: '__proto__' }],
    [['DISALLOW', '*'], { kind: 'DISALLOW', pattern: '*' }],
    [['REQUIRE', 'model.pkl'], { kind: 'REQUIRE', path: 'model.pkl' }],
  ])('parses %j', (tokens, expected) => {
    expect(parseRule(tokens, W)).toMatchObject(expected);
  });

  it.each<[string, unknown]>([
    ['not a list', 'ALLOW *'],
    ['an empty list', []],
    ['a keyword alone', ['ALLOW']],
    ['an unknown keyword', ['PERMIT', '*']],
    ['a non-string element', ['ALLOW', 7]],
    ['an extra operand', ['CREATE', 'a', 'b']],
    ['REQUIRE with two operands', ['REQUIRE', 'a', 'b']],
    ['MATCH without FROM', ['MATCH', 'a', 'WITH', 'PRODUCTS']],
    ['MATCH with FROM but no step', ['MATCH', 'a', 'IN', 'x', 'WITH', 'PRODUCTS', 'IN', 'y', 'FROM']],
    ['MATCH with an unknown destination type', ['MATCH', 'a', 'WITH', 'ARTIFACTS', 'FROM', 's']],
    ['MATCH with keywords out of place', ['MATCH', 'a', 'FROM', 's', 'WITH', 'PRODUCTS']],
    ['MATCH with IN twice before WITH', ['MATCH', 'a', 'IN', 'x', 'IN', 'y', 'WITH', 'PRODUCTS', 'FROM', 's']],
    ['an empty pattern', ['ALLOW', '']],
    ['an absolute pattern', ['DISALLOW', '/etc/passwd']],
    ['a pattern that climbs out', ['ALLOW', '../*']],
    ['a pattern with a .. segment inside', ['MATCH', 'a/../*', 'WITH', 'PRODUCTS', 'FROM', 's']],
    ['a pattern with a ./ segment', ['ALLOW', './evil.sh']],
    ['a pattern with a trailing /', ['DISALLOW', 'build/']],
    ['a pattern with a control character', ['ALLOW', 'a\nb']],
    ['a pattern with a lone surrogate', ['ALLOW', 'a\uD800']],
    ['a pattern not in NFC', ['ALLOW', 'cafe\u0301']],
    ['a too-long pattern', ['ALLOW', 'a'.repeat(5000)]],
    ['a source prefix that climbs out (THREATS: MATCH IN ..)', ['MATCH', '*', 'IN', '../x', 'WITH', 'PRODUCTS', 'FROM', 's']],
    ['a destination prefix that climbs out', ['MATCH', '*', 'WITH', 'PRODUCTS', 'IN', 'a/../..', 'FROM', 's']],
    ['a prefix of ..', ['MATCH', '*', 'IN', '..', 'WITH', 'PRODUCTS', 'FROM', 's']],
    ['an absolute prefix', ['MATCH', '*', 'WITH', 'PRODUCTS', 'IN', '/usr', 'FROM', 's']],
    ['a prefix with a backslash', ['MATCH', '*', 'IN', 'a\\b', 'WITH', 'PRODUCTS', 'FROM', 's']],
    ['a FROM step that is a path', ['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', '../../x']],
    ['a REQUIRE of a non-normal name', ['REQUIRE', './model.pkl']],
  ])('refuses %s with E_RULE_SYNTAX', (_, tokens) => {
    expect(codeOf(() => parseRule(tokens, W))).toBe('E_RULE_SYNTAX');
  });

  it('names the place and the rule in the message', () => {
    expect(() => parseRule(['MATCH', '*', 'IN', '../x', 'WITH', 'PRODUCTS', 'FROM', 's'], W)).toThrow(
      /^step 'train' expected_materials\[2\]: rule \["MATCH", "\*", "IN", "\.\.\/x".*climbs out/,
    );
  });

  it('keeps a hostile rule to one short line', () => {
    const error = (() => {
      try {
        parseRule(['ALLOW', `${'x'.repeat(10_000)}\n`], W);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error?.message.length).toBeLessThan(400);
    expect(error?.message).not.toContain('\n');
  });
});

describe('ruleToTokens and text', () => {
  const rules = [
    ['match', 'a b', 'in', 'src/', 'with', 'materials', 'in', 'out', 'from', 'x'],
    ['MATCH', "it's", 'WITH', 'PRODUCTS', 'FROM', 'x'],
    ['allow', '*.py'],
    ['REQUIRE', 'é'],
  ];
  it.each(rules)('round-trips %j through tokens and through text', (...tokens) => {
    const rule = parseRule(tokens, W);
    expect(parseRule(ruleToTokens(rule), W)).toEqual(rule);
    expect(parseRuleString(rule.text, W)).toEqual(rule);
  });

  it('writes keywords upper-case and omits empty prefixes', () => {
    const rule = parseRule(['match', '*', 'in', '', 'with', 'products', 'from', 's'], W);
    expect(ruleToTokens(rule)).toEqual(['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 's']);
    expect(rule.text).toBe('MATCH * WITH PRODUCTS FROM s');
  });
});

describe('parseRuleString (shlex.split, as add_material_rule_from_string)', () => {
  it('splits on whitespace and honours quotes', () => {
    expect(parseRuleString('MATCH foo WITH PRODUCTS FROM a', W)).toMatchObject({ kind: 'MATCH', pattern: 'foo', destStep: 'a' });
    expect(parseRuleString(`ALLOW "my file.txt"`, W)).toMatchObject({ pattern: 'my file.txt' });
    expect(parseRuleString(`  DISALLOW\t'*'  `, W)).toMatchObject({ kind: 'DISALLOW', pattern: '*' });
  });

  it.each(['ALLOW "unclosed', "ALLOW 'x", 'ALLOW x\\', '', 'ALLOW'])('refuses %j with E_RULE_SYNTAX', (text) => {
    expect(codeOf(() => parseRuleString(text, W))).toBe('E_RULE_SYNTAX');
  });

  const SHLEX_CHARS = ['a', ' ', ' ', '\t', '\n', '"', '"', "'", "'", '\\', '\\', '*', '#', 'é', '\u00a0'];
  it.runIf(hasReference)('splits exactly as Python shlex.split on random strings', () => {
    const seed = Date.now();
    const texts = fc.sample(fc.array(fc.constantFrom(...SHLEX_CHARS), { maxLength: 12 }).map((c) => c.join('')), { numRuns: 3000, seed });
    const expected = reference<{ tokens?: string[]; error?: string }>('shlex', texts);
    const wrong = texts
      .map((text, i) => {
        const ours = shlexSplit(text);
        const theirs = expected[i] ?? {};
        const same = ours.ok ? JSON.stringify(ours.tokens) === JSON.stringify(theirs.tokens) : ours.problem === theirs.error;
        return { text, ours, theirs, same };
      })
      .filter((r) => !r.same);
    expect(wrong.slice(0, 5), `seed ${seed}`).toEqual([]);
  });
});

// Token lists from the rule vocabulary, with operands that pass our stricter checks, so that
// acceptance must agree with unpack_rule exactly.
const WORDS = ['MATCH', 'match', 'IN', 'in', 'WITH', 'With', 'FROM', 'MATERIALS', 'products', 'CREATE', 'DELETE',
  'MODIFY', 'ALLOW', 'DISALLOW', 'REQUIRE', 'require', 'stuff'];
const OPERANDS = ['*.py', 'src', 'a', 'x/y', '[!a]?'];
const PREFIXES = ['src', 'build/', 'x/y', ''];
const ruleTokensArb = fc.array(fc.constantFrom(...WORDS, ...OPERANDS), { maxLength: 11 });
/** Well-formed MATCH rules in each of the four shapes, so acceptance is common. */
const matchShapesArb = fc
  .tuple(fc.boolean(), fc.boolean(), fc.constantFrom(...OPERANDS), fc.constantFrom(...PREFIXES), fc.constantFrom(...PREFIXES),
    fc.constantFrom('materials', 'PRODUCTS', 'Products', 'things'), fc.constantFrom(...WORDS, 'step'))
  .map(([src, dst, pattern, a, b, type, step]) => [
    'MATCH', pattern, ...(src ? ['IN', a] : []), 'WITH', type, ...(dst ? ['in', b] : []), 'FROM', step,
  ]);

describe.runIf(hasReference)('differential: parseRule vs rulelib.unpack_rule', () => {
  it('accepts exactly what the reference accepts, for operands we consider clean', () => {
    const seed = Date.now();
    const lists = [
      ...fc.sample(ruleTokensArb, { numRuns: 3000, seed }),
      ...fc.sample(matchShapesArb, { numRuns: 1000, seed: seed + 1 }),
    ];
    const expected = reference<{ ok: boolean }>('unpack', lists);
    const wrong = lists
      .map((tokens, i) => ({ tokens, theirs: expected[i]?.ok, ours: codeOf(() => parseRule(tokens, W)) === undefined }))
      .filter((r) => r.theirs !== r.ours);
    expect(wrong.slice(0, 5), `seed ${seed}`).toEqual([]);
    expect(expected.filter((r) => r.ok).length).toBeGreaterThan(500);
  });
});

describe('rule lists and layout-level helpers', () => {
  const list = [
    ['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'train'],
    ['MATCH', '*.csv', 'WITH', 'MATERIALS', 'FROM', 'ingest'],
    ['MATCH', '*.pkl', 'WITH', 'PRODUCTS', 'FROM', 'train'],
    ['ALLOW', 'README.md'],
  ];

  it('parses a list and reports every bad rule at once', () => {
    expect(parseRuleList(list, W)).toHaveLength(4);
    let error: unknown;
    try {
      parseRuleList([['ALLOW', '*'], ['FOO', 'x'], ['ALLOW', '../x']], "step 'a' expected_products");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InTotoError);
    expect((error as InTotoError).code).toBe('E_RULE_SYNTAX');
    expect((error as InTotoError).message).toMatch(/expected_products\[1\].*and 1 more/);
    expect((error as InTotoError).details).toHaveLength(2);
  });

  it('caps the number of rules (E_LIMIT)', () => {
    expect(codeOf(() => parseRuleList(Array.from({ length: 10_001 }, () => ['ALLOW', '*']), W))).toBe('E_LIMIT');
  });

  it('lists MATCH targets once each, for the layout loader', () => {
    expect(matchTargets(parseRuleList(list, W))).toEqual(['train', 'ingest']);
  });

  it('refuses MATCH ... FROM a step the layout does not define (E_RULE_UNKNOWN_STEP)', () => {
    const rules = parseRuleList(list, W);
    expect(codeOf(() => assertMatchTargets(rules, new Set(['train', 'ingest']), W))).toBeUndefined();
    expect(codeOf(() => assertMatchTargets(rules, new Set(['train']), W))).toBe('E_RULE_UNKNOWN_STEP');
    // A step called __proto__ is data, not a prototype lookup.
    expect(codeOf(() => assertMatchTargets(rules, new Set(['__proto__', 'constructor']), W))).toBe('E_RULE_UNKNOWN_STEP');
  });

  it('flags a list with no DISALLOW * (spec-legal; layout check warns)', () => {
    expect(lacksFinalDisallowAll([])).toBe(true);
    expect(lacksFinalDisallowAll(parseRuleList(list, W))).toBe(true);
    expect(lacksFinalDisallowAll(parseRuleList([...list, ['DISALLOW', '*.pkl']], W))).toBe(true);
    expect(lacksFinalDisallowAll(parseRuleList([...list, ['disallow', '**']], W))).toBe(false);
    expect(lacksFinalDisallowAll(parseRuleList([['DISALLOW', '*'], ['REQUIRE', 'x']], W))).toBe(false);
  });
});

describe('malformed globs: what fnmatch reads differently from a shell is refused at load', () => {
  it.each([
    ['[unclosed', 'unclosed'],
    ['data/[]', 'unclosed'],
    ['data/[!]', 'unclosed'],
    ['x[a', 'unclosed'],
    ['model.pkl\\', 'backslash'],
    ['a\\*b', 'backslash'],
    ['[\\]]', 'backslash'],
    ['[^.]*', "starting with '^'"],
    ['x[^a-z]', "starting with '^'"],
    ['[[:alpha:]]*', 'POSIX'],
    ['[[.a.]]', 'POSIX'],
    ['[[=a=]]', 'POSIX'],
    ['[z-a]*', 'reversed range'],
    ['v[9-0]', 'reversed range'],
    ['*\u200b', 'invisible'],
  ])('%j: E_RULE_SYNTAX (%s)', (pattern, why) => {
    for (const keywordFirst of [['DISALLOW', pattern], ['MATCH', pattern, 'WITH', 'PRODUCTS', 'FROM', 'a']]) {
      let error: unknown;
      try {
        parseRule(keywordFirst, W);
      } catch (e) {
        error = e;
      }
      expect((error as InTotoError | undefined)?.code).toBe('E_RULE_SYNTAX');
      expect((error as InTotoError).message).toContain(why);
    }
  });

  it.each(['*', '*.[ch]', '[!a]*', '[]a]', '[!]a]x', '[a-z0-9]*', '[-a]', '[a-]', 'a^b', '[a^]', 'x]', 'dir/[0-9][0-9]/*.csv', 'a-b/*'])(
    '%j stays a pattern (both readings agree)',
    (pattern) => {
      expect(codeOf(() => parseRule(['ALLOW', pattern], W))).toBeUndefined();
    },
  );

  it('property: random bracket text is either a pattern or E_RULE_SYNTAX, never another error or a crash', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z[\]!^:=.\-\\*?]{1,12}$/), (pattern) => {
        const code = codeOf(() => parseRule(['ALLOW', pattern], W));
        expect(code === undefined || code === 'E_RULE_SYNTAX').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import { artifacts, context, verdict, type LinkArtifacts } from './helpers.js';
import { hasReference, reference } from './reference.js';

/**
 * Differential tests of whole rule lists against the reference's verifylib.verify_item_rules,
 * with acceptable names and sha256-only digests (where our stricter hash rule coincides with
 * the reference's dict equality): the pass/fail verdicts must agree.
 */

const NAMES = ['a.py', 'b.py', 'src/a.py', 'src/b.py', 'src/x/c.py', 'build/a.py', 'build/src/a.py', 'model.pkl', 'data.csv', 'README', '[x]'];
const CONTENTS = ['v1', 'v2', 'v3'];
const PATTERNS = ['*', '*.py', 'a.py', '*.pkl', '?.py', '[ab].py', 'src/*', '*/a.py', '[!a]*', 'README', '[x]', 'x/*', '*a*'];
const PREFIXES = ['', 'src', 'src/', 'build', 'build/src', 'nope'];
const STEPS = ['s', 'd', 'missing'];

type Tokens = string[];
interface Case {
  kind: 'materials' | 'products';
  rules: Tokens[];
  links: Record<string, Record<'materials' | 'products', Record<string, string>>>;
}

const artifactsArb = fc.dictionary(fc.constantFrom(...NAMES), fc.constantFrom(...CONTENTS), { maxKeys: 7 });
const linkArb = fc.record({ materials: artifactsArb, products: artifactsArb });

const ruleArb: fc.Arbitrary<Tokens> = fc.oneof(
  fc
    .tuple(fc.constantFrom(...PATTERNS), fc.constantFrom(...PREFIXES), fc.constantFrom('MATERIALS', 'PRODUCTS'), fc.constantFrom(...PREFIXES), fc.constantFrom(...STEPS))
    .map(([pattern, src, type, dst, step]) => [
      'MATCH', pattern, ...(src === '' ? [] : ['IN', src]), 'WITH', type, ...(dst === '' ? [] : ['IN', dst]), 'FROM', step,
    ]),
  fc.tuple(fc.constantFrom('CREATE', 'DELETE', 'MODIFY', 'ALLOW', 'DISALLOW', 'DISALLOW'), fc.constantFrom(...PATTERNS)).map(([k, p]) => [k, p]),
  fc.constantFrom(...NAMES).map((name) => ['REQUIRE', name]),
);

const caseArb: fc.Arbitrary<Case> = fc.record({
  kind: fc.constantFrom('materials' as const, 'products' as const),
  rules: fc.array(ruleArb, { maxLength: 6 }),
  links: fc.record({ s: linkArb, d: linkArb }),
});

function toContext(c: Case) {
  const links: Record<string, LinkArtifacts> = {};
  for (const [name, link] of Object.entries(c.links)) {
    links[name] = { materials: artifacts(link.materials), products: artifacts(link.products) };
  }
  return context('s', links);
}

/** The case as the driver wants it: digests as {sha256: hex}. */
function toReference(c: Case, ctx: ReturnType<typeof toContext>) {
  const json = (m: ReadonlyMap<string, ReadonlyMap<string, string>>) =>
    Object.fromEntries([...m].map(([name, dict]) => [name, Object.fromEntries(dict)]));
  const links: Record<string, unknown> = {};
  for (const step of Object.keys(c.links)) {
    const link = ctx.linkOf(step);
    if (link !== undefined) links[step] = { materials: json(link.materials), products: json(link.products) };
  }
  return { source_name: 's', source_type: c.kind, rules: c.rules, links };
}

describe.runIf(hasReference)('differential: applyRules vs verifylib.verify_item_rules', () => {
  it('agrees on pass/fail for thousands of random rule lists and artifact sets', () => {
    const seed = Date.now();
    const cases = fc.sample(caseArb, { numRuns: 4000, seed });
    const contexts = cases.map(toContext);
    const expected = reference<{ ok: boolean; error?: string }>('rules', cases.map((c, i) => toReference(c, contexts[i]!)));
    const crashes = expected.filter((r) => !r.ok && r.error !== 'RuleVerificationError');
    expect(crashes.slice(0, 3), 'the reference itself crashed').toEqual([]);
    const wrong = cases
      .map((c, i) => {
        const ours = verdict(c.kind, c.rules, contexts[i]!, 's');
        return { case: c, python: expected[i]?.ok, ours: ours.ok ? true : ours.code };
      })
      .filter((r) => r.python !== (r.ours === true))
      .sort((x, y) => JSON.stringify(x.case).length - JSON.stringify(y.case).length);
    expect(wrong.slice(0, 3), `seed ${seed}`).toEqual([]);
    // Both verdicts must be common, or the comparison proves little.
    const passed = expected.filter((r) => r.ok).length;
    expect(passed).toBeGreaterThan(cases.length / 5);
    expect(passed).toBeLessThan((cases.length * 4) / 5);
  });
});

describe('fuzz: only typed errors escape', () => {
  it('any parsed rule list over any acceptable artifacts either passes or fails with E_RULE_*', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const v = verdict(c.kind, c.rules, toContext(c), 's');
        return v.ok || v.code === 'E_RULE_DISALLOW' || v.code === 'E_RULE_REQUIRE';
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary token lists never throw anything but our errors', () => {
    const token = fc.oneof(fc.constantFrom('MATCH', 'IN', 'WITH', 'FROM', 'PRODUCTS', 'ALLOW', 'REQUIRE', '*', '..', '/', ''), fc.string({ unit: 'binary', maxLength: 8 }));
    fc.assert(
      fc.property(fc.array(token, { maxLength: 11 }), (tokens) => {
        try {
          verdict('products', [tokens], toContext({ kind: 'products', rules: [], links: { s: { materials: {}, products: { 'a.py': 'v1' } }, d: { materials: {}, products: {} } } }), 's');
          return true;
        } catch (error) {
          return error instanceof InTotoError;
        }
      }),
      { numRuns: 3000 },
    );
  });
});

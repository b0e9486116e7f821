import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArtifactTable, tableOf } from '../../src/model/artifact-table.js';
import type { ArtifactMap, HashDict } from '../../src/model/artifacts.js';
import { makeDigests } from '../../src/model/digests.js';
import { parseRule } from '../../src/model/rules.js';
import { InTotoError } from '../../src/errors.js';
import { hashVerdict } from '../../src/verify/hashes.js';
import { applyRules, type RuleContext } from '../../src/verify/rules.js';

/**
 * The compact artifact tables (model/artifact-table.ts) and the fast paths built on them,
 * each held equal to the general path it stands for:
 * - a table against the Map of the same entries (lookups in any order, iteration, digests);
 * - the column form (digests compared in place, a galloping search in sorted names) against the
 *   dict form (hashVerdict on digest dicts, an index of the names) on the same entries;
 * - the artifact rules on column tables in name order against the same rules on dict tables
 *   in shuffled order: the same verdict, consumption and notes.
 */

const hex = (n: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
// Few distinct digests, so that equal and different contents both happen often.
const sha = fc.constantFrom(...['0', '1', '2', '3'].map((c) => c.repeat(64)));
const segment = fc.constantFrom('a', 'b', 'src', 'out', 'data', 'x.py', 'y.pyc', 'Z', 'é', '😀', 'a b');
const name = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'));
const dictOf = fc.oneof(
  { weight: 20, arbitrary: sha.map((h) => makeDigests('sha256', h, undefined, undefined)) },
  { weight: 1, arbitrary: hex(128).map((h) => makeDigests('sha512', h, undefined, undefined)) },
  { weight: 1, arbitrary: hex(32).map((h) => makeDigests('md5', h, undefined, undefined)) },
  { weight: 1, arbitrary: fc.tuple(sha, hex(128)).map(([a, b]) => makeDigests('sha256', a, ['sha512'], [b])) },
);
const entries = fc.uniqueArray(fc.tuple(name, dictOf), { selector: ([n]) => n, maxLength: 12 });

function mapOf(list: readonly (readonly [string, HashDict])[]): Map<string, HashDict> {
  return new Map(list.map(([n, d]) => [n, d]));
}

/** The table of `list` in the column form when it can be (sorted by name, as links are), and in the dict form, shuffled. */
function forms(list: readonly (readonly [string, HashDict])[], seed: number): { column: ArtifactTable; dicts: ArtifactTable } {
  const sorted = [...list].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const shuffled = [...list].sort(([a], [b]) => hash(a, seed) - hash(b, seed));
  return {
    column: ArtifactTable.ofDicts(sorted.map(([n]) => n), sorted.map(([, d]) => d)),
    dicts: ArtifactTable.ofDicts(shuffled.map(([n]) => n), shuffled.map(([, d]) => d), { column: false }),
  };
}

function hash(text: string, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x9e3779b1);
  return h;
}

const plain = (d: HashDict | undefined): [string, string][] | undefined => (d === undefined ? undefined : [...d].sort(([a], [b]) => (a < b ? -1 : 1)));

describe('ArtifactTable against a Map of the same entries', () => {
  it('property: size, lookups (any order, present or not), iteration and digests are the Map\'s', () => {
    fc.assert(
      fc.property(entries, fc.array(name, { maxLength: 20 }), fc.integer(), (list, queries, seed) => {
        const map = mapOf(list);
        for (const table of Object.values(forms(list, seed))) {
          expect(table.size).toBe(map.size);
          expect(new Set(table.keys())).toEqual(new Set(map.keys()));
          table.names.forEach((n, i) => {
            expect(table.indexOf(n)).toBe(i);
            expect(plain(table.digestsAt(i))).toEqual(plain(map.get(n)));
          });
          // Lookups in the given order, then in increasing order (the galloping search's
          // finger moves both ways), then all present names backwards.
          const all = [...queries, ...[...queries].sort(), ...[...map.keys()].reverse()];
          for (const q of all) {
            expect(table.has(q)).toBe(map.has(q));
            expect(plain(table.get(q))).toEqual(plain(map.get(q)));
            const i = table.indexOf(q);
            expect(i >= 0 ? table.names[i] : undefined).toBe(map.has(q) ? q : undefined);
          }
          expect([...table].map(([n, d]) => [n, plain(d)])).toEqual(table.names.map((n) => [n, plain(map.get(n))]));
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('a uniform table is a column (one digest of one algorithm each), anything else keeps dicts', () => {
    const one = makeDigests('sha256', 'a'.repeat(64), undefined, undefined);
    expect(ArtifactTable.ofDicts(['a', 'b'], [one, one]).algorithm).toBe('sha256');
    expect(ArtifactTable.ofDicts(['a', 'b'], [one, makeDigests('sha512', 'b'.repeat(128), undefined, undefined)]).algorithm).toBeUndefined();
    expect(ArtifactTable.ofDicts(['a'], [makeDigests('sha256', 'a'.repeat(64), ['sha512'], ['b'.repeat(128)])]).algorithm).toBeUndefined();
    expect(ArtifactTable.ofDicts(['a', 'b'], [one, one], { column: false }).algorithm).toBeUndefined();
  });

  it('tableOf: a table is its own; a Map gets one table, made again if the Map changed', () => {
    const map = new Map([['a', makeDigests('sha256', '0'.repeat(64), undefined, undefined)]]);
    const t = tableOf(map);
    expect(tableOf(map)).toBe(t);
    expect(tableOf(t)).toBe(t);
    map.set('b', makeDigests('sha256', '1'.repeat(64), undefined, undefined));
    expect(tableOf(map).names).toEqual(['a', 'b']);
  });
});

describe('digests compared in place against hashVerdict', () => {
  it('property: columnVerdict, when it answers, is hashVerdict on the dicts; sameContent is entry-by-entry equality', () => {
    fc.assert(
      fc.property(entries, entries, fc.integer(), (left, right, seed) => {
        const a = forms(left, seed).column;
        const b = forms(right, seed + 1).column;
        for (let i = 0; i < a.size; i++) {
          for (let j = 0; j < b.size; j++) {
            const fast = ArtifactTable.columnVerdict(a, i, b, j);
            if (fast !== undefined) expect(fast).toBe(hashVerdict(a.digestsAt(i), b.digestsAt(j)));
          }
        }
        const same = ArtifactTable.sameContent(a, b);
        if (same !== undefined) {
          const entrywise = a.size === b.size && a.names.every((n, i) => n === b.names[i] && JSON.stringify(plain(a.digestsAt(i))) === JSON.stringify(plain(b.digestsAt(i))));
          expect(same).toBe(entrywise);
        }
        expect(ArtifactTable.sameContent(a, a) ?? true).toBe(true);
      }),
      { numRuns: 800 },
    );
  });
});

describe('the artifact rules on column tables against the same rules on dict tables', () => {
  const pattern = fc.constantFrom('*', 'a', 'a/*', '*.py', 'src/*', 'out/*', 'x.py', '*/b', '[ab]*', 'é*', '?');
  const prefix = fc.constantFrom('', 'src', 'out', 'a', 'data/');
  const step = fc.constantFrom('self', 'other', 'none');
  const rule = fc.oneof(
    fc.tuple(fc.constantFrom('CREATE', 'DELETE', 'MODIFY', 'ALLOW', 'DISALLOW'), pattern).map(([k, p]) => [k, p]),
    fc.tuple(name).map(([n]) => ['REQUIRE', n]),
    fc.tuple(pattern, prefix, fc.constantFrom('MATERIALS', 'PRODUCTS'), prefix, step).map(([p, from, dest, to, s]) => [
      'MATCH',
      p,
      ...(from === '' ? [] : ['IN', from]),
      'WITH',
      dest,
      ...(to === '' ? [] : ['IN', to]),
      'FROM',
      s,
    ]),
  );

  type Outcome = { error: string } | { trace: { rule: string; consumed: string[]; notes: string[] }[] };

  function run(kind: 'materials' | 'products', rules: readonly string[][], ctx: RuleContext): Outcome {
    try {
      const parsed = rules.map((tokens, i) => parseRule(tokens, `r[${i}]`));
      const { trace } = applyRules(kind, parsed, ctx, { stepOrInspection: 'step', name: 'self' });
      // Consumption in table order: compared as sets (the dict tables are shuffled).
      return { trace: trace.map((t) => ({ rule: t.rule, consumed: [...t.consumed].sort(), notes: [...t.notes].sort() })) };
    } catch (error) {
      if (error instanceof InTotoError) return { error: `${error.code}: ${error.message}` };
      throw error;
    }
  }

  function context(links: Record<string, { materials: ArtifactMap; products: ArtifactMap }>): RuleContext {
    const self = links['self'] as { materials: ArtifactMap; products: ArtifactMap };
    return { materials: self.materials, products: self.products, linkOf: (s) => links[s] };
  }

  it('property: the same verdict, the same consumption, the same notes', () => {
    let failures = 0;
    fc.assert(
      fc.property(entries, entries, entries, entries, fc.array(rule, { maxLength: 6 }), fc.constantFrom('materials', 'products') as fc.Arbitrary<'materials' | 'products'>, fc.integer(), (sm, sp, om, op, rules, kind, seed) => {
        const [a, b, c, d] = [forms(sm, seed), forms(sp, seed + 1), forms(om, seed + 2), forms(op, seed + 3)];
        const fast = run(kind, rules, context({ self: { materials: a.column, products: b.column }, other: { materials: c.column, products: d.column } }));
        const general = run(kind, rules, context({ self: { materials: a.dicts, products: b.dicts }, other: { materials: c.dicts, products: d.dicts } }));
        expect(fast).toEqual(general);
        if ('error' in fast) failures++;
      }),
      { numRuns: 2000 },
    );
    // Not vacuous: both verdicts happen.
    expect(failures).toBeGreaterThan(100);
    expect(failures).toBeLessThan(1900);
  });
});

import { describe, expect, it } from 'vitest';
import type { ArtifactMap, HashDict } from '../../src/model/artifacts.js';
import { parseRuleList } from '../../src/model/rules.js';
import { applyRules, type RuleContext } from '../../src/verify/rules.js';

/**
 * The benchmark shape: a chain ingest -> train -> evaluate with 50,000 artifacts per
 * step and MATCH rules between them. The target is well under 100 ms per rule list; measured
 * as CPU time (not wall time, which other processes on a shared machine inflate), with a
 * 200 ms bound so the test guards against an O(n x m) regression (which would take seconds)
 * without failing on a slow or busy machine. The log lines give the actual numbers.
 */

const N = 50_000;
const digest = (i: number, salt: number): HashDict => new Map([['sha256', (i * 7919 + salt).toString(16).padStart(64, '0')]]);
const names = (dir: string, ext: string) => Array.from({ length: N }, (_, i) => `${dir}/part-${String(i).padStart(5, '0')}.${ext}`);
const map = (list: readonly string[], salt: number): ArtifactMap => new Map(list.map((name, i) => [name, digest(i, salt)]));

const links = new Map<string, { materials: ArtifactMap; products: ArtifactMap }>([
  ['ingest', { materials: new Map(), products: map(names('data', 'csv'), 0) }],
  ['train', { materials: map(names('data', 'csv'), 0), products: map(names('out', 'npy'), 1) }],
  ['evaluate', { materials: map(names('in', 'npy'), 1), products: new Map() }],
]);
const train = links.get('train')!;
const ctx: RuleContext = { materials: train.materials, products: train.products, linkOf: (s) => links.get(s) };

const LISTS: [string, 'materials' | 'products', string[][], boolean][] = [
  ['materials: MATCH * FROM the previous step, DISALLOW *', 'materials', [['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'ingest'], ['DISALLOW', '*']], true],
  ['products: MATCH with IN prefixes against the next step, DISALLOW *', 'products', [['MATCH', '*', 'IN', 'out', 'WITH', 'MATERIALS', 'IN', 'in', 'FROM', 'evaluate'], ['DISALLOW', '*']], true],
  ['products: MATCH a glob, CREATE, DISALLOW *', 'products', [['MATCH', '*[0-4].npy', 'IN', 'out/', 'WITH', 'MATERIALS', 'IN', 'in/', 'FROM', 'evaluate'], ['CREATE', 'out/part-*.npy'], ['DISALLOW', '*']], true],
  ['products: 200 literal rules, class patterns, MODIFY, DISALLOW *', 'products', [
    ...Array.from({ length: 200 }, (_, i) => ['ALLOW', `out/part-${String(i).padStart(5, '0')}.npy`]),
    ['MODIFY', '*'], ['CREATE', 'out/part-[0-9]*[0-4].npy'], ['CREATE', '*?[5-9].np?'], ['DISALLOW', '*'],
  ], true],
  ['materials: a failing DISALLOW * naming 50,000 artifacts', 'materials', [['MATCH', '*', 'WITH', 'MATERIALS', 'FROM', 'evaluate'], ['DISALLOW', '*']], false],
];

function once(kind: 'materials' | 'products', rules: ReturnType<typeof parseRuleList>): boolean {
  try {
    applyRules(kind, rules, ctx, { stepOrInspection: 'step', name: 'train' });
    return true;
  } catch {
    return false;
  }
}

describe('speed on 50,000 artifacts per step', () => {
  it.each(LISTS)('%s', (_, kind, tokens, passes) => {
    const rules = parseRuleList(tokens, 'bench');
    const times: number[] = [];
    for (let run = 0; run < 5; run++) {
      const started = process.cpuUsage();
      expect(once(kind, rules)).toBe(passes);
      const used = process.cpuUsage(started);
      times.push((used.user + used.system) / 1000);
    }
    const [cold, ...warm] = times;
    const median = warm.sort((a, b) => a - b)[2] ?? Infinity;
    console.log(`${kind}, ${tokens.length} rules: first ${cold?.toFixed(1)} ms, then median ${median.toFixed(1)} ms CPU`);
    expect(median).toBeLessThan(200);
  });
});

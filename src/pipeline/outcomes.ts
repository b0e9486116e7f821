import type { ArtifactMap } from '../model/artifacts.js';
import type { Link } from '../model/link.js';
import { getOwn } from '../canonical/json.js';
import { compilePattern } from '../verify/pattern.js';
import { dependenciesOf } from './plan.js';
import type { PipelineStep } from './source.js';
import type { StepOutcome } from './stage.js';

/**
 * What a pipeline makes of finished steps: whether the runs of one step agree, the tail of a
 * failed command's output for the report, and which products are the pipeline's result.
 */

/** The artifacts on which two links differ, as "materials data.csv: only in a" lines (at most `max`). Never throws. */
export function linkDifferences(a: Link, b: Link, labels: readonly [string, string], max = 10): string[] {
  const lines: string[] = [];
  const compare = (kind: 'materials' | 'products', left: ArtifactMap, right: ArtifactMap): void => {
    for (const [name, digests] of left) {
      const other = right.get(name);
      if (other === undefined) lines.push(`${kind} ${name}: only in ${labels[0]}'s link`);
      else if ([...digests].some(([alg, hex]) => other.get(alg) !== hex) || digests.size !== other.size) {
        lines.push(`${kind} ${name}: sha256 ${digests.get('sha256') ?? '?'} (${labels[0]}) vs ${other.get('sha256') ?? '?'} (${labels[1]})`);
      }
    }
    for (const name of right.keys()) if (!left.has(name)) lines.push(`${kind} ${name}: only in ${labels[1]}'s link`);
  };
  compare('materials', a.materials, b.materials);
  compare('products', a.products, b.products);
  return lines.length > max ? [...lines.slice(0, max), `... and ${lines.length - max} more`] : lines;
}

/** The last `count` non-empty lines of a link's recorded stderr (or stdout when stderr is empty). Never throws. */
export function outputTail(link: Link, count = 8): string[] {
  const stream = (name: string): string => {
    const value = getOwn(link.byproducts, name);
    return typeof value === 'string' ? value : '';
  };
  const text = stream('stderr').trim() === '' ? stream('stdout') : stream('stderr');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-count).map((l) => (l.length > 300 ? `${l.slice(0, 300)}...` : l));
}

/**
 * The final products: artifact name -> file. With `outputs` patterns, every product of any
 * step that matches one (a later step's version winning); without, every product of the
 * steps no other step reads from (the ends of the pipeline). Never throws.
 */
export function finalProducts(
  order: readonly PipelineStep[],
  outcomes: ReadonlyMap<string, StepOutcome>,
  outputs: readonly string[] | undefined,
): Map<string, string> {
  const links = new Map([...outcomes].map(([name, outcome]) => [name, outcome.link]));
  const chosen = new Map<string, string>();
  for (const [name, step] of finalProductSources(order, links, outputs)) chosen.set(name, `${(outcomes.get(step) as StepOutcome).workspace}/${name}`);
  return chosen;
}

/**
 * As {@link finalProducts}, from the links alone: artifact name -> the step whose product it
 * is (for a run whose products live in a store). Steps without a link did not run. Never throws.
 */
export function finalProductSources(order: readonly PipelineStep[], links: ReadonlyMap<string, Link>, outputs: readonly string[] | undefined): Map<string, string> {
  const ran = order.filter((s) => links.has(s.name));
  const names = new Set(ran.map((s) => s.name));
  const readFrom = new Set(ran.flatMap((s) => dependenciesOf(s, names)));
  const patterns = outputs?.map(compilePattern);
  const chosen = new Map<string, string>();
  for (const step of ran) {
    if (patterns === undefined && readFrom.has(step.name)) continue;
    const link = links.get(step.name) as Link;
    for (const name of link.products.keys()) {
      if (patterns === undefined || patterns.some((p) => p.matches(name))) chosen.set(name, step.name);
    }
  }
  return chosen;
}

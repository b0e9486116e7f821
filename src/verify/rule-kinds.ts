import { ArtifactTable, tableOf } from '../model/artifact-table.js';
import type { ArtifactMap } from '../model/artifacts.js';
import type { ArtifactRule, MatchRule } from '../model/rules.js';
import { compareHashes, hashVerdict } from './hashes.js';
import type { Pattern } from './pattern.js';
import type { ArtifactQueue } from './queue.js';

/**
 * The consuming rules, each a small function over the queue of not-yet-consumed artifacts
 * (the reference's verify_match_rule, verify_create_rule, ...). None of them throws; DISALLOW
 * and REQUIRE, which decide the verdict, live in rules.ts.
 */

/** Where the artifacts of other steps come from; `undefined` when a step has no link. */
export type LinkLookup = (step: string) => { materials: ArtifactMap; products: ArtifactMap } | undefined;

/** Everything a consuming rule reads and updates while one rule list is applied. */
export interface QueueState {
  readonly kind: 'materials' | 'products';
  readonly name: string;
  readonly queue: ArtifactQueue;
  readonly materials: ArtifactTable;
  readonly products: ArtifactTable;
  readonly linkOf: LinkLookup;
  /** Why a hash check left an artifact in the queue, for the eventual DISALLOW/REQUIRE message. */
  readonly reasons: Map<string, string>;
}

/** What one rule did: the names it consumed, and notes for the trace. */
export interface Outcome {
  readonly consumed: string[];
  readonly notes: string[];
}

/** At most this many notes per rule in the trace; the rest are counted. */
const MAX_NOTES = 20;

class Notes {
  readonly lines: string[] = [];
  private dropped = 0;
  add(line: string): void {
    if (this.lines.length < MAX_NOTES) this.lines.push(line);
    else this.dropped++;
  }
  done(): string[] {
    if (this.dropped > 0) this.lines.push(`... and ${this.dropped} more`);
    return this.lines;
  }
}

/** `prefix` as the reference joins it (os.path.join(prefix, "")): '' or ending in one '/'. */
function dir(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/**
 * MATCH: consumes each queued artifact under the source prefix whose remainder matches the
 * pattern and which the destination step's link records, under the destination prefix, with
 * the same content. A destination step without a link consumes nothing (as the reference).
 */
export function applyMatch(rule: MatchRule, pattern: Pattern, s: QueueState): Outcome {
  const notes = new Notes();
  const dest = s.linkOf(rule.destStep);
  if (dest === undefined) {
    return { consumed: [], notes: [`no link for step '${rule.destStep}': nothing consumed`] };
  }
  const theirs = tableOf(dest[rule.destType]);
  const ours = s.queue.table;
  const names = ours.names;
  const [from, to] = [dir(rule.sourcePrefix), dir(rule.destPrefix)];
  const consumed: string[] = [];
  const hits = s.queue.matches(pattern, from);
  for (let k = 0; k < hits.length; k++) {
    const i = hits[k] as number;
    const name = names[i] as string;
    // The same prefix on both sides (or none): the name itself; else looked up without
    // building the other side's name (made only for a message).
    const j = to === from ? theirs.indexOf(name) : theirs.indexOfJoined(to, name, from.length);
    if (j < 0) continue;
    // Digests compared in place when both sides are columns of one strong algorithm.
    const fast = ArtifactTable.columnVerdict(ours, i, theirs, j);
    if (fast === 'equal' || (fast === undefined && hashVerdict(ours.digestsAt(i), theirs.digestsAt(j)) === 'equal')) {
      s.queue.consume(i);
      consumed.push(name);
      continue;
    }
    const verdict = compareHashes(ours.digestsAt(i), theirs.digestsAt(j));
    if (verdict.kind === 'equal') {
      // Not reached: the verdicts above said otherwise.
      s.queue.consume(i);
      consumed.push(name);
      continue;
    }
    const there = `${rule.destStep} ${rule.destType}`;
    const why =
      verdict.kind === 'different'
        ? `${verdict.algorithm} differs: ${verdict.ours} (${s.name} ${s.kind}) vs ${verdict.theirs} (${there})`
        : `${verdict.reason} with ${there}`;
    const destName = to === from ? name : to + name.slice(from.length);
    const line = `${name}: ${destName === name ? '' : `as ${destName}: `}${why}`;
    notes.add(line);
    s.reasons.set(name, `'${rule.text}' did not consume it: ${line}`);
  }
  return { consumed, notes: notes.done() };
}

/** CREATE: consumes the matches that are not among the materials (products only). */
export function applyCreate(pattern: Pattern, s: QueueState): Outcome {
  const names = s.queue.table.names;
  const consumed: string[] = [];
  const hits = s.queue.matches(pattern, '');
  const none = s.materials.size === 0;
  for (let k = 0; k < hits.length; k++) {
    const i = hits[k] as number;
    const name = names[i] as string;
    if (!none && s.materials.indexOf(name) >= 0) continue;
    s.queue.consume(i);
    consumed.push(name);
  }
  return { consumed, notes: [] };
}

/** DELETE: consumes the matches that are not among the products (materials only). */
export function applyDelete(pattern: Pattern, s: QueueState): Outcome {
  const names = s.queue.table.names;
  const consumed: string[] = [];
  const hits = s.queue.matches(pattern, '');
  const none = s.products.size === 0;
  for (let k = 0; k < hits.length; k++) {
    const i = hits[k] as number;
    const name = names[i] as string;
    if (!none && s.products.indexOf(name) >= 0) continue;
    s.queue.consume(i);
    consumed.push(name);
  }
  return { consumed, notes: [] };
}

/** ALLOW: consumes every match. */
export function applyAllow(pattern: Pattern, s: QueueState): Outcome {
  const names = s.queue.table.names;
  const hits = s.queue.matches(pattern, '');
  const consumed = new Array<string>(hits.length);
  for (let k = 0; k < hits.length; k++) {
    const i = hits[k] as number;
    s.queue.consume(i);
    consumed[k] = names[i] as string;
  }
  return { consumed, notes: [] };
}

/**
 * MODIFY: consumes matches present in both materials and products whose digests differ. When
 * the digests cannot be compared the artifact is not consumed (fail closed) and a note says why.
 */
export function applyModify(rule: ArtifactRule, pattern: Pattern, s: QueueState): Outcome {
  const notes = new Notes();
  const other = s.kind === 'materials' ? s.products : s.materials;
  const own = s.queue.table;
  const names = own.names;
  const consumed: string[] = [];
  const hits = s.queue.matches(pattern, '');
  for (let k = 0; k < hits.length; k++) {
    const i = hits[k] as number;
    const name = names[i] as string;
    const j = other.indexOf(name);
    if (j < 0) continue;
    let kind = ArtifactTable.columnVerdict(own, i, other, j) ?? hashVerdict(own.digestsAt(i), other.digestsAt(j));
    if (kind === 'uncheckable') {
      // Comparison is symmetric in its verdict; the order only labels the digests.
      const verdict = compareHashes(own.digestsAt(i), other.digestsAt(j));
      if (verdict.kind === 'uncheckable') {
        const line = `${name}: ${verdict.reason} between materials and products`;
        notes.add(line);
        s.reasons.set(name, `'${rule.text}' did not consume it: ${line}`);
      }
      kind = verdict.kind;
    }
    if (kind === 'different') {
      s.queue.consume(i);
      consumed.push(name);
    }
  }
  return { consumed, notes: notes.done() };
}

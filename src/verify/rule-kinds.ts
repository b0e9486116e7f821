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
  const [from, to] = [dir(rule.sourcePrefix), dir(rule.destPrefix)];
  const consumed = s.queue.consumeMatches(pattern, from, (i, name, rel) => {
    // Most MATCH rules use the same prefix on both sides (or none): reuse the name itself
    // rather than building 50,000 new strings.
    const destName = to === from ? name : to === '' ? rel : to + rel;
    const j = theirs.indexOf(destName);
    if (j < 0) return false;
    // Digests compared in place when both sides are columns of one strong algorithm.
    const fast = ArtifactTable.columnVerdict(ours, i, theirs, j);
    if (fast === 'equal') return true;
    const ourDigests = ours.digestsAt(i);
    const theirDigests = theirs.digestsAt(j);
    if (fast === undefined && hashVerdict(ourDigests, theirDigests) === 'equal') return true;
    const verdict = compareHashes(ourDigests, theirDigests);
    if (verdict.kind === 'equal') return true; // not reached: hashVerdict said otherwise
    const there = `${rule.destStep} ${rule.destType}`;
    const why =
      verdict.kind === 'different'
        ? `${verdict.algorithm} differs: ${verdict.ours} (${s.name} ${s.kind}) vs ${verdict.theirs} (${there})`
        : `${verdict.reason} with ${there}`;
    const line = `${name}: ${destName === name ? '' : `as ${destName}: `}${why}`;
    notes.add(line);
    s.reasons.set(name, `'${rule.text}' did not consume it: ${line}`);
    return false;
  });
  return { consumed, notes: notes.done() };
}

/** CREATE, DELETE, ALLOW: consume the matches that pass `keep`. */
export function applyFilter(pattern: Pattern, s: QueueState, keep: (name: string) => boolean): Outcome {
  return { consumed: s.queue.consumeMatches(pattern, '', (_, name) => keep(name)), notes: [] };
}

/**
 * MODIFY: consumes matches present in both materials and products whose digests differ. When
 * the digests cannot be compared the artifact is not consumed (fail closed) and a note says why.
 */
export function applyModify(rule: ArtifactRule, pattern: Pattern, s: QueueState): Outcome {
  const notes = new Notes();
  const other = s.kind === 'materials' ? s.products : s.materials;
  const ownTable = s.queue.table;
  const consumed = s.queue.consumeMatches(pattern, '', (i, name) => {
    const j = other.indexOf(name);
    if (j < 0) return false;
    const fast = ArtifactTable.columnVerdict(ownTable, i, other, j);
    if (fast !== undefined) return fast === 'different';
    const own = ownTable.digestsAt(i);
    const theirs = other.digestsAt(j);
    // Comparison is symmetric in its verdict; the order only labels the digests.
    const kind = hashVerdict(own, theirs);
    const verdict = kind === 'uncheckable' ? compareHashes(own, theirs) : undefined;
    if (verdict?.kind === 'uncheckable') {
      const line = `${name}: ${verdict.reason} between materials and products`;
      notes.add(line);
      s.reasons.set(name, `'${rule.text}' did not consume it: ${line}`);
    }
    return kind === 'different';
  });
  return { consumed, notes: notes.done() };
}

import { STRONG_HASH_ALGORITHMS, type HashDict } from '../model/artifacts.js';

/**
 * When two digest dicts say "same file" (what a link may contain is checked at load, by
 * artifacts.ts).
 *
 * The reference compares hash dicts with Python `==`: two empty dicts are "equal", and
 * md5-only dicts are trusted. We decide from the algorithms both sides recorded instead:
 * - equal: at least one strong algorithm (sha256/384/512) in common, and every algorithm in
 *   common agrees (a disagreement on any algorithm, even md5, proves different content);
 * - different: some common algorithm disagrees and no strong one agrees. Even a weak digest proves a
 *   difference; it just cannot prove sameness;
 * - uncheckable: nothing strong in common (empty dicts, md5/sha1 only, disjoint algorithms),
 *   or the dicts contradict themselves (a strong digest agrees while another disagrees).
 */

const STRONG: ReadonlySet<string> = new Set(STRONG_HASH_ALGORITHMS);

const EQUAL = Object.freeze({ kind: 'equal' as const });

/** The outcome of comparing two digest dicts. */
export type HashComparison =
  | { readonly kind: 'equal' }
  | { readonly kind: 'different'; readonly algorithm: string; readonly ours: string; readonly theirs: string }
  | { readonly kind: 'uncheckable'; readonly reason: string };

/**
 * Just the kind of {@link compareHashes}, without allocating: this runs once per artifact per
 * MATCH or MODIFY rule, tens of thousands of times.
 * Never throws.
 */
export function hashVerdict(ours: HashDict, theirs: HashDict): HashComparison['kind'] {
  if (ours.size === 1 && theirs.size === 1) {
    // The common case, one sha256 on each side.
    const a = ours.get('sha256');
    const b = theirs.get('sha256');
    if (a !== undefined && b !== undefined) return a === b ? 'equal' : 'different';
  }
  return compareHashes(ours, theirs).kind;
}

/**
 * Compares the digests of one artifact as two sources recorded them, with the details a
 * message needs.
 * Never throws.
 */
export function compareHashes(ours: HashDict, theirs: HashDict): HashComparison {
  let strongEqual: string | undefined;
  let differing: { algorithm: string; ours: string; theirs: string } | undefined;
  ours.forEach((digest, algorithm) => {
    const other = theirs.get(algorithm);
    if (other === undefined) return;
    if (other === digest) {
      if (STRONG.has(algorithm)) strongEqual ??= algorithm;
    } else if (differing === undefined || (STRONG.has(algorithm) && !STRONG.has(differing.algorithm))) {
      // Report a strong disagreement in preference to a weak one: it is the one to act on.
      differing = { algorithm, ours: digest, theirs: other };
    }
  });
  if (differing !== undefined && strongEqual !== undefined) {
    return {
      kind: 'uncheckable',
      reason: `contradictory digests: ${strongEqual} agrees but ${differing.algorithm} differs`,
    };
  }
  if (differing !== undefined) return { kind: 'different', ...differing };
  if (strongEqual !== undefined) return EQUAL;
  if (ours.size === 0 || theirs.size === 0) return { kind: 'uncheckable', reason: 'no strong hash in common (empty digest set)' };
  return {
    kind: 'uncheckable',
    reason: `no strong hash in common (${algorithmList(ours)} vs ${algorithmList(theirs)})`,
  };
}

function algorithmList(dict: HashDict): string {
  return [...dict.keys()].sort().join(', ') || 'none';
}

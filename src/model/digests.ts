import type { JsonValue } from '../canonical/json.js';
import { DIGEST_HEX_LENGTH, type HashDict } from './artifacts.js';

/**
 * The digest dicts of a link's artifacts: the rules one `{algorithm: hex}` entry must follow
 * (as HASH_DICT in schemas.ts describes them) and the compact value links keep them in. Both
 * link readers (link.ts from parsed JSON, link-reader.ts in one pass over the file) use these,
 * so they accept exactly the same digests.
 */

/** At most this many algorithms per artifact (HASH_DICT maxProperties). */
export const MAX_ALGORITHMS = 16;

const ALGORITHM = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** Lower-case hexadecimal only (a loop: faster than a regular expression on 64 characters). */
function isLowerHex(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/**
 * Why `hex` cannot be the digest recorded under `algorithm`, or undefined when it can: the
 * algorithm is a lower-case name of at most 32 characters; the digest is lower-case hex of the
 * exact length for a known algorithm, of 8 to 128 whole bytes for others. Never throws.
 */
export function digestProblem(algorithm: string, hex: JsonValue | undefined): string | undefined {
  // A known algorithm needs no name check (the common case: one lookup, no regex).
  const length = DIGEST_HEX_LENGTH.get(algorithm);
  if (length === undefined && !ALGORITHM.test(algorithm)) return 'must be a lower-case algorithm name of at most 32 characters';
  if (typeof hex !== 'string' || !isLowerHex(hex)) return 'must be a lower-case hexadecimal string';
  if (length !== undefined) return hex.length === length ? undefined : `must have ${length} hex digits`;
  return hex.length % 2 !== 0 || hex.length < 16 || hex.length > 256 ? 'must have 16 to 256 hex digits, whole bytes' : undefined;
}

/**
 * A digest dict as read from a link: its first entry in two fields (links almost always
 * record one digest), any others in two arrays. It behaves as a ReadonlyMap; a real Map per
 * artifact costs several times more to build, and links hold hundreds of thousands of them.
 * The caller has checked every entry with {@link digestProblem} and that the algorithms are
 * distinct.
 */
class Digests {
  constructor(
    private readonly algorithm0: string,
    private readonly hex0: string,
    /** Entries after the first, or undefined. */
    private readonly more: { readonly algorithms: readonly string[]; readonly hexes: readonly string[] } | undefined,
  ) {}

  get size(): number {
    return this.more === undefined ? 1 : 1 + this.more.algorithms.length;
  }

  get(algorithm: string): string | undefined {
    if (algorithm === this.algorithm0) return this.hex0;
    if (this.more === undefined) return undefined;
    const i = this.more.algorithms.indexOf(algorithm);
    return i < 0 ? undefined : this.more.hexes[i];
  }

  has(algorithm: string): boolean {
    return this.get(algorithm) !== undefined;
  }

  forEach(callback: (hex: string, algorithm: string, map: ReadonlyMap<string, string>) => void, thisArg?: unknown): void {
    for (const [algorithm, hex] of this.entries()) callback.call(thisArg, hex, algorithm, this as unknown as ReadonlyMap<string, string>);
  }

  *entries(): Generator<[string, string], undefined, unknown> {
    yield [this.algorithm0, this.hex0];
    const more = this.more;
    if (more !== undefined) for (let i = 0; i < more.algorithms.length; i++) yield [more.algorithms[i] as string, more.hexes[i] as string];
  }

  *keys(): Generator<string, undefined, unknown> {
    for (const [algorithm] of this.entries()) yield algorithm;
  }

  *values(): Generator<string, undefined, unknown> {
    for (const [, hex] of this.entries()) yield hex;
  }

  [Symbol.iterator](): Generator<[string, string], undefined, unknown> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'Map';
  }
}

/**
 * The digest dict of one artifact: the first entry, then the others (undefined when there
 * are none), in the order the link lists them. Entries must have been checked (see above).
 */
export function makeDigests(algorithm: string, hex: string, algorithms: string[] | undefined, hexes: string[] | undefined): HashDict {
  const more = algorithms === undefined || hexes === undefined ? undefined : { algorithms, hexes };
  return new Digests(algorithm, hex, more) as unknown as HashDict;
}

import { tableOf, type ArtifactTable } from '../model/artifact-table.js';
import type { ArtifactMap } from '../model/artifacts.js';
import type { Pattern } from './pattern.js';

/**
 * The queue of not-yet-consumed artifacts of one rule list. Tens of thousands of names pass
 * through every rule, so it is the link's table of names with a "still queued" flag per name
 * rather than a Set (building and deleting from a Set of 50,000 strings costs more than all
 * the matching). Rules get each artifact's position, which indexes its digests in the same
 * table, so MATCH and MODIFY need no lookup for their own side.
 */
export class ArtifactQueue {
  /** The artifacts this queue started with (read here, never changed). */
  readonly table: ArtifactTable;
  private readonly queued: Uint8Array;
  private remaining: number;
  private hits: Int32Array | undefined;

  constructor(artifacts: ArtifactMap) {
    this.table = tableOf(artifacts);
    this.queued = new Uint8Array(this.table.size).fill(1);
    this.remaining = this.table.size;
  }

  /** How many artifacts are still queued. */
  get size(): number {
    return this.remaining;
  }

  /** True when `name` is still queued. */
  has(name: string): boolean {
    const i = this.table.indexOf(name);
    return i >= 0 && this.queued[i] === 1;
  }

  /** The queued names, in the order the link listed them. */
  list(): string[] {
    return this.table.names.filter((_, i) => this.queued[i] === 1);
  }

  /**
   * The positions (in {@link table}) of the queued names under `prefix` (a directory ending in
   * '/', or '') whose remainder matches `pattern`, in order, in a buffer of the queue's that the
   * next call reuses (read it before calling again). A literal pattern is one lookup
   * instead of a scan. Each rule kind then walks them in its own loop (one kind of decision
   * per loop keeps the JIT's code for it specialised).
   */
  matches(pattern: Pattern, prefix: string): Int32Array {
    const { queued } = this;
    const names = this.table.names;
    // One buffer per queue for the positions: valid until the next call.
    const hits = (this.hits ??= new Int32Array(names.length));
    let n = 0;
    if (pattern.literal !== undefined) {
      const i = this.table.indexOf(prefix + pattern.literal);
      if (i >= 0 && queued[i] === 1) hits[n++] = i;
      return hits.subarray(0, n);
    }
    // The common shapes without a call per name: every name (`*`), or the names starting with
    // a literal (`data/*`, or any pattern under an IN prefix), else the pattern asked.
    const skip = prefix.length;
    const start = pattern.matchesAll ? prefix : pattern.prefix !== undefined ? prefix + pattern.prefix : undefined;
    if (start === '') {
      for (let i = 0; i < names.length; i++) if (queued[i] === 1) hits[n++] = i;
    } else if (start !== undefined) {
      for (let i = 0; i < names.length; i++) if (queued[i] === 1 && (names[i] as string).startsWith(start)) hits[n++] = i;
    } else {
      for (let i = 0; i < names.length; i++) {
        if (queued[i] !== 1) continue;
        const name = names[i] as string;
        if (skip === 0 ? pattern.matches(name) : name.startsWith(prefix) && pattern.matches(name.slice(skip))) hits[n++] = i;
      }
    }
    return hits.subarray(0, n);
  }

  /** Takes the artifact at position `i` out of the queue. */
  consume(i: number): void {
    if (this.queued[i] === 1) {
      this.queued[i] = 0;
      this.remaining--;
    }
  }

  /** The queued names matching `pattern`, without consuming them. */
  matching(pattern: Pattern): string[] {
    if (pattern.matchesAll) return this.list();
    const names = this.table.names;
    return Array.from(this.matches(pattern, ''), (i) => names[i] as string);
  }
}

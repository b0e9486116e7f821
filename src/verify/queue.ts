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
   * Visits every queued name under `prefix` (a directory ending in '/', or '') whose remainder
   * matches `pattern`, consuming it when `consume(index, name, rel)` says so (`index` is its
   * position in {@link table}); returns what it consumed. A literal pattern is one lookup
   * instead of a scan.
   */
  consumeMatches(pattern: Pattern, prefix: string, consume: (index: number, name: string, rel: string) => boolean): string[] {
    const consumed: string[] = [];
    const { queued } = this;
    const names = this.table.names;
    const take = (i: number, name: string, rel: string): void => {
      if (consume(i, name, rel)) {
        queued[i] = 0;
        this.remaining--;
        consumed.push(name);
      }
    };
    if (pattern.literal !== undefined) {
      const name = prefix + pattern.literal;
      const i = this.table.indexOf(name);
      if (i >= 0 && queued[i] === 1) take(i, name, pattern.literal);
      return consumed;
    }
    const all = pattern.matchesAll;
    for (let i = 0; i < names.length; i++) {
      if (queued[i] !== 1) continue;
      const name = names[i] as string;
      if (prefix === '') {
        if (all || pattern.matches(name)) take(i, name, name);
      } else if (name.startsWith(prefix)) {
        const rel = name.slice(prefix.length);
        if (all || pattern.matches(rel)) take(i, name, rel);
      }
    }
    return consumed;
  }

  /** The queued names matching `pattern`, without consuming them. */
  matching(pattern: Pattern): string[] {
    if (pattern.matchesAll) return this.list();
    const found: string[] = [];
    this.consumeMatches(pattern, '', (_, name) => {
      found.push(name);
      return false;
    });
    return found;
  }
}

import { artifactList, type ArtifactMap, type HashDict } from '../model/artifacts.js';
import type { Pattern } from './pattern.js';

/**
 * The queue of not-yet-consumed artifacts of one rule list. Tens of thousands of names pass
 * through every rule, so it is an array with a "still queued" flag per name rather than a Set
 * (building and deleting from a Set of 50,000 strings costs more than all the matching), with
 * a name -> position index built only when a literal pattern or REQUIRE needs one. Each name's
 * digests ride along, so MATCH and MODIFY need no lookup for their own side.
 */
const EMPTY: HashDict = new Map();

export class ArtifactQueue {
  // Shared with the map's reader (artifactList): read here, never changed.
  private readonly names: readonly string[];
  private readonly digests: readonly HashDict[];
  private readonly queued: Uint8Array;
  private index: Map<string, number> | undefined;
  private remaining: number;

  constructor(artifacts: ArtifactMap) {
    ({ names: this.names, digests: this.digests } = artifactList(artifacts));
    this.queued = new Uint8Array(this.names.length).fill(1);
    this.remaining = this.names.length;
  }

  /** How many artifacts are still queued. */
  get size(): number {
    return this.remaining;
  }

  /** True when `name` is still queued. */
  has(name: string): boolean {
    const i = this.positionOf(name);
    return i >= 0 && this.queued[i] === 1;
  }

  /** The queued names, in the order the link listed them. */
  list(): string[] {
    return this.names.filter((_, i) => this.queued[i] === 1);
  }

  /**
   * Visits every queued name under `prefix` (a directory ending in '/', or '') whose remainder
   * matches `pattern`, consuming it when `consume(name, rel, digests)` says so; returns what
   * it consumed. A literal pattern is one lookup instead of a scan.
   */
  consumeMatches(
    pattern: Pattern,
    prefix: string,
    consume: (name: string, rel: string, digests: HashDict) => boolean,
  ): string[] {
    const consumed: string[] = [];
    const { names, digests, queued } = this;
    const take = (i: number, name: string, rel: string): void => {
      if (consume(name, rel, digests[i] ?? EMPTY)) {
        this.queued[i] = 0;
        this.remaining--;
        consumed.push(name);
      }
    };
    if (pattern.literal !== undefined) {
      const name = prefix + pattern.literal;
      const i = this.positionOf(name);
      if (i >= 0 && this.queued[i] === 1) take(i, name, pattern.literal);
      return consumed;
    }
    for (let i = 0; i < names.length; i++) {
      if (queued[i] !== 1) continue;
      const name = names[i] ?? '';
      if (prefix === '') {
        if (pattern.matches(name)) take(i, name, name);
      } else if (name.startsWith(prefix)) {
        const rel = name.slice(prefix.length);
        if (pattern.matches(rel)) take(i, name, rel);
      }
    }
    return consumed;
  }

  /** The queued names matching `pattern`, without consuming them. */
  matching(pattern: Pattern): string[] {
    if (pattern.matchesAll) return this.list();
    const found: string[] = [];
    this.consumeMatches(pattern, '', (name) => {
      found.push(name);
      return false;
    });
    return found;
  }

  private positionOf(name: string): number {
    if (this.index === undefined) {
      this.index = new Map();
      this.names.forEach((n, i) => this.index?.set(n, i));
    }
    return this.index.get(name) ?? -1;
  }
}

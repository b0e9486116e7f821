import { InternalError } from '../errors.js';
import { STRONG_HASH_ALGORITHMS, type ArtifactMap, type HashDict } from './artifacts.js';
import { makeDigests } from './digests.js';

/**
 * A link's materials or products in compact form: the names in one array, and, when every
 * artifact records exactly one digest of one algorithm (nearly every link: one sha256 each),
 * the digests as bytes in one column, 32 per artifact for sha256. No object per artifact: a
 * link of 100,000 artifacts is an array of names and a 3 MB buffer, where a Map of digest
 * dicts held 300,000 objects that the garbage collector copied and marked again and again.
 * Links of any other shape keep one digest dict per artifact.
 *
 * It is a ReadonlyMap (name -> HashDict) for every reader that wants one; the rule engine and
 * the threshold check use its indexed methods instead: {@link ArtifactTable.indexOf} (a
 * galloping search when the names are in order, as the one-pass reader produces them and as
 * rules visit them, else an index built once) and {@link sameDigests} (bytes compared in
 * place), so that MATCH on 50,000 artifacts builds no string, dict or Map.
 *
 * Immutable once built (the column and arrays are never handed out for writing).
 */
export class ArtifactTable implements ReadonlyMap<string, HashDict> {
  /** The names, in the order the link lists them. */
  readonly names: readonly string[];
  /** True when the names are strictly increasing in UTF-16 order (JavaScript's `<`). */
  readonly sorted: boolean;
  /** The one algorithm of a column table, else undefined (then `dicts` holds the digests). */
  readonly algorithm: string | undefined;
  private readonly column: Uint8Array | undefined;
  /** Bytes per digest in `column`. */
  private readonly width: number;
  /** The column as 32-bit words, when it is aligned and its width a multiple of 4 (8 compares, not 32). */
  private readonly words: Int32Array | undefined;
  private readonly dicts: readonly HashDict[] | undefined;
  private index: Map<string, number> | undefined;
  /** Where the last sorted lookup ended: lookups in increasing order cost one comparison or two. */
  private finger = 0;

  private constructor(names: readonly string[], sorted: boolean, digests: { algorithm: string; column: Uint8Array; width: number } | { dicts: readonly HashDict[] }) {
    this.names = names;
    this.sorted = sorted;
    if ('dicts' in digests) {
      this.algorithm = undefined;
      this.column = undefined;
      this.width = 0;
      this.words = undefined;
      this.dicts = digests.dicts;
    } else {
      const { column, width } = digests;
      this.algorithm = digests.algorithm;
      this.column = column;
      this.width = width;
      this.words = width % 4 === 0 && column.byteOffset % 4 === 0 ? new Int32Array(column.buffer, column.byteOffset, column.length / 4) : undefined;
      this.dicts = undefined;
    }
  }

  /**
   * A table whose artifact i has the one digest `column[i * width, (i + 1) * width)` under
   * `algorithm`. The caller hands over `names` and `column` and keeps no reference for writing;
   * `sorted` says the names are strictly increasing, when the caller has checked that already.
   * @throws InternalError E_INTERNAL when the column does not fit the names
   */
  static ofColumn(names: readonly string[], algorithm: string, column: Uint8Array, width: number, sorted = isIncreasing(names)): ArtifactTable {
    if (column.length !== names.length * width || width <= 0) throw new InternalError('E_INTERNAL', 'artifact table: column does not fit the names');
    return new ArtifactTable(names, sorted, { algorithm, column, width });
  }

  /**
   * A table of `names` with their digest dicts, in that order (names distinct; each dict
   * checked by the caller). Made a column table when every dict holds one digest of one
   * algorithm, with hex of its length, unless `column` is false (the differential tests hold
   * the two forms to the same results); `sorted` when the caller knows.
   */
  static ofDicts(names: readonly string[], dicts: readonly HashDict[], options: { readonly sorted?: boolean; readonly column?: boolean } = {}): ArtifactTable {
    const sorted = options.sorted ?? isIncreasing(names);
    const first = options.column === false ? undefined : dicts[0];
    const algorithm = first === undefined || first.size !== 1 ? undefined : first.keys().next().value;
    const length = algorithm === undefined ? undefined : (first?.get(algorithm) ?? '').length;
    if (algorithm !== undefined && length !== undefined && length > 0 && length % 2 === 0 && dicts.every((d) => d.size === 1 && d.get(algorithm)?.length === length)) {
      const width = length / 2;
      const column = new Uint8Array(dicts.length * width);
      dicts.forEach((d, i) => column.set(Buffer.from(d.get(algorithm) as string, 'hex'), i * width));
      return new ArtifactTable(names, sorted, { algorithm, column, width });
    }
    return new ArtifactTable(names, sorted, { dicts });
  }

  get size(): number {
    return this.names.length;
  }

  /** The position of `name`, or -1. */
  indexOf(name: string): number {
    return this.sorted ? this.search(name) : this.lookup(name);
  }

  /**
   * The position of `head + name.slice(skip)`, or -1, without building that string when it is
   * the name after the last one found (MATCH walks names in order: the common case when the
   * prefixes of the two sides differ).
   */
  indexOfJoined(head: string, name: string, skip: number): number {
    if (this.sorted) {
      const next = this.finger + 1;
      const candidate = this.names[next];
      if (candidate !== undefined && candidate.length === head.length + name.length - skip && candidate.startsWith(head) && sameFrom(candidate, head.length, name, skip)) {
        this.finger = next;
        return next;
      }
    }
    return this.indexOf(head + name.slice(skip));
  }

  /** The digest dict of artifact i (made on demand for a column table). */
  digestsAt(i: number): HashDict {
    if (this.dicts !== undefined) return this.dicts[i] as HashDict;
    const { column, width } = this;
    const hex = Buffer.from((column as Uint8Array).buffer, (column as Uint8Array).byteOffset + i * width, width).toString('hex');
    return makeDigests(this.algorithm as string, hex, undefined, undefined);
  }

  get(name: string): HashDict | undefined {
    const i = this.indexOf(name);
    return i < 0 ? undefined : this.digestsAt(i);
  }

  has(name: string): boolean {
    return this.indexOf(name) >= 0;
  }

  forEach(callback: (value: HashDict, key: string, map: ReadonlyMap<string, HashDict>) => void, thisArg?: unknown): void {
    for (let i = 0; i < this.names.length; i++) callback.call(thisArg, this.digestsAt(i), this.names[i] as string, this);
  }

  *entries(): MapIterator<[string, HashDict]> {
    for (let i = 0; i < this.names.length; i++) yield [this.names[i] as string, this.digestsAt(i)];
  }

  *keys(): MapIterator<string> {
    yield* this.names;
  }

  *values(): MapIterator<HashDict> {
    for (let i = 0; i < this.names.length; i++) yield this.digestsAt(i);
  }

  [Symbol.iterator](): MapIterator<[string, HashDict]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'ArtifactTable';
  }

  /**
   * Whether artifact i of `a` and artifact j of `b` record the same content, by the rules of
   * verify/hashes.ts: 'equal', 'different', or undefined when the two are not column tables of
   * the same strong algorithm (then the caller compares their digest dicts).
   */
  static columnVerdict(a: ArtifactTable, i: number, b: ArtifactTable, j: number): 'equal' | 'different' | undefined {
    const x = a.column;
    const y = b.column;
    if (x === undefined || y === undefined || a.algorithm !== b.algorithm || !STRONG.has(a.algorithm as string)) return undefined;
    const xw = a.words;
    const yw = b.words;
    if (xw !== undefined && yw !== undefined) {
      const w = a.width >> 2;
      const p = i * w;
      const q = j * w;
      for (let k = 0; k < w; k++) if (xw[p + k] !== yw[q + k]) return 'different';
      return 'equal';
    }
    const w = a.width;
    const p = i * w;
    const q = j * w;
    for (let k = 0; k < w; k++) if (x[p + k] !== y[q + k]) return 'different';
    return 'equal';
  }

  /**
   * True when `a` and `b` hold the same names in the same order with the same digests, decided
   * on the columns without making a dict; undefined when that cannot be decided this way
   * (dict tables, or different algorithms): the caller compares entry by entry.
   */
  static sameContent(a: ArtifactTable, b: ArtifactTable): boolean | undefined {
    if (a.column === undefined || b.column === undefined || a.algorithm !== b.algorithm) return undefined;
    if (a.names.length !== b.names.length) return false;
    for (let i = 0; i < a.names.length; i++) if (a.names[i] !== b.names[i]) return false;
    return Buffer.compare(a.column, b.column) === 0;
  }

  /** Galloping search from the finger in the sorted names. */
  private search(name: string): number {
    const names = this.names;
    const n = names.length;
    if (n === 0) return -1;
    const f = this.finger < n ? this.finger : n - 1;
    // Lookups in increasing order (rules walk names in order): most often the next name.
    if (f + 1 < n && names[f + 1] === name) {
      this.finger = f + 1;
      return f + 1;
    }
    const at = names[f] as string;
    if (at === name) return f;
    let lo: number;
    let hi: number;
    if (at < name) {
      // names[f] < name: step right 1, 2, 4, ... until a name not below it, then bisect.
      let below = f;
      let step = 1;
      let probe = f + 1;
      while (probe < n && (names[probe] as string) < name) {
        below = probe;
        step *= 2;
        probe = f + step;
      }
      lo = below + 1;
      hi = probe < n ? probe : n;
    } else {
      let above = f;
      let step = 1;
      let probe = f - 1;
      while (probe >= 0 && (names[probe] as string) > name) {
        above = probe;
        step *= 2;
        probe = f - step;
      }
      lo = probe >= 0 ? probe : 0;
      hi = above;
    }
    // The first position in [lo, hi) whose name is not below `name` (hi if none).
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((names[mid] as string) < name) lo = mid + 1;
      else hi = mid;
    }
    this.finger = lo < n ? lo : n - 1;
    return lo < n && names[lo] === name ? lo : -1;
  }

  private lookup(name: string): number {
    if (this.index === undefined) {
      const index = new Map<string, number>();
      this.names.forEach((n, i) => index.set(n, i));
      this.index = index;
    }
    return this.index.get(name) ?? -1;
  }
}

const STRONG: ReadonlySet<string> = new Set(STRONG_HASH_ALGORITHMS);

/** a.slice(i) === b.slice(j), for strings of equal remaining length, without slicing. */
function sameFrom(a: string, i: number, b: string, j: number): boolean {
  for (let k = a.length - i - 1; k >= 0; k--) if (a.charCodeAt(i + k) !== b.charCodeAt(j + k)) return false;
  return true;
}

function isIncreasing(names: readonly string[]): boolean {
  for (let i = 1; i < names.length; i++) if (!((names[i - 1] as string) < (names[i] as string))) return false;
  return true;
}

/** Tables made for maps built some other way (the runner's), once per map. */
const tables = new WeakMap<ArtifactMap, ArtifactTable>();

/**
 * `map` as an ArtifactTable: itself when it is one, else a table of its entries in its order
 * (made once per map; maps read from links are never changed, and a map whose size changed
 * since is made again).
 */
export function tableOf(map: ArtifactMap): ArtifactTable {
  if (map instanceof ArtifactTable) return map;
  const kept = tables.get(map);
  if (kept !== undefined && kept.size === map.size) return kept;
  const names: string[] = [];
  const dicts: HashDict[] = [];
  map.forEach((d, name) => {
    names.push(name);
    dicts.push(d);
  });
  const table = ArtifactTable.ofDicts(names, dicts);
  tables.set(map, table);
  return table;
}

import { releaseMemory } from '../io/files.js';
import { ArtifactTable } from './artifact-table.js';
import { DIGEST_HEX_LENGTH, type HashDict } from './artifacts.js';
import { digestProblem, makeDigests, MAX_ALGORITHMS } from './digests.js';
import { caseFoldCollision, MAX_ARTIFACT_NAME_LENGTH } from './names.js';
import { CAPS } from './schemas.js';

/**
 * The artifact maps of a link, read by the one pass of link-reader.ts straight from the file's
 * bytes into an ArtifactTable: the loop that costs most of verifying a large chain, kept apart
 * from the structure around it.
 *
 * It writes the canonical bytes of what it reads over the input (`out` is `b`), behind the read
 * position: every byte written stands for a byte read, so the write position never passes the
 * read position, and what is read is never a byte already overwritten. Runs of bytes (names,
 * digests) are validated by reading them, then moved as one block (copyWithin, a memmove).
 * Strings it keeps (names, unusual algorithms and digests) are taken from the canonical bytes
 * already written, which do not change again.
 *
 * Shaped for the JIT, as measured: one small method per artifact ({@link MapScan.entry}), with
 * the one digest per artifact nearly every link has on a short path of its own
 * ({@link MapScan.columnDigest}) and everything else out of line. A single function holding the
 * whole loop was compiled six times per verification (up to 140 ms each), every rare branch
 * met after compiling throwing the compiled code away; small methods compile in a millisecond
 * or two, and meet no new branch once warm (growing a buffer is out of line: the branch
 * that calls it costs a small method's recompilation the first time, no more).
 */

/** Thrown to give up on the one pass (link-reader.ts catches it); never leaves the model. */
export const DECLINE = Symbol('decline');

/**
 * Where the one pass stands: the input, the canonical output, which is the input itself
 * (`out === b`: bytes are moved within it, behind the read position), and the two positions.
 */
export interface Cursor {
  readonly b: Uint8Array;
  readonly out: Uint8Array;
  p: number;
  q: number;
}

/**
 * Byte classes: PLAIN, what a string the pass takes may hold as it is (printable ASCII but the
 * quote and the backslash: nothing to unescape, and its canonical form is itself). One table
 * lookup per byte.
 */
const PLAIN = 1;
const CLASS = new Uint8Array(256);
for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x22 && c !== 0x5c) CLASS[c] = PLAIN;
/** Lower-case hexadecimal digit values; -1 for any other byte. */
const NIBBLE = new Int8Array(256).fill(-1);
for (let c = 0x30; c <= 0x39; c++) NIBBLE[c] = c - 0x30;
for (let c = 0x61; c <= 0x66; c++) NIBBLE[c] = c - 0x61 + 10;

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const COMMA = 0x2c;
const DOT = 0x2e;
const SLASH = 0x2f;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/** Every entry of a map takes more input bytes than this (`"a":{"x":"<16 hex>"}` takes 28). */
const MIN_ENTRY_BYTES = 24;

/**
 * Buffers reused from one map to the next (names' bytes, where each name ends, the digest
 * column), sized for a map from the bytes left in its file (MapScan's constructor): only the
 * pages written are ever touched. Each table gets its own copies of what it keeps.
 */
let nameBytes = Buffer.allocUnsafeSlow(1 << 16);
let nameEnds = new Int32Array(1 << 12);
let columnBytes = new Uint8Array(1 << 16);

/** Gives the scanner's buffers back (the next map allocates small ones again). */
export function releaseScanBuffers(): void {
  for (const buffer of [nameBytes, nameEnds, columnBytes]) releaseMemory(buffer);
  nameBytes = Buffer.allocUnsafeSlow(1 << 16);
  nameEnds = new Int32Array(1 << 12);
  columnBytes = new Uint8Array(1 << 16);
}

/** `fresh`, after giving back the memory of `old`, which it replaces (nothing in it is kept). */
function replaced<T extends Uint8Array | Int32Array>(old: T, fresh: T): T {
  releaseMemory(old);
  return fresh;
}

/** A buffer of at least `needed` elements holding `old`'s, whose memory is given back. */
function grown<T extends Uint8Array | Int32Array>(old: T, needed: number, make: (size: number) => T): T {
  const bigger = make(Math.max(needed, old.length * 2));
  bigger.set(old);
  releaseMemory(old);
  return bigger;
}

/** The known algorithms, sha256 (nearly every digest) first, with their names as bytes. */
const KNOWN = [...DIGEST_HEX_LENGTH]
  .sort(([a], [b]) => (a === 'sha256' ? -1 : b === 'sha256' ? 1 : 0))
  .map(([name, length]) => ({ name, length, bytes: Buffer.from(name, 'latin1') }));

type Known = (typeof KNOWN)[number];

/**
 * A materials or products object at nesting 3, its digest dicts at 4, read from `at.b` at
 * `at.p`: the checks of link.ts (artifactsFromJson) on plain strings in strictly increasing
 * order (names by model/names.ts, digests by digests.ts, no two names equal under case
 * folding), the canonical bytes written to `at.out` at `at.q` as they are read; both positions
 * advanced past it.
 * @throws DECLINE for anything the one pass does not take (see link-reader.ts)
 */
export function scanArtifacts(at: Cursor): ArtifactTable {
  if (at.out !== at.b) throw DECLINE;
  const scan = new MapScan(at.b, at.p, at.q);
  const table = scan.run();
  at.p = scan.p;
  at.q = scan.q;
  return table;
}

class MapScan {
  /** Names' bytes, one after another, a newline after each (no plain name holds one). */
  private nb = nameBytes;
  private nq = 0;
  /** Where each name ends in `nb`. */
  private ends = nameEnds;
  private count = 0;
  /** The digests while every artifact has one of the first artifact's algorithm. */
  private column = columnBytes;
  private cq = 0;
  private algorithm: Known | undefined;
  /** A dict per artifact, once some artifact does not fit the column. */
  private dicts: HashDict[] | undefined;

  constructor(
    private readonly b: Uint8Array,
    public p: number,
    public q: number,
  ) {
    // Sized from the bytes left, which bound what a map can hold (a name byte, a digest's two
    // hex digits and an entry each take input bytes): one allocation, and only the pages
    // written are ever touched. The growth methods stay for what the bounds do not cover.
    const left = b.length - p;
    if (this.nb.length < left + MAX_ARTIFACT_NAME_LENGTH + 2) this.nb = nameBytes = replaced(this.nb, Buffer.allocUnsafeSlow(left + MAX_ARTIFACT_NAME_LENGTH + 2));
    const entries = Math.min(Math.floor(left / MIN_ENTRY_BYTES) + 1, CAPS.artifactsPerLink);
    if (this.ends.length < entries) this.ends = nameEnds = replaced(this.ends, new Int32Array(entries));
    if (this.column.length < (left >> 1) + 64) this.column = columnBytes = replaced(this.column, new Uint8Array((left >> 1) + 64));
  }

  private growNames(): void {
    this.nb = nameBytes = grown(this.nb, this.nq + MAX_ARTIFACT_NAME_LENGTH + 2, (n) => Buffer.allocUnsafeSlow(n));
  }

  private growEnds(): void {
    this.ends = nameEnds = grown(this.ends, this.count + 1, (n) => new Int32Array(n));
  }

  private growColumn(): void {
    this.column = columnBytes = grown(this.column, this.cq + 64, (n) => new Uint8Array(n));
  }

  run(): ArtifactTable {
    const b = this.b;
    if (b[this.p] !== LBRACE) throw DECLINE;
    this.emit(LBRACE);
    this.p = skip(b, this.p + 1);
    if (b[this.p] === RBRACE) {
      this.emit(RBRACE);
      this.p++;
      return ArtifactTable.ofDicts([], []);
    }
    for (;;) {
      this.entry();
      this.p = skip(b, this.p + 1);
      const next = b[this.p];
      if (next === COMMA) {
        this.emit(COMMA);
        this.p = skip(b, this.p + 1);
        continue;
      }
      if (next !== RBRACE) throw DECLINE;
      this.emit(RBRACE);
      this.p++;
      return this.table();
    }
  }

  /** One artifact: its name, then its digest dict, `this.p` left on the dict's closing brace. */
  private entry(): void {
    this.name();
    const b = this.b;
    let p = skip(b, this.p);
    if (b[p] !== COLON) throw DECLINE;
    this.emit(COLON);
    p = skip(b, p + 1);
    if (b[p] !== LBRACE) throw DECLINE;
    this.emit(LBRACE);
    this.p = skip(b, p + 1);
    if (!this.columnDigest()) this.otherDigests();
  }

  /**
   * The name: plain printable ASCII, strictly increasing, copied to the output and to the
   * names' bytes. That it is a normalised relative path is checked at its ends here and in its
   * middle for all names at once (table()). Leaves `this.p` after the closing quote.
   */
  private name(): void {
    if (this.nb.length < this.nq + MAX_ARTIFACT_NAME_LENGTH + 2) this.growNames();
    if (this.count >= this.ends.length) this.growEnds();
    const b = this.b;
    const nb = this.nb;
    const out = b;
    let p = this.p;
    if (b[p] !== QUOTE) throw DECLINE;
    const nameStart = ++p;
    const nbStart = this.nq;
    let nq = nbStart;
    let c = b[p] as number;
    // (Past the end, b[p] is undefined and so is its class: the loop stops, the check fails.)
    while (((CLASS[c] as number) & PLAIN) !== 0) {
      nb[nq++] = c;
      c = b[++p] as number;
    }
    if (c !== QUOTE || p === nameStart || p - nameStart > MAX_ARTIFACT_NAME_LENGTH) throw DECLINE;
    // A '.' or '..' segment, or a '/', at either end; a name of digits only (an array index,
    // which the general path's Object.keys lists first).
    const head = nb[nbStart] as number;
    const tail = nb[nq - 1] as number;
    if (head === SLASH || tail === SLASH) throw DECLINE;
    if ((head === DOT || tail === DOT) && dotSegmentAtAnEnd(nb, nbStart, nq)) throw DECLINE;
    if (head >= ZERO && head <= NINE && digitsOnly(nb, nbStart, nq)) throw DECLINE;
    const count = this.count;
    if (count > 0) {
      const previousEnd = this.ends[count - 1] as number;
      const previousStart = count > 1 ? (this.ends[count - 2] as number) + 1 : 0;
      if (!increasing(nb, previousStart, previousEnd, nbStart, nq)) throw DECLINE;
    }
    if (count >= CAPS.artifactsPerLink) throw DECLINE;
    this.ends[count] = nq;
    this.count = count + 1;
    nb[nq++] = NEWLINE;
    this.nq = nq;
    // Copied as one block (a run of bytes costs one memmove, not a store each).
    let q = this.q;
    out[q++] = QUOTE;
    out.copyWithin(q, nameStart, p);
    q += p - nameStart;
    out[q++] = QUOTE;
    this.q = q;
    this.p = p + 1;
  }

  /**
   * The common dict: one digest, of the table's algorithm (or the first artifact's, which
   * fixes it), read into the column, `this.p` left on the closing brace. False, with nothing
   * read, when the dict is anything else.
   */
  private columnDigest(): boolean {
    if (this.dicts !== undefined) return false;
    const b = this.b;
    let p = this.p;
    if (b[p] !== QUOTE) return false;
    const known = this.algorithm ?? knownAlgorithm(b, p + 1);
    if (known === undefined) return false;
    const name = known.bytes;
    for (let i = 0; i < name.length; i++) if (b[p + 1 + i] !== name[i]) return false;
    p += name.length + 1;
    if (b[p] !== QUOTE) return false;
    p = skip(b, p + 1);
    if (b[p] !== COLON) return false;
    p = skip(b, p + 1);
    if (b[p] !== QUOTE) return false;
    const hexFrom = ++p;
    if (this.cq + 64 > this.column.length) this.growColumn();
    const column = this.column;
    let o = this.cq;
    // Exactly the algorithm's number of hex digits, then the closing quote. Two lookups in a
    // 256-entry table per byte (it stays in the L1 cache, which a table of pairs does not).
    const end = p + known.length;
    if (end >= b.length) return false;
    for (; p < end; p += 2) {
      const hi = NIBBLE[b[p] as number] as number;
      const lo = NIBBLE[b[p + 1] as number] as number;
      if ((hi | lo) < 0) return false;
      column[o++] = (hi << 4) | lo;
    }
    if (b[p] !== QUOTE) return false;
    const hexTo = p;
    p = skip(b, p + 1);
    if (b[p] !== RBRACE) return false;
    // It is: write it out.
    const out = b;
    let q = this.q;
    out[q++] = QUOTE;
    for (let i = 0; i < name.length; i++) out[q++] = name[i] as number;
    out[q++] = QUOTE;
    out[q++] = COLON;
    out[q++] = QUOTE;
    out.copyWithin(q, hexFrom, hexTo);
    q += hexTo - hexFrom;
    out[q++] = QUOTE;
    out[q++] = RBRACE;
    this.q = q;
    this.p = p;
    this.cq = o;
    this.algorithm = known;
    return true;
  }

  /**
   * Any other dict: 1 to MAX_ALGORITHMS entries, algorithms strictly increasing, each checked
   * by digestProblem; from here on the table keeps a dict per artifact. Leaves `this.p` on the
   * closing brace.
   */
  private otherDigests(): void {
    const b = this.b;
    const out = b;
    let { p, q } = this;
    const entries: [string, string][] = [];
    let previousStart = -1;
    let previousEnd = -1;
    for (;;) {
      if (b[p] !== QUOTE || entries.length >= MAX_ALGORITHMS) throw DECLINE;
      out[q++] = QUOTE;
      const from = ++p;
      while (((CLASS[b[p] as number] as number) & PLAIN) !== 0) p++;
      if (b[p] !== QUOTE) throw DECLINE;
      const start = q;
      out.copyWithin(q, from, p);
      q += p - from;
      const end = q;
      if (previousStart >= 0 && !increasing(out, previousStart, previousEnd, start, end)) throw DECLINE;
      previousStart = start;
      previousEnd = end;
      out[q++] = QUOTE;
      p = skip(b, p + 1);
      if (b[p] !== COLON) throw DECLINE;
      out[q++] = COLON;
      p = skip(b, p + 1);
      if (b[p] !== QUOTE) throw DECLINE;
      out[q++] = QUOTE;
      const hexFrom = ++p;
      while ((NIBBLE[b[p] as number] as number) >= 0) p++;
      if (b[p] !== QUOTE) throw DECLINE;
      const hexStart = q;
      out.copyWithin(q, hexFrom, p);
      q += p - hexFrom;
      const hex = latin1(out, hexStart, q);
      out[q++] = QUOTE;
      // A known algorithm with lower-case hex of its length passes digestProblem; anything
      // else is asked (an all-digit algorithm is an array index: out of order, see above).
      const known = KNOWN.find((k) => k.bytes.length === end - start && k.bytes.every((x, i) => out[start + i] === x));
      const algorithm = known?.name ?? latin1(out, start, end);
      if (known !== undefined ? hex.length !== known.length : digestProblem(algorithm, hex) !== undefined || /^[0-9]+$/.test(algorithm)) throw DECLINE;
      entries.push([algorithm, hex]);
      p = skip(b, p + 1);
      if (b[p] === COMMA) {
        out[q++] = COMMA;
        p = skip(b, p + 1);
        continue;
      }
      if (b[p] !== RBRACE) throw DECLINE;
      out[q++] = RBRACE;
      break;
    }
    this.p = p;
    this.q = q;
    // The artifacts so far were in the column: each becomes a dict.
    if (this.dicts === undefined) this.dicts = columnDicts(this.column, this.count - 1, this.algorithm);
    const [first, ...more] = entries as [[string, string], ...[string, string][]];
    this.dicts.push(makeDigests(first[0], first[1], more.length === 0 ? undefined : more.map((e) => e[0]), more.length === 0 ? undefined : more.map((e) => e[1])));
  }

  /** The table, once the checks that need every name have passed. */
  private table(): ArtifactTable {
    // No empty, '.' or '..' segment inside a name (no '\n' stands between two slashes, so
    // none of these spans two names).
    const all = this.nb.toString('latin1', 0, this.nq - 1);
    if (EMPTY_OR_DOT_SEGMENT.test(all)) throw DECLINE;
    const names = namesOf(all, this.ends, this.count);
    // Names that differ only in case: the general path reports them (E_ARTIFACT_ALIAS).
    if (UPPER_ASCII.test(all) && caseFoldCollision(names) !== undefined) throw DECLINE;
    // In strictly increasing order (checked as they were read).
    if (this.dicts !== undefined) return ArtifactTable.ofDicts(names, this.dicts, { sorted: true });
    const known = this.algorithm as Known;
    return ArtifactTable.ofColumn(names, known.name, this.column.slice(0, this.cq), known.length / 2, true);
  }

  private emit(c: number): void {
    this.b[this.q++] = c;
  }
}

const UPPER_ASCII = /[A-Z]/;
/** '//', '/./' or '/../' (one pass of a compiled expression: less than half of three searches). */
const EMPTY_OR_DOT_SEGMENT = /\/\.{0,2}\//;

/** The names as strings, cut from one string of them all at `ends` (each followed by a newline). */
function namesOf(all: string, ends: Int32Array, count: number): string[] {
  const names = new Array<string>(count);
  let start = 0;
  for (let i = 0; i < count; i++) {
    const end = ends[i] as number;
    names[i] = all.slice(start, end);
    start = end + 1;
  }
  return names;
}

/** The first `count` column entries as digest dicts (when a table turns out to need dicts). */
function columnDicts(column: Uint8Array, count: number, known: Known | undefined): HashDict[] {
  const dicts: HashDict[] = [];
  if (known === undefined) return dicts;
  const width = known.length / 2;
  for (let i = 0; i < count; i++) {
    dicts.push(makeDigests(known.name, Buffer.from(column.buffer, column.byteOffset + i * width, width).toString('hex'), undefined, undefined));
  }
  return dicts;
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

/** The position of the first byte at or after `p` that is not JSON whitespace. */
export function skip(b: Uint8Array, p: number): number {
  while (p < b.length) {
    const c = b[p] as number;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
    else break;
  }
  return p;
}

/** b[s2, e2) sorts strictly after b[s1, e1) (bytes of ASCII: code-point order). */
function increasing(b: Uint8Array, s1: number, e1: number, s2: number, e2: number): boolean {
  const n1 = e1 - s1;
  const n2 = e2 - s2;
  const m = n1 < n2 ? n1 : n2;
  for (let i = 0; i < m; i++) {
    const x = b[s1 + i] as number;
    const y = b[s2 + i] as number;
    if (x !== y) return y > x;
  }
  return n2 > n1;
}

/** True when b[s, e) is all ASCII digits. */
function digitsOnly(b: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if ((b[i] as number) < ZERO || (b[i] as number) > NINE) return false;
  return true;
}

/** True when the name at b[s, e) begins or ends with a '.' or '..' segment ('.', '..', './x', 'x/..'). */
function dotSegmentAtAnEnd(b: Uint8Array, s: number, e: number): boolean {
  const n = e - s;
  const at = (i: number): number => b[s + i] as number;
  const first = n >= 1 && at(0) === DOT && (n === 1 || at(1) === SLASH || (at(1) === DOT && (n === 2 || at(2) === SLASH)));
  const last = at(n - 1) === DOT && (n === 1 || at(n - 2) === SLASH || (at(n - 2) === DOT && (n === 2 || at(n - 3) === SLASH)));
  return first || last;
}

/** The known algorithm whose quoted name starts at b[s] (followed by its closing quote), or undefined. */
function knownAlgorithm(b: Uint8Array, s: number): Known | undefined {
  for (let k = 0; k < KNOWN.length; k++) {
    const known = KNOWN[k] as Known;
    const bytes = known.bytes;
    let i = 0;
    while (i < bytes.length && b[s + i] === bytes[i]) i++;
    if (i === bytes.length && b[s + i] === QUOTE) return known;
  }
  return undefined;
}

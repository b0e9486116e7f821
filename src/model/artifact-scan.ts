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
 * It writes the canonical bytes of what it reads over the input, behind the read position
 * (`out` may be `b`): every byte written stands for a byte read, so the write position never
 * passes the read position, and what is read is never a byte already overwritten. Strings it
 * keeps (names, unusual algorithms and digests) are taken from the canonical bytes already
 * written, which do not change again.
 */

/** Thrown to give up on the one pass (link-reader.ts catches it); never leaves the model. */
export const DECLINE = Symbol('decline');

/** Where the one pass stands: the input, the canonical output (maybe the input itself), two positions. */
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
/** The byte value of two lower-case hex digits c1 c2 at (c1 << 8) | c2; -1 for any other pair. */
const HEX_PAIR = new Int16Array(1 << 16).fill(-1);
for (let hi = 0; hi < 256; hi++) {
  for (let lo = 0; lo < 256; lo++) {
    const [h, l] = [NIBBLE[hi] as number, NIBBLE[lo] as number];
    if (h >= 0 && l >= 0) HEX_PAIR[(hi << 8) | lo] = (h << 4) | l;
  }
}

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/**
 * Buffers reused from one map to the next (names' bytes, the digest column): only their
 * first pages are ever new memory. Each table gets its own exact copies.
 */
let nameBytes = Buffer.allocUnsafe(1 << 16);
let columnBytes = new Uint8Array(1 << 16);

function reserveNames(size: number): Buffer {
  if (nameBytes.length < size) {
    const bigger = Buffer.allocUnsafe(Math.max(size, nameBytes.length * 2));
    nameBytes.copy(bigger);
    nameBytes = bigger;
  }
  return nameBytes;
}

function reserveColumn(size: number): Uint8Array {
  if (columnBytes.length < size) {
    const bigger = new Uint8Array(Math.max(size, columnBytes.length * 2));
    bigger.set(columnBytes);
    columnBytes = bigger;
  }
  return columnBytes;
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
  const { b, out } = at;
  let p = at.p;
  let q = at.q;
  if (b[p] !== LBRACE) throw DECLINE;
  out[q++] = LBRACE;
  p = skip(b, p + 1);
  if (b[p] === RBRACE) {
    out[q++] = RBRACE;
    at.p = p + 1;
    at.q = q;
    return ArtifactTable.ofDicts([], []);
  }
  // Names' bytes one after another, and where each ends; the digests in a column while every
  // artifact has one digest of the first artifact's algorithm, else a dict per artifact.
  let nb = reserveNames(MAX_ARTIFACT_NAME_LENGTH + 1);
  let nq = 0;
  const ends: number[] = [];
  let column = reserveColumn(128);
  let cq = 0;
  let table: Known | undefined;
  let dicts: HashDict[] | undefined;
  let previousStart = -1;
  let previousEnd = -1;
  for (;;) {
    // The name: plain printable ASCII, strictly increasing, copied to the output and to the
    // names' bytes (a newline after each: no plain name holds one). That it is a normalised
    // relative path is checked on all names at once, below.
    if (b[p] !== QUOTE) throw DECLINE;
    out[q++] = QUOTE;
    const nameStart = ++p;
    if (nb.length < nq + MAX_ARTIFACT_NAME_LENGTH + 2) nb = reserveNames(nq + MAX_ARTIFACT_NAME_LENGTH + 2);
    const nbStart = nq;
    let c = b[p] as number;
    // (Past the end, b[p] is undefined and so is its class: the loop stops, the check fails.)
    while (((CLASS[c] as number) & PLAIN) !== 0) {
      out[q++] = c;
      nb[nq++] = c;
      c = b[++p] as number;
    }
    if (c !== QUOTE || p - nameStart > MAX_ARTIFACT_NAME_LENGTH) throw DECLINE;
    out[q++] = QUOTE;
    if (previousStart >= 0 && !increasing(nb, previousStart, previousEnd, nbStart, nq)) throw DECLINE;
    previousStart = nbStart;
    previousEnd = nq;
    ends.push(nq);
    nb[nq++] = NEWLINE;
    if (ends.length > CAPS.artifactsPerLink) throw DECLINE;

    p = skip(b, p + 1);
    if (b[p] !== COLON) throw DECLINE;
    out[q++] = COLON;
    p = skip(b, p + 1);
    if (b[p] !== LBRACE) throw DECLINE;
    out[q++] = LBRACE;
    p = skip(b, p + 1);

    // The digest dict: 1 to MAX_ALGORITHMS entries, algorithms strictly increasing.
    let count = 0;
    let first: { algorithm: string; hex: string } | undefined;
    let algorithms: string[] | undefined;
    let hexes: string[] | undefined;
    let algorithmStart = -1;
    let algorithmEnd = -1;
    let inColumn = false;
    for (;;) {
      if (b[p] !== QUOTE || ++count > MAX_ALGORITHMS) throw DECLINE;
      out[q++] = QUOTE;
      const start = q;
      c = b[++p] as number;
      while (((CLASS[c] as number) & PLAIN) !== 0) {
        out[q++] = c;
        c = b[++p] as number;
      }
      if (c !== QUOTE) throw DECLINE;
      const end = q;
      if (algorithmStart >= 0 && !increasing(out, algorithmStart, algorithmEnd, start, end)) throw DECLINE;
      algorithmStart = start;
      algorithmEnd = end;
      const known = knownAlgorithm(out, start, end);
      out[q++] = QUOTE;
      p = skip(b, p + 1);
      if (b[p] !== COLON) throw DECLINE;
      out[q++] = COLON;
      p = skip(b, p + 1);
      if (b[p] !== QUOTE) throw DECLINE;
      out[q++] = QUOTE;
      const hexStart = q;
      p++;
      // The first digest of a column table goes straight into the column (taken back below
      // if the dict turns out to hold more); any other is only copied.
      inColumn = count === 1 && dicts === undefined && known !== undefined && (table === undefined || known === table);
      if (inColumn) {
        if (column.length < cq + 64) column = reserveColumn(cq + 64);
        let o = cq;
        for (;;) {
          const c1 = b[p] as number;
          const c2 = b[p + 1] as number;
          // Past the end a byte is undefined, which the shift and the or read as 0: no pair.
          const value = HEX_PAIR[(c1 << 8) | c2] as number;
          if (value < 0) break;
          out[q++] = c1;
          out[q++] = c2;
          column[o++] = value;
          p += 2;
        }
      } else {
        while ((NIBBLE[b[p] as number] as number) >= 0) out[q++] = b[p++] as number;
      }
      if (b[p] !== QUOTE) throw DECLINE;
      const hexEnd = q;
      out[q++] = QUOTE;
      // A known algorithm with lower-case hex of its length passes digestProblem; anything
      // else is asked (an all-digit algorithm is an array index: out of order, see above).
      if (known !== undefined) {
        if (hexEnd - hexStart !== known.length) throw DECLINE;
      } else {
        const algorithm = latin1(out, start, end);
        if (digestProblem(algorithm, latin1(out, hexStart, hexEnd)) !== undefined || /^[0-9]+$/.test(algorithm)) throw DECLINE;
      }
      if (!inColumn) {
        const entry = { algorithm: known?.name ?? latin1(out, start, end), hex: latin1(out, hexStart, hexEnd) };
        if (count === 1) first = entry;
        else {
          (algorithms ??= []).push(entry.algorithm);
          (hexes ??= []).push(entry.hex);
        }
      } else {
        first = undefined;
      }
      p = skip(b, p + 1);
      c = b[p] as number;
      if (c === COMMA) {
        out[q++] = COMMA;
        p = skip(b, p + 1);
        if (count === 1 && inColumn) {
          // More than one digest: this artifact, and so the table, needs dicts after all.
          dicts = columnToDicts(column, cq, ends.length - 1, table ?? known);
          first = { algorithm: (known as Known).name, hex: latin1(out, hexStart, hexEnd) };
          inColumn = false;
        }
        continue;
      }
      if (c !== RBRACE) throw DECLINE;
      out[q++] = RBRACE;
      break;
    }
    if (inColumn) {
      // One digest, of the table's algorithm (the first artifact's, which fixes the width).
      table ??= knownOf(out, algorithmStart, algorithmEnd);
      cq += (table as Known).length / 2;
    } else {
      if (dicts === undefined) dicts = columnToDicts(column, cq, ends.length - 1, table);
      dicts.push(makeDigests((first as { algorithm: string }).algorithm, (first as { hex: string }).hex, algorithms, hexes));
    }

    p = skip(b, p + 1);
    const next = b[p];
    if (next === COMMA) {
      out[q++] = COMMA;
      p = skip(b, p + 1);
      continue;
    }
    if (next !== RBRACE) throw DECLINE;
    out[q++] = RBRACE;
    at.p = p + 1;
    at.q = q;
    break;
  }
  // All names at once, one per line, by regular expressions (a fraction of a byte loop's
  // cost): no empty, '.' or '..' segment (so no leading, trailing or double '/'), and none all
  // digits (an array index, which the general path's Object.keys lists first).
  const all = nb.toString('latin1', 0, nq - 1);
  if (BAD_SEGMENT.test(all) || DIGITS_ONLY.test(all)) throw DECLINE;
  const names = namesOf(all, ends);
  // Names that differ only in case: the general path reports them (E_ARTIFACT_ALIAS).
  if (UPPER_ASCII.test(all) && caseFoldCollision(names) !== undefined) throw DECLINE;
  // In strictly increasing order (checked above).
  if (dicts !== undefined) return ArtifactTable.ofDicts(names, dicts, true);
  const known = table as Known;
  return ArtifactTable.ofColumn(names, known.name, column.slice(0, cq), known.length / 2, true);
}

/** A path segment that is empty, '.' or '..', in names one per line. */
const BAD_SEGMENT = /(?:^|[\n/])\.{0,2}(?=[\n/]|$)/;
/** A name of digits only, in names one per line. */
const DIGITS_ONLY = /(?:^|\n)[0-9]+(?=\n|$)/;
const UPPER_ASCII = /[A-Z]/;

/** The names as strings, cut from one string of them all at `ends` (each followed by a newline). */
function namesOf(all: string, ends: readonly number[]): string[] {
  const names = new Array<string>(ends.length);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i] as number;
    names[i] = all.slice(start, end);
    start = end + 1;
  }
  return names;
}

/** The first `count` column entries as digest dicts (when a table turns out to need dicts). */
function columnToDicts(column: Uint8Array, cq: number, count: number, known: Known | undefined): HashDict[] {
  const dicts: HashDict[] = [];
  if (known === undefined || count === 0) return dicts;
  const width = known.length / 2;
  if (cq < count * width) throw DECLINE;
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

/** The known algorithm named at b[s, e), or undefined. */
function knownAlgorithm(b: Uint8Array, s: number, e: number): Known | undefined {
  for (let k = 0; k < KNOWN.length; k++) {
    const known = KNOWN[k] as Known;
    const bytes = known.bytes;
    if (bytes.length !== e - s) continue;
    let i = 0;
    while (i < bytes.length && b[s + i] === bytes[i]) i++;
    if (i === bytes.length) return known;
  }
  return undefined;
}

function knownOf(b: Uint8Array, s: number, e: number): Known {
  const known = knownAlgorithm(b, s, e);
  if (known === undefined) throw DECLINE;
  return known;
}


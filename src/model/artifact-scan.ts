import { DIGEST_HEX_LENGTH, keepArtifactList, type ArtifactMap, type HashDict } from './artifacts.js';
import { digestProblem, makeDigests, MAX_ALGORITHMS } from './digests.js';
import { artifactNameProblem, caseFoldCollision } from './names.js';
import { CAPS } from './schemas.js';

/**
 * The artifact maps of a link, read by the one pass of link-reader.ts straight from the file's
 * bytes: the loop that costs most of verifying a large chain, kept apart from the structure
 * around it.
 */

/** Thrown to give up on the one pass (link-reader.ts catches it); never leaves the model. */
export const DECLINE = Symbol('decline');

/** Where the one pass stands: the input, its text, the canonical output, two positions. */
export interface Cursor {
  readonly b: Uint8Array;
  /** The input read as latin1 (it is ASCII): string positions are byte positions. */
  readonly text: string;
  readonly out: Uint8Array;
  p: number;
  q: number;
}

/**
 * Byte classes: PLAIN, what a string the pass takes may hold as it is (printable ASCII but the
 * quote and the backslash: nothing to unescape, and its canonical form is itself); HEX, lower-
 * case hexadecimal digits; DIGIT, 0 to 9. One table lookup per byte in the loops below.
 */
const PLAIN = 1;
const HEX = 2;
const DIGIT = 4;
const CLASS = new Uint8Array(256);
for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x22 && c !== 0x5c) CLASS[c] = PLAIN;
for (let c = 0x30; c <= 0x39; c++) CLASS[c] = (CLASS[c] as number) | HEX | DIGIT;
for (let c = 0x61; c <= 0x66; c++) CLASS[c] = (CLASS[c] as number) | HEX;

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/**
 * A materials or products object at nesting 3, its digest dicts at 4, read from `at.b` at
 * `at.p`: the checks of link.ts (artifactsFromJson) on plain strings in strictly increasing
 * order, the canonical bytes copied to `at.out` at `at.q` as they are read; both positions
 * advanced past it. The hot loop of verification: positions in locals.
 * @throws DECLINE for anything the one pass does not take (see link-reader.ts)
 */
export function scanArtifacts(at: Cursor): ArtifactMap {
  const { b, text, out } = at;
  let p = at.p;
  let q = at.q;
  const map = new Map<string, HashDict>();
  // The entries in order too, for the rule queues (artifactList).
  const names: string[] = [];
  const dicts: HashDict[] = [];
  if (b[p] !== LBRACE) throw DECLINE;
  out[q++] = LBRACE;
  p = skip(b, p + 1);
  if (b[p] === RBRACE) {
    out[q++] = RBRACE;
    at.p = p + 1;
    at.q = q;
    return map;
  }
  let previousStart = -1;
  let previousEnd = -1;
  for (;;) {
    // The name: plain printable ASCII in strictly increasing order (no two the same).
    if (b[p] !== QUOTE) throw DECLINE;
    out[q++] = QUOTE;
    const nameStart = ++p;
    let c = b[p] as number;
    // (Past the end, b[p] is undefined and so is its class: the loop stops, the check fails.)
    while (((CLASS[c] as number) & PLAIN) !== 0) {
      out[q++] = c;
      c = b[++p] as number;
    }
    if (c !== QUOTE) throw DECLINE;
    const nameEnd = p;
    out[q++] = QUOTE;
    if (previousStart >= 0 && !increasing(b, previousStart, previousEnd, nameStart, nameEnd)) throw DECLINE;
    // An all-digit name is an array index, which the general path's Object.keys lists first.
    if (((CLASS[b[nameStart] as number] as number) & DIGIT) !== 0 && digitsOnly(b, nameStart, nameEnd)) throw DECLINE;
    previousStart = nameStart;
    previousEnd = nameEnd;
    const name = text.slice(nameStart, nameEnd);
    if (artifactNameProblem(name) !== undefined) throw DECLINE;
    p = skip(b, p + 1);
    if (b[p] !== COLON) throw DECLINE;
    out[q++] = COLON;
    p = skip(b, p + 1);
    if (b[p] !== LBRACE) throw DECLINE;
    out[q++] = LBRACE;
    p = skip(b, p + 1);

    // The digest dict: 1 to MAX_ALGORITHMS entries, algorithms strictly increasing.
    let count = 0;
    let algorithm0 = '';
    let hex0 = '';
    let algorithms: string[] | undefined;
    let hexes: string[] | undefined;
    let algorithmStart = -1;
    let algorithmEnd = -1;
    for (;;) {
      if (b[p] !== QUOTE || ++count > MAX_ALGORITHMS) throw DECLINE;
      out[q++] = QUOTE;
      const start = ++p;
      c = b[p] as number;
      while (((CLASS[c] as number) & PLAIN) !== 0) {
        out[q++] = c;
        c = b[++p] as number;
      }
      if (c !== QUOTE) throw DECLINE;
      if (algorithmStart >= 0 && !increasing(b, algorithmStart, algorithmEnd, start, p)) throw DECLINE;
      algorithmStart = start;
      algorithmEnd = p;
      const known = knownAlgorithm(b, start, p);
      const algorithm = known?.name ?? text.slice(start, p);
      out[q++] = QUOTE;
      p = skip(b, p + 1);
      if (b[p] !== COLON) throw DECLINE;
      out[q++] = COLON;
      p = skip(b, p + 1);
      if (b[p] !== QUOTE) throw DECLINE;
      out[q++] = QUOTE;
      const hexStart = ++p;
      c = b[p] as number;
      while (((CLASS[c] as number) & HEX) !== 0) {
        out[q++] = c;
        c = b[++p] as number;
      }
      if (c !== QUOTE) throw DECLINE;
      const hex = text.slice(hexStart, p);
      out[q++] = QUOTE;
      // A known algorithm with lower-case hex of its length passes digestProblem; anything
      // else is asked (an all-digit name is an array index: out of order, see above).
      if (known !== undefined ? p - hexStart !== known.length : digestProblem(algorithm, hex) !== undefined || /^[0-9]+$/.test(algorithm)) throw DECLINE;
      if (count === 1) {
        algorithm0 = algorithm;
        hex0 = hex;
      } else {
        (algorithms ??= []).push(algorithm);
        (hexes ??= []).push(hex);
      }
      p = skip(b, p + 1);
      c = b[p] as number;
      if (c === COMMA) {
        out[q++] = COMMA;
        p = skip(b, p + 1);
        continue;
      }
      if (c !== RBRACE) throw DECLINE;
      out[q++] = RBRACE;
      break;
    }
    const digests = makeDigests(algorithm0, hex0, algorithms, hexes);
    map.set(name, digests);
    names.push(name);
    dicts.push(digests);
    if (map.size > CAPS.artifactsPerLink) throw DECLINE;

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
    // Names that differ only in case: the general path reports them (E_ARTIFACT_ALIAS).
    if (caseFoldCollision(names) !== undefined) throw DECLINE;
    keepArtifactList(map, { names, digests: dicts });
    return map;
  }
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

/** The known algorithms, sha256 (nearly every digest) first. */
const KNOWN = [...DIGEST_HEX_LENGTH]
  .sort(([a], [b]) => (a === 'sha256' ? -1 : b === 'sha256' ? 1 : 0))
  .map(([name, length]) => ({ name, length, bytes: Buffer.from(name, 'latin1') }));

/** The known algorithm named at b[s, e), as one shared string (no copy per artifact). */
function knownAlgorithm(b: Uint8Array, s: number, e: number): { readonly name: string; readonly length: number } | undefined {
  for (let k = 0; k < KNOWN.length; k++) {
    const known = KNOWN[k] as (typeof KNOWN)[number];
    const bytes = known.bytes;
    if (bytes.length !== e - s) continue;
    let i = 0;
    while (i < bytes.length && b[s + i] === bytes[i]) i++;
    if (i === bytes.length) return known;
  }
  return undefined;
}

/** True when b[s, e) is all ASCII digits. */
function digitsOnly(b: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (((CLASS[b[i] as number] as number) & DIGIT) === 0) return false;
  return true;
}

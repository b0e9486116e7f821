/**
 * Python's `fnmatch.fnmatchcase` (3.11, POSIX: no case folding), which is what the reference's
 * `fnmatch.filter` does on POSIX. `*` matches any string including `/`, `?` any one code point,
 * `[seq]` / `[!seq]` a class with Python's exact bracket rules (ported from `fnmatch.translate`
 * together with how `re` then reads the class), an unmatched `[` is a literal. There is no
 * escape character.
 *
 * Matching runs in time linear in the name for a given pattern, with no backtracking blow-up:
 * the pattern is split at its `*`s into fixed-length segments; the first is anchored at the
 * start, the last at the end, and each middle segment is placed at its leftmost fit (the
 * classic greedy argument: the leftmost fit leaves the most room for what follows). The cost
 * is O(|name| x longest segment), never exponential.
 */

/** One code-point matcher inside a segment. */
type Element =
  | { readonly t: 'lit'; readonly cp: number }
  | { readonly t: 'any' }
  | { readonly t: 'set'; readonly negate: boolean; readonly ranges: readonly number[] }; // lo,hi pairs

interface Segment {
  readonly elements: readonly Element[];
  /** The segment as a string when every element is a literal (enables indexOf / startsWith). */
  readonly literal: string | undefined;
}

/** A compiled pattern. Compile once per rule, then call {@link Pattern.matches} per name. */
export interface Pattern {
  readonly source: string;
  /** The single name this pattern matches when it has no wildcard or class, else undefined. */
  readonly literal: string | undefined;
  /** True when the pattern is only `*`s and so matches every name. */
  readonly matchesAll: boolean;
  /**
   * When the pattern is a literal followed by `*`s only (`data/*`): that literal, so that a
   * caller testing many names can test `startsWith` itself; else undefined.
   */
  readonly prefix?: string;
  matches(name: string): boolean;
}

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BANG = 0x21;
const HYPHEN = 0x2d;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Marks the unescaped `-` that fnmatch.translate puts between two chunks of a class. */
const RANGE_OP = -1;

/**
 * Compiles `pattern` with fnmatch semantics. Never throws: every string is a valid fnmatch
 * pattern (the rule parser refuses the ones no artifact name could match).
 */
export function compilePattern(pattern: string): Pattern {
  const cps = Array.from(pattern, (c) => c.codePointAt(0) ?? 0);
  // nextClose[j]: the first `]` at or after j. Looking it up, rather than scanning, keeps a
  // pattern full of unclosed `[` linear (Python's translate is quadratic there).
  const nextClose = new Int32Array(cps.length + 1).fill(cps.length);
  for (let j = cps.length - 1; j >= 0; j--) nextClose[j] = cps[j] === CLOSE ? j : (nextClose[j + 1] ?? cps.length);
  const pieces: (Element | typeof STAR)[] = [];
  let i = 0;
  while (i < cps.length) {
    const c = cps[i++] ?? 0;
    if (c === STAR) {
      if (pieces[pieces.length - 1] !== STAR) pieces.push(STAR);
    } else if (c === QUESTION) {
      pieces.push({ t: 'any' });
    } else if (c === OPEN) {
      const parsed = parseBracket(cps, i, nextClose);
      if (parsed === undefined) pieces.push({ t: 'lit', cp: OPEN });
      else {
        pieces.push(parsed.element);
        i = parsed.next;
      }
    } else {
      pieces.push({ t: 'lit', cp: c });
    }
  }
  return build(pattern, pieces);
}

/**
 * The class starting after the `[` at `start - 1`, as fnmatch.translate reads it: a `]` right
 * after `[` or `[!` is a member, the class ends at the next `]`, and with no such `]` the `[`
 * is a literal (undefined is returned).
 */
function parseBracket(
  p: readonly number[],
  start: number,
  nextClose: Int32Array,
): { element: Element; next: number } | undefined {
  const n = p.length;
  let j = start;
  if (j < n && p[j] === BANG) j++;
  if (j < n && p[j] === CLOSE) j++;
  j = nextClose[j] ?? n;
  if (j >= n) return undefined;
  const stuff = p.slice(start, j);
  let tokens: number[];
  if (!stuff.includes(HYPHEN)) {
    tokens = stuff;
  } else {
    // Split at the hyphens that form ranges. The first member (after `!`) and the member right
    // after a range's hyphen are never range hyphens themselves (translate's `k = k + 3`).
    const chunks: number[][] = [];
    let i = start;
    let k = p[start] === BANG ? start + 2 : start + 1;
    for (;;) {
      k = indexOf(p, HYPHEN, k, j);
      if (k < 0) break;
      chunks.push(p.slice(i, k));
      i = k + 1;
      k = k + 3;
    }
    const last = p.slice(i, j);
    if (last.length > 0) chunks.push(last);
    else chunks[chunks.length - 1]?.push(HYPHEN); // a trailing hyphen is a member
    // Drop reversed ranges (an error in `re`) together with both of their endpoints.
    for (let m = chunks.length - 1; m > 0; m--) {
      const before = chunks[m - 1] ?? [];
      const after = chunks[m] ?? [];
      if ((before[before.length - 1] ?? 0) > (after[0] ?? 0)) {
        chunks[m - 1] = [...before.slice(0, -1), ...after.slice(1)];
        chunks.splice(m, 1);
      }
    }
    tokens = [];
    chunks.forEach((chunk, m) => {
      if (m > 0) tokens.push(RANGE_OP);
      tokens.push(...chunk);
    });
  }
  const next = j + 1;
  if (tokens.length === 0) return { element: { t: 'set', negate: false, ranges: [] }, next }; // `(?!)`
  if (tokens.length === 1 && tokens[0] === BANG) return { element: { t: 'any' }, next };
  const negate = tokens[0] === BANG;
  return { element: { t: 'set', negate, ranges: classRanges(negate ? tokens.slice(1) : tokens) }, next };
}

/** Reads class members the way `re` (sre_parse) reads `[...]`: `a-b` is a range, all else literal. */
function classRanges(tokens: readonly number[]): number[] {
  const ranges: number[] = [];
  const charOf = (t: number): number => (t === RANGE_OP ? HYPHEN : t);
  let i = 0;
  while (i < tokens.length) {
    const lo = charOf(tokens[i++] ?? 0);
    if (tokens[i] === RANGE_OP && i + 1 < tokens.length) {
      const hi = charOf(tokens[i + 1] ?? 0);
      i += 2;
      if (hi >= lo) ranges.push(lo, hi); // translate already dropped reversed ranges
    } else {
      ranges.push(lo, lo);
    }
  }
  return ranges;
}

function indexOf(p: readonly number[], value: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (p[i] === value) return i;
  return -1;
}

function toSegment(elements: Element[]): Segment {
  if (!elements.every((e) => e.t === 'lit')) return { elements, literal: undefined };
  // join, not String.fromCodePoint(...spread): a spread of a huge pattern overflows the stack.
  const literal = elements.map((e) => String.fromCodePoint(e.t === 'lit' ? e.cp : 0)).join('');
  // String search agrees with code-point matching only for well-formed text: a lone surrogate
  // in the pattern could otherwise match half of a pair in the name.
  return { elements, literal: LONE_SURROGATE.test(literal) ? undefined : literal };
}

function build(source: string, pieces: readonly (Element | typeof STAR)[]): Pattern {
  const segments: Segment[] = [];
  let current: Element[] = [];
  for (const piece of pieces) {
    if (piece === STAR) {
      segments.push(toSegment(current));
      current = [];
    } else current.push(piece);
  }
  segments.push(toSegment(current));
  const head = segments[0] ?? toSegment([]);
  if (segments.length === 1) {
    const literal = head.literal;
    if (literal !== undefined) return { source, literal, matchesAll: false, matches: (name) => name === literal };
    return { source, literal: undefined, matchesAll: false, matches: (name) => matchAt(head, name, 0, name.length) === name.length };
  }
  const tail = segments[segments.length - 1] ?? toSegment([]);
  const middles = segments.slice(1, -1).filter((s) => s.elements.length > 0);
  const common = { source, literal: undefined };
  if (middles.length === 0 && head.literal !== undefined && tail.literal !== undefined) {
    const [h, t] = [head.literal, tail.literal];
    if (h === '' && t === '') return { ...common, matchesAll: true, matches: () => true };
    if (t === '') return { ...common, matchesAll: false, prefix: h, matches: (name) => name.startsWith(h) };
    if (h === '') return { ...common, matchesAll: false, matches: (name) => name.endsWith(t) };
    return {
      ...common,
      matchesAll: false,
      matches: (name) => name.length >= h.length + t.length && name.startsWith(h) && name.endsWith(t),
    };
  }
  return { ...common, matchesAll: false, matches: (name) => matchStars(head, middles, tail, name) };
}

/** Width in UTF-16 units of the code point at `i`. */
function width(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return 2;
  }
  return 1;
}

function elementMatches(e: Element, cp: number): boolean {
  if (e.t === 'lit') return e.cp === cp;
  if (e.t === 'any') return true;
  let inside = false;
  for (let r = 0; r < e.ranges.length; r += 2) {
    if (cp >= (e.ranges[r] ?? 0) && cp <= (e.ranges[r + 1] ?? -1)) {
      inside = true;
      break;
    }
  }
  return inside !== e.negate;
}

/** Matches `seg` at unit offset `pos` within [pos, end); the offset after it, or -1. */
function matchAt(seg: Segment, s: string, pos: number, end: number): number {
  for (const e of seg.elements) {
    if (pos >= end) return -1;
    const cp = s.codePointAt(pos) ?? 0;
    if (!elementMatches(e, cp)) return -1;
    pos += cp > 0xffff ? 2 : 1;
  }
  return pos;
}

/** The unit offset `count` code points before `end`, or -1 when the string is too short. */
function backCodePoints(s: string, end: number, count: number): number {
  let pos = end;
  for (let n = 0; n < count; n++) {
    if (pos <= 0) return -1;
    const c = s.charCodeAt(pos - 1);
    const pair = c >= 0xdc00 && c <= 0xdfff && pos >= 2 && (s.charCodeAt(pos - 2) & 0xfc00) === 0xd800;
    pos -= pair ? 2 : 1;
  }
  return pos;
}

function matchStars(head: Segment, middles: readonly Segment[], tail: Segment, s: string): boolean {
  let pos = matchAt(head, s, 0, s.length);
  if (pos < 0) return false;
  const tailStart = backCodePoints(s, s.length, tail.elements.length);
  if (tailStart < pos || matchAt(tail, s, tailStart, s.length) !== s.length) return false;
  for (const mid of middles) {
    const found = leftmost(mid, s, pos, tailStart);
    if (found < 0) return false;
    pos = found;
  }
  return true;
}

/** The end offset of the leftmost fit of `seg` within [from, end), or -1. */
function leftmost(seg: Segment, s: string, from: number, end: number): number {
  if (seg.literal !== undefined) {
    const at = s.indexOf(seg.literal, from);
    return at >= 0 && at + seg.literal.length <= end ? at + seg.literal.length : -1;
  }
  for (let p = from; p < end; p += width(s, p)) {
    const r = matchAt(seg, s, p, end);
    if (r >= 0) return r;
  }
  return -1;
}

/** One-off `fnmatch.fnmatchcase(name, pattern)`; compile with {@link compilePattern} to reuse. */
export function fnmatchCase(name: string, pattern: string): boolean {
  return compilePattern(pattern).matches(name);
}

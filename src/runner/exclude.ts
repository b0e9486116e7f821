import { UsageError } from '../errors.js';
import { isWellFormedUnicode } from './artifact-names.js';

/**
 * Exclude patterns as the reference applies them: pathspec 0.11's `gitwildmatch` patterns,
 * matched against a path with `PathSpec.match_file` (the last pattern that matches decides,
 * `!pattern` re-includes). Each pattern becomes a JavaScript regular expression that accepts
 * exactly the strings pathspec's Python regular expression accepts, so an exclude list keeps
 * or drops the same files in both implementations (a differential property test holds us to
 * it). Python's regex dialect differs from JavaScript's in ways that matter here (`.` and `$`
 * around a newline, `[^]`, `]` first in a set, code units against code points), so the
 * translation is written out rather than reusing pathspec's regex text.
 */

/** One compiled pattern; `include` true means "excluded" in our use (pathspec's "matched"). */
interface CompiledPattern {
  readonly source: string;
  readonly regex: RegExp;
  readonly include: boolean;
}

/** A compiled list of exclude patterns. */
export interface ExcludeFilter {
  /** True when `path` (a normalised `/`-separated path, relative or absolute) is excluded. */
  readonly excludes: (path: string) => boolean;
  /** The patterns as given, for messages. */
  readonly patterns: readonly string[];
}

// Python's str.isspace() set, which str.strip() removes (JavaScript's trim() differs: it keeps
// U+001C..U+001F and U+0085 and removes U+FEFF).
const PY_SPACE = /^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/gu;

// Python's `.` without DOTALL is "anything but a newline".
const ANY = '[^\\n]';
// Python's `$` without MULTILINE also matches before one final newline.
const END = '\\n?$';

/**
 * Compiles exclude patterns.
 * @throws UsageError E_USAGE for a pattern pathspec rejects (a trailing `\`, `!` alone, a
 *   bracket range such as `[z-a]`) or a string that is not well-formed Unicode.
 */
export function compileExcludePatterns(patterns: readonly string[]): ExcludeFilter {
  const compiled: CompiledPattern[] = [];
  for (const pattern of patterns) {
    const one = compilePattern(pattern);
    if (one !== undefined) compiled.push(one);
  }
  const copy = [...patterns];
  if (compiled.length === 0) return { excludes: () => false, patterns: copy };
  return {
    patterns: copy,
    excludes(path: string): boolean {
      const file = normalizeFile(path);
      // pathspec lets the last matching pattern decide; scanning backwards stops at it.
      for (let i = compiled.length - 1; i >= 0; i--) {
        const p = compiled[i]!;
        if (p.regex.test(file)) return p.include;
      }
      return false;
    },
  };
}

/** pathspec.util.normalize_file on POSIX: drop one leading `/`, else one leading `./`. */
function normalizeFile(path: string): string {
  if (path.startsWith('/')) return path.slice(1);
  if (path.startsWith('./')) return path.slice(2);
  return path;
}

function invalid(pattern: string, why: string): UsageError {
  return new UsageError('E_USAGE', `invalid exclude pattern ${JSON.stringify(pattern)}: ${why}`);
}

/** GitWildMatchPattern.pattern_to_regex, producing a JavaScript regex; undefined for a no-op. */
function compilePattern(original: string): CompiledPattern | undefined {
  if (!isWellFormedUnicode(original)) throw invalid(original, 'not well-formed Unicode');
  let pattern = original.replace(PY_SPACE, '');
  if (pattern.startsWith('#') || pattern === '/' || pattern === '') return undefined;

  let include = true;
  if (pattern.startsWith('!')) {
    include = false;
    pattern = pattern.slice(1);
  }
  const segs = pattern.split('/');
  // Collapse runs of '**' segments into one.
  for (let i = segs.length - 1; i > 0; i--) {
    if (segs[i - 1] === '**' && segs[i] === '**') segs.splice(i, 1);
  }
  let override: string | undefined;
  if (segs.length === 2 && segs[0] === '**' && segs[1] === '') {
    // '**/' matches everything except files directly in the root.
    override = `^${ANY}+/${ANY}*${END}`;
  }
  if (segs[0] === '') {
    segs.shift(); // a leading '/' anchors to the root
  } else if (segs.length === 1 || (segs.length === 2 && segs[1] === '')) {
    if (segs[0] !== '**') segs.unshift('**'); // a bare name matches at any depth
  }
  if (segs.length === 0) throw invalid(original, 'nothing left to match');
  if (segs[segs.length - 1] === '' && segs.length > 1) segs[segs.length - 1] = '**';

  const source = override ?? segmentsToRegex(segs, original);
  let regex: RegExp;
  try {
    regex = new RegExp(source, 'u');
  } catch (error) {
    throw invalid(original, error instanceof Error ? error.message : String(error));
  }
  return { source, regex, include };
}

function segmentsToRegex(segs: readonly string[], original: string): string {
  let out = '^';
  let needSlash = false;
  const end = segs.length - 1;
  // After a segment that ends the pattern, "foo" also matches "foo/anything".
  const tail = `(?:/${ANY}*)?`;
  segs.forEach((seg, i) => {
    if (seg === '**') {
      if (i === 0 && i === end) {
        out += `[^/]+${tail}`;
      } else if (i === 0) {
        out += `(?:${ANY}+/)?`;
        needSlash = false;
      } else if (i === end) {
        out += `/${ANY}*`;
      } else {
        out += `(?:/${ANY}+)?`;
        needSlash = true;
      }
    } else if (seg === '*') {
      if (needSlash) out += '/';
      out += '[^/]+';
      if (i === end) out += tail;
      needSlash = true;
    } else {
      if (needSlash) out += '/';
      out += translateSegmentGlob(seg, original);
      if (i === end) out += tail;
      needSlash = true;
    }
  });
  return out + END;
}

/** A code point as a regex atom that means exactly that character (inside or outside a set). */
function lit(codePoint: number): string {
  return `\\u{${codePoint.toString(16)}}`;
}

const BACKSLASH = 0x5c;
const CLOSE = 0x5d; // ]
const BANG = 0x21;
const CARET = 0x5e;
const DASH = 0x2d;

/** GitWildMatchPattern._translate_segment_glob, working on code points. */
function translateSegmentGlob(segment: string, original: string): string {
  const cps = Array.from(segment, (c) => c.codePointAt(0)!);
  const end = cps.length;
  let out = '';
  let escape = false;
  let i = 0;
  while (i < end) {
    const c = cps[i++]!;
    if (escape) {
      escape = false;
      out += lit(c);
    } else if (c === BACKSLASH) {
      escape = true;
    } else if (c === 0x2a) {
      out += '[^/]*';
    } else if (c === 0x3f) {
      out += '[^/]';
    } else if (c === 0x5b) {
      // Find the closing bracket exactly as pathspec does: skip a leading '!', then a ']'
      // in first position; backslashes are not escapes here.
      let j = i;
      if (j < end && cps[j] === BANG) j++;
      if (j < end && cps[j] === CLOSE) j++;
      while (j < end && cps[j] !== CLOSE) j++;
      if (j < end) {
        j++;
        out += bracketToRegex(cps.slice(i, j), original);
        i = j;
      } else {
        out += lit(0x5b);
      }
    } else {
      out += lit(c);
    }
  }
  if (escape) throw invalid(original, 'a trailing backslash escapes nothing');
  return out;
}

/**
 * pathspec hands `[` + (`^` for `!` | `\^` for `^` | nothing) + the body (backslashes doubled)
 * straight to Python's regex parser. This replays that parser's set grammar on the body:
 * `]` in first position is literal, `a-]` is `a` and `-`, a reversed range is an error.
 * `body` runs from just after `[` to the closing `]` inclusive.
 */
function bracketToRegex(body: readonly number[], original: string): string {
  let k = 0;
  let negate = false;
  // Items already in the set before the loop starts (the escaped caret).
  const pending: number[] = [];
  if (body[0] === BANG) {
    negate = true;
    k = 1;
  } else if (body[0] === CARET) {
    pending.push(CARET);
    k = 1;
  }
  const items: string[] = [];
  const next = (): number | undefined => (pending.length > 0 ? pending.shift() : body[k++]);
  const peek = (): number | undefined => (pending.length > 0 ? pending[0] : body[k]);
  for (;;) {
    const c = next();
    if (c === undefined) throw invalid(original, 'unterminated character set');
    if (c === CLOSE && items.length > 0) break;
    if (peek() === DASH) {
      next();
      const that = next();
      if (that === undefined) throw invalid(original, 'unterminated character set');
      if (that === CLOSE) {
        items.push(lit(c), lit(DASH));
        break;
      }
      if (that < c) throw invalid(original, 'bad character range');
      items.push(`${lit(c)}-${lit(that)}`);
    } else {
      items.push(lit(c));
    }
  }
  return `[${negate ? '^' : ''}${items.join('')}]`;
}

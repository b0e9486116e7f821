import { FormatError } from '../errors.js';

/**
 * Artifact names and step names as they may appear in metadata.
 *
 * An artifact name is a relative, `/`-separated, normalised path in NFC: no empty, `.` or `..`
 * segments (so no leading `/` or `./`, no `//`, no trailing `/`), no control characters.
 * Anything else could let `sub/../evil.sh` or `./evil.sh` slip past `DISALLOW evil.sh`
 * (THREATS.md, "Artifact rules"), so both the runner (before recording) and the verifier (on
 * loading a link) refuse such names with E_ARTIFACT_NAME.
 *
 * Names that would pass for other names are refused with their own code, E_ARTIFACT_ALIAS: a
 * backslash (a separator to Windows and to the reference's recorder), an invisible or bidi
 * control character, and, within one materials or products list, two names equal under case
 * folding (one file on a case-insensitive file system).
 */

export const MAX_ARTIFACT_NAME_LENGTH = 4096;
export const MAX_STEP_NAME_LENGTH = 255;

// C0 controls, DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Characters Unicode says render as nothing (Default_Ignorable_Code_Point): zero-width spaces
 * and joiners, the bidi controls that reorder what follows (U+202E shows `exe.txt` for
 * `txt.exe`), variation selectors, tags. A name holding one reads as another name.
 */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

// Printable ASCII but the backslash, with no empty, '.' or '..' segment and no leading or
// trailing '/': the common case, decided by one regular expression (NFC cannot change ASCII).
const PLAIN_NAME = /^(?:(?!\.\.?(?:\/|$))[\x20-\x2e\x30-\x5b\x5d-\x7e]+(?:\/|$))+$/;

/** What is wrong with a name, and the code it is refused with. */
export interface NameFault {
  /**
   * E_ARTIFACT_NAME: not a normalised relative path; E_ARTIFACT_ALIAS: a name that can pass
   * for another (a backslash, read as a separator on Windows and by the reference's recorder;
   * an invisible or bidi character).
   */
  readonly code: 'E_ARTIFACT_NAME' | 'E_ARTIFACT_ALIAS';
  readonly problem: string;
}

/** Why `name` is not an acceptable artifact name, with its code, or undefined when it is. */
export function artifactNameFault(name: string): NameFault | undefined {
  if (name.length <= MAX_ARTIFACT_NAME_LENGTH && PLAIN_NAME.test(name) && !name.endsWith('/')) return undefined;
  const bad = (problem: string): NameFault => ({ code: 'E_ARTIFACT_NAME', problem });
  const alias = (problem: string): NameFault => ({ code: 'E_ARTIFACT_ALIAS', problem });
  if (name.length === 0) return bad('is empty');
  if (name.length > MAX_ARTIFACT_NAME_LENGTH) return bad(`is longer than ${MAX_ARTIFACT_NAME_LENGTH} characters`);
  if (CONTROL.test(name)) return bad('contains a control character');
  if (name.startsWith('/')) return bad('is absolute (leading /)');
  if (name.includes('\\')) return alias('contains a backslash (a path separator on Windows and to the reference\'s recorder: it names another path)');
  if (INVISIBLE.test(name)) return alias(`contains an invisible or bidi control character (U+${invisibleCodePoint(name)}): it reads as another name`);
  if (name.normalize('NFC') !== name) return bad('is not in Unicode normal form C');
  for (const segment of name.split('/')) {
    if (segment === '') return bad('has an empty path segment (// or a trailing /)');
    if (segment === '.') return bad("has a '.' path segment");
    if (segment === '..') return bad("has a '..' path segment");
  }
  return undefined;
}

function invisibleCodePoint(text: string): string {
  const match = INVISIBLE.exec(text);
  return (match?.[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
}

/** Why `name` is not an acceptable artifact name, or undefined when it is. */
export function artifactNameProblem(name: string): string | undefined {
  return artifactNameFault(name)?.problem;
}

/**
 * Throws unless `name` is an acceptable artifact name.
 * @throws FormatError E_ARTIFACT_NAME, E_ARTIFACT_ALIAS
 */
export function assertArtifactName(name: string, where: string): void {
  const fault = artifactNameFault(name);
  if (fault !== undefined) {
    throw new FormatError(fault.code, `${where}: artifact name ${JSON.stringify(name)} ${fault.problem}`, {
      context: { artifact: name },
    });
  }
}

/**
 * A name folded for comparison without case: Unicode full case mapping both ways (`ß` and
 * `SS`, the Kelvin sign and `k`, `ſ` and `s` fold together), a superset of what case-insensitive
 * file systems (macOS, Windows) treat as one name.
 */
export function foldCase(name: string): string {
  return name.toUpperCase().toLowerCase();
}

/** Names with an ASCII upper-case letter or a non-ASCII character: the only ones whose fold differs from them. */
export const MAY_FOLD = /[A-Z\u0080-\uffff]/;

/**
 * Two names of `names` (all distinct) that are equal under {@link foldCase}, or undefined.
 * Two such artifacts are one file on a case-insensitive file system, with two digests: a rule
 * can check one while the other is what gets used. Only names that {@link MAY_FOLD} are folded
 * (a name without one is its own fold), so lower-case ASCII lists cost one test per name;
 * `mayFold`, when the caller knows, says which those are.
 */
export function caseFoldCollision(names: readonly string[], mayFold?: (index: number) => boolean): readonly [string, string] | undefined {
  let all: Set<string> | undefined;
  const folds = new Map<string, string>();
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (mayFold === undefined ? !MAY_FOLD.test(name) : !mayFold(i)) continue;
    const folded = foldCase(name);
    const earlier = folds.get(folded);
    if (earlier !== undefined) return [earlier, name];
    folds.set(folded, name);
    if (folded !== name) {
      all ??= new Set(names);
      if (all.has(folded)) return [folded, name];
    }
  }
  return undefined;
}

/**
 * Throws when two names of one materials or products list are equal under case folding.
 * @throws FormatError E_ARTIFACT_ALIAS
 */
export function assertNoCaseFoldCollision(names: readonly string[], where: string, mayFold?: (index: number) => boolean): void {
  const pair = caseFoldCollision(names, mayFold);
  if (pair === undefined) return;
  const [a, b] = pair;
  throw new FormatError('E_ARTIFACT_ALIAS', `${where}: artifact names ${JSON.stringify(a)} and ${JSON.stringify(b)} differ only in case: one file on a case-insensitive file system, with two digests`, {
    context: { artifact: b },
  });
}

/**
 * Why `name` cannot name a step, inspection or sublayout, or undefined when it can. Such a
 * name becomes part of a file name (`<name>.<keyid8>.link`) and of a directory name for
 * sublayouts, so it must be a single safe path segment.
 */
export function stepNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_STEP_NAME_LENGTH) return `is longer than ${MAX_STEP_NAME_LENGTH} characters`;
  if (CONTROL.test(name)) return 'contains a control character';
  if (name.includes('/') || name.includes('\\')) return 'contains a path separator';
  if (name === '.' || name === '..') return 'is a relative directory name';
  // A hidden file name: `.x.<keyid8>.link` is not listed by ls, and record start keeps its
  // unfinished links as `.<step>.<keyid8>.link-unfinished`.
  if (name.startsWith('.')) return "starts with '.' (a hidden file name)";
  if (INVISIBLE.test(name)) return `contains an invisible or bidi control character (U+${invisibleCodePoint(name)})`;
  if (name.normalize('NFC') !== name) return 'is not in Unicode normal form C';
  return undefined;
}

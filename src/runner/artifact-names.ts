import { FormatError, RunError } from '../errors.js';
import { artifactNameFault, assertNoCaseFoldCollision } from '../model/names.js';

/**
 * How the runner turns a path into the name a link records, step by step as the reference's
 * `record_artifacts_as_dict` does (Python's `os.path.normpath`, `os.path.join`, then
 * `--lstrip-paths`), followed by the checks the reference does not make: the final name must
 * be one the verifier accepts (model/names.ts).
 */

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** False when `text` holds a lone UTF-16 surrogate (it has no UTF-8 form and no file name). */
export function isWellFormedUnicode(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/**
 * Python's `posixpath.normpath`: collapses `.`, `..` and repeated `/` lexically, keeps leading
 * `..` of a relative path, and keeps exactly two leading slashes (POSIX leaves `//x`
 * implementation-defined, so Python preserves it). `''` becomes `'.'`.
 */
export function pythonNormpath(path: string): string {
  if (path === '') return '.';
  let initialSlashes = path.startsWith('/') ? 1 : 0;
  if (initialSlashes === 1 && path.startsWith('//') && !path.startsWith('///')) initialSlashes = 2;
  const kept: string[] = [];
  for (const comp of path.split('/')) {
    if (comp === '' || comp === '.') continue;
    if (comp !== '..' || (initialSlashes === 0 && kept.length === 0) || kept[kept.length - 1] === '..') {
      kept.push(comp);
    } else if (kept.length > 0) {
      kept.pop();
    }
  }
  const joined = '/'.repeat(initialSlashes) + kept.join('/');
  return joined === '' ? '.' : joined;
}

/** `normpath(join(dir, entry))` for a normalised `dir` and one directory entry name. */
export function childName(dir: string, entry: string): string {
  if (dir === '.') return entry;
  return dir.endsWith('/') ? dir + entry : `${dir}/${entry}`;
}

/** True when a normalised relative path climbs out of where it starts (`..` or `../x`). */
export function climbsOut(normalized: string): boolean {
  return normalized === '..' || normalized.startsWith('../');
}

/**
 * Refuses `--lstrip-paths` prefixes of which one starts another (the reference's
 * PrefixError): with overlapping prefixes the name would depend on their order.
 * @throws RunError E_LSTRIP
 */
export function checkLstripPrefixes(prefixes: readonly string[]): void {
  for (let i = 0; i < prefixes.length; i++) {
    for (let j = i + 1; j < prefixes.length; j++) {
      const a = prefixes[i]!;
      const b = prefixes[j]!;
      if (a.startsWith(b) || b.startsWith(a)) {
        throw new RunError('E_LSTRIP', `--lstrip-paths ${JSON.stringify(a)} and ${JSON.stringify(b)} overlap (one is a prefix of the other)`);
      }
    }
  }
}

/** The reference's left strip: the first prefix that starts `path` is removed (plain text, no `/` logic). */
export function lstripName(path: string, prefixes: readonly string[]): string {
  for (const prefix of prefixes) {
    if (path.startsWith(prefix)) return path.slice(prefix.length);
  }
  return path;
}

/**
 * True when some prefix would strip `root` or every path below it: the condition under which a
 * path outside the base path (or an absolute one) may still be recorded, because its names are
 * the stripped remainders.
 */
export function lstripCovers(root: string, prefixes: readonly string[]): boolean {
  const asDir = root.endsWith('/') ? root : `${root}/`;
  return prefixes.some((prefix) => asDir.startsWith(prefix));
}

/**
 * Checks a name about to be recorded for `file` (the path on disk, for the message): it must
 * be one the verifier accepts (model/names.ts). A backslash is refused there too: the
 * reference turns it into `/`, so a file called `sub\evil` would be recorded as `sub/evil`, a
 * name that is not the file's.
 * @throws FormatError E_ARTIFACT_NAME, E_ARTIFACT_ALIAS
 */
export function assertRecordableName(name: string, file: string): void {
  const fault = isWellFormedUnicode(name) ? artifactNameFault(name) : { code: 'E_ARTIFACT_NAME' as const, problem: 'is not well-formed Unicode' };
  if (fault === undefined) return;
  const hint = name.startsWith('/')
    ? '; pass a path relative to the base path, or strip the prefix with --lstrip-paths'
    : '';
  throw new FormatError(fault.code, `${file}: artifact name ${JSON.stringify(name)} ${fault.problem}${hint}`, {
    context: { artifact: name, file },
  });
}

/**
 * Checks the names about to be recorded together (materials, or products): no two may be
 * equal under case folding, which the verifier refuses (model/names.ts); say so before
 * anything is hashed, naming both.
 * @throws FormatError E_ARTIFACT_ALIAS
 */
export function assertRecordableNames(names: readonly string[]): void {
  assertNoCaseFoldCollision(names, 'recording');
}

import { FormatError } from '../errors.js';

/**
 * Artifact names and step names as they may appear in metadata.
 *
 * An artifact name is a relative, `/`-separated, normalised path in NFC: no empty, `.` or `..`
 * segments (so no leading `/` or `./`, no `//`, no trailing `/`), no control characters.
 * Anything else could let `sub/../evil.sh` or `./evil.sh` slip past `DISALLOW evil.sh`
 * (THREATS.md, "Artifact rules"), so both the runner (before recording) and the verifier (on
 * loading a link) refuse such names with E_ARTIFACT_NAME.
 */

export const MAX_ARTIFACT_NAME_LENGTH = 4096;
export const MAX_STEP_NAME_LENGTH = 255;

// C0 controls, DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `name` is not an acceptable artifact name, or undefined when it is. */
// Printable ASCII with no empty, '.' or '..' segment and no leading or trailing '/': the
// common case, decided by one regular expression (NFC cannot change ASCII).
const PLAIN_NAME = /^(?:(?!\.\.?(?:\/|$))[\x20-\x2e\x30-\x7e]+(?:\/|$))+$/;

export function artifactNameProblem(name: string): string | undefined {
  if (name.length <= MAX_ARTIFACT_NAME_LENGTH && PLAIN_NAME.test(name) && !name.endsWith('/')) return undefined;
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_ARTIFACT_NAME_LENGTH) return `is longer than ${MAX_ARTIFACT_NAME_LENGTH} characters`;
  if (CONTROL.test(name)) return 'contains a control character';
  if (name.startsWith('/')) return 'is absolute (leading /)';
  if (name.normalize('NFC') !== name) return 'is not in Unicode normal form C';
  for (const segment of name.split('/')) {
    if (segment === '') return 'has an empty path segment (// or a trailing /)';
    if (segment === '.') return "has a '.' path segment";
    if (segment === '..') return "has a '..' path segment";
  }
  return undefined;
}

/**
 * Throws unless `name` is an acceptable artifact name.
 * @throws FormatError E_ARTIFACT_NAME
 */
export function assertArtifactName(name: string, where: string): void {
  const problem = artifactNameProblem(name);
  if (problem !== undefined) {
    throw new FormatError('E_ARTIFACT_NAME', `${where}: artifact name ${JSON.stringify(name)} ${problem}`, {
      context: { artifact: name },
    });
  }
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
  if (name.normalize('NFC') !== name) return 'is not in Unicode normal form C';
  return undefined;
}

import { FormatError } from '../errors.js';
import { DIGEST_HEX_LENGTH, type ArtifactMap, type HashDict } from '../model/artifacts.js';
import { artifactNameFault } from '../model/names.js';

/**
 * Checks a link's materials or products before any rule sees them. Names must be normalised
 * (model/names.ts): otherwise `sub/../evil.sh`, `./evil.sh`, `evil.sh/` or `//evil.sh` would be
 * a different string from `evil.sh` and slip past `DISALLOW evil.sh` while naming the same file.
 * Digests must be spelled one way only (lower-case hex of the right length), so that string
 * comparison is content comparison. Every problem is collected, then thrown once.
 *
 * This file imports only errors and model: it can move to model/ as it is, should the link
 * loader live there (model may not import verify).
 */

const ALGORITHM_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const LOWER_HEX = /^[0-9a-f]+$/;

/** How many problems a message lists in `details` before summarising the rest. */
const MAX_LISTED = 50;

function collectAndThrow(
  code: 'E_ARTIFACT_NAME' | 'E_ARTIFACT_ALIAS' | 'E_SCHEMA',
  where: string,
  problems: readonly { artifact: string; text: string }[],
): void {
  const first = problems[0];
  if (first === undefined) return;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  const details = problems.slice(0, MAX_LISTED).map((p) => p.text);
  if (problems.length > MAX_LISTED) details.push(`... and ${problems.length - MAX_LISTED} more`);
  throw new FormatError(code, `${where}: ${first.text}${more}`, { details, context: { artifact: first.artifact } });
}

function quoted(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
}

/**
 * Throws unless every name in `artifacts` is an acceptable artifact name.
 * `where` names the list, e.g. "link 'train' products".
 * @throws FormatError E_ARTIFACT_NAME (or E_ARTIFACT_ALIAS, when that is the first bad name's
 *   fault) listing every bad name.
 */
export function assertArtifactNames(artifacts: ArtifactMap | Iterable<string>, where: string): void {
  const names = artifacts instanceof Map ? artifacts.keys() : (artifacts as Iterable<string>);
  const problems: { artifact: string; text: string }[] = [];
  let code: 'E_ARTIFACT_NAME' | 'E_ARTIFACT_ALIAS' | undefined;
  for (const name of names) {
    const fault = artifactNameFault(name);
    if (fault === undefined) continue;
    code ??= fault.code;
    problems.push({ artifact: name, text: `artifact name ${quoted(name)} ${fault.problem}` });
  }
  collectAndThrow(code ?? 'E_ARTIFACT_NAME', where, problems);
}

/**
 * Throws unless every name is acceptable and every digest dict passes the checks of
 * {@link assertHashDict}. Names are checked first: a bad name is the graver problem.
 * @throws FormatError E_ARTIFACT_NAME for a bad name, else E_SCHEMA for a bad digest dict.
 */
export function assertArtifactMap(artifacts: ArtifactMap, where: string): void {
  assertArtifactNames(artifacts, where);
  const problems: { artifact: string; text: string }[] = [];
  for (const [name, dict] of artifacts) {
    for (const problem of hashDictProblems(dict)) problems.push({ artifact: name, text: `${quoted(name)}: ${problem}` });
  }
  collectAndThrow('E_SCHEMA', where, problems);
}

/** Why `dict` is not an acceptable digest dict, one line per problem (empty when it is). */
export function hashDictProblems(dict: HashDict): string[] {
  if (dict.size === 0) return ['has no digests'];
  const problems: string[] = [];
  for (const [algorithm, digest] of dict) {
    const name = JSON.stringify(algorithm.slice(0, 40));
    if (!ALGORITHM_NAME.test(algorithm)) {
      problems.push(`algorithm ${name} is not a lower-case name of at most 32 characters`);
      continue;
    }
    if (typeof digest !== 'string' || !LOWER_HEX.test(digest)) {
      problems.push(`${algorithm} digest is not lower-case hexadecimal`);
      continue;
    }
    const expected = DIGEST_HEX_LENGTH.get(algorithm);
    if (expected !== undefined && digest.length !== expected) {
      problems.push(`${algorithm} digest has ${digest.length} hex digits, expected ${expected}`);
    } else if (expected === undefined && (digest.length % 2 !== 0 || digest.length > 256)) {
      problems.push(`${algorithm} digest has ${digest.length} hex digits (odd, or over 256)`);
    }
  }
  return problems;
}

/**
 * Throws unless `dict` is an acceptable digest dict as a link records it: at least one entry;
 * algorithm names lower-case; digests lower-case hex, of the right length for known algorithms
 * ({@link DIGEST_HEX_LENGTH}) and of whole bytes for unknown ones. Upper-case digests are
 * refused rather than folded, so one file never has two spellings.
 * @throws FormatError E_SCHEMA naming `where` and every problem.
 */
export function assertHashDict(dict: HashDict, where: string): void {
  const problems = hashDictProblems(dict);
  if (problems.length > 0) {
    throw new FormatError('E_SCHEMA', `${where}: ${problems.join('; ')}`, { details: problems });
  }
}

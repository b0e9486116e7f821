import { isWellFormedUnicode } from '../runner/artifact-names.js';

/**
 * Model-relative paths as OMS writes them (spec §6.1.2): `/` separators, relative, no `.` or
 * `..` components, no empty components, valid Unicode. `.` alone names a single-file model in
 * model_signing's payloads and is handled by the callers.
 */

/** Why `path` is not a canonical model-relative path, or undefined when it is. */
export function pathProblem(path: string): string | undefined {
  if (path === '') return 'is empty';
  if (path.startsWith('/')) return 'is absolute';
  if (path.includes('\0')) return 'contains a NUL character';
  if (!isWellFormedUnicode(path)) return 'is not valid Unicode';
  for (const part of path.split('/')) {
    if (part === '') return 'has an empty component (// or a trailing /)';
    if (part === '.' || part === '..') return `has a ${part} component`;
  }
  return undefined;
}

/**
 * A user's ignore path, normalised to the spec's form: `./` and `.` components and repeated
 * or trailing separators removed. Undefined when it climbs out of the model (`..`) or is empty.
 */
export function normalizeRelative(path: string): string | undefined {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.includes('..')) return undefined;
  return parts.join('/');
}

/** True when `name` is `prefix` or lies below it. */
export function isUnder(name: string, prefix: string): boolean {
  return name === prefix || (name.length > prefix.length && name.startsWith(prefix) && name.charCodeAt(prefix.length) === 0x2f);
}

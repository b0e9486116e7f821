import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Public test material that is read where it lies and never copied into the repository:
 * `../shared` beside the clone (CI puts it there). `../shared/vectors/oms` holds the OpenSSF
 * Model Signing vectors, `../shared/peer` the in-toto ecosystem fixtures, each with a
 * MANIFEST.md naming its origin.
 */
const repoRoot = resolve(new URL('../../', import.meta.url).pathname);
export const SHARED_DIR = join(repoRoot, '..', 'shared');

/**
 * The path of `relative` under ../shared, or undefined when it is absent on a developer
 * machine (the caller skips). Under CI=true an absent fixture is a failure, never a skip.
 * @throws Error when CI=true and the material is missing
 */
export function sharedPath(relative: string): string | undefined {
  const path = join(SHARED_DIR, relative);
  if (existsSync(path)) return path;
  if (process.env['CI'] === 'true') {
    throw new Error(`CI=true but ${path} is missing: the public fixtures must sit in ../shared beside the clone`);
  }
  return undefined;
}

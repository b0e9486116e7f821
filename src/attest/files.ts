import { lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IoError, ioError } from '../errors.js';
import type { JsonObject } from '../canonical/json.js';
import { hashFile, type HashBuffers } from '../crypto/hash-file.js';
import { isAttestationFileName } from '../model/statement.js';
import { finalProductTargets } from '../verify/final-product.js';

/**
 * Files as attestations name them: digests (sha256, the algorithm every consumer accepts),
 * `file:` URIs, and the final product of a verification listed as the inspections see it.
 */

/** At most this many subjects in one attestation (bounded work and size). */
const MAX_SUBJECTS = 100_000;

/**
 * `{sha256}` of a regular file (not following a symlink), read through `buffers` (one
 * `createHashBuffers()` per attestation, reused for every file it hashes). @throws IoError
 */
export async function fileDigest(path: string, buffers: HashBuffers): Promise<JsonObject> {
  const digests = await hashFile(path, ['sha256'], buffers);
  return { sha256: digests.get('sha256') ?? '' };
}

/** A named ResourceDescriptor for a file: `{name, digest}`. @throws IoError */
export async function fileDescriptor(name: string, path: string, buffers: HashBuffers): Promise<JsonObject> {
  return { name, digest: await fileDigest(path, buffers) };
}

/** A file's `file:` URI (absolute). Never throws. */
export function fileUri(path: string): string {
  return pathToFileURL(resolve(path)).href;
}

export interface FinalProductListing {
  readonly cwd: string;
  /** `--final-products`, else the working directory minus what `exclude` names. */
  readonly finalProducts: readonly string[] | undefined;
  /** Files and directories that are not part of the default final product. */
  readonly exclude: readonly string[];
}

/**
 * The regular files of a verification's final product, by artifact name, with the rules the
 * inspections' placement uses (verify/final-product.ts): the `--final-products` paths, or the
 * working directory without the layout, the keys, the link directory, links and attestation
 * files. Symbolic links and special files are not subjects.
 * @throws IoError E_IO, E_LIMIT (more than {@link MAX_SUBJECTS} files); UsageError E_USAGE
 */
export function finalProductFiles(options: FinalProductListing): Map<string, string> {
  const files = new Map<string, string>();
  const excluded = new Set<string>();
  for (const path of options.exclude) {
    try {
      excluded.add(identity(statSync(resolve(options.cwd, path))));
    } catch {
      // absent: nothing to leave out
    }
  }
  const walk = (path: string, name: string, filtered: boolean): void => {
    let stat: Stats;
    try {
      stat = lstatSync(path);
    } catch (error) {
      throw ioError(path, error, 'cannot read the final product');
    }
    if (filtered && name !== '' && (excluded.has(identity(stat)) || (!stat.isDirectory() && (name.endsWith('.link') || isAttestationFileName(name))))) return;
    if (stat.isDirectory()) {
      let entries: string[];
      try {
        entries = readdirSync(path).sort();
      } catch (error) {
        throw ioError(path, error, 'cannot read the final product');
      }
      for (const entry of entries) walk(join(path, entry), name === '' ? entry : `${name}/${entry}`, filtered);
    } else if (stat.isFile()) {
      if (files.size >= MAX_SUBJECTS) throw new IoError('E_LIMIT', `the final product has more than ${MAX_SUBJECTS} files: too many subjects for one attestation`);
      files.set(name, path);
    }
  };
  if (options.finalProducts === undefined) walk(options.cwd, '', true);
  else for (const { source, name } of finalProductTargets(options.finalProducts, options.cwd)) walk(source, name, false);
  return files;
}

function identity(stat: Stats): string {
  return `${stat.dev}:${stat.ino}`;
}

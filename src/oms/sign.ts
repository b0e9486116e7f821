import { realpathSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { indicesByCodePoints } from '../canonical/json.js';
import { InternalError, IoError, ModelError, UsageError } from '../errors.js';
import { writeFileAtomicSync } from '../io/files.js';
import { pae } from '../model/envelope.js';
import { bundleText, type WrittenMaterial } from './bundle.js';
import { DEFAULT_GIT_IGNORES, DEFAULT_SIGNATURE_NAME, PAYLOAD_TYPE, type Resource, type Serialization } from './format.js';
import { hashModelFiles, isSingleFile, listModel } from './files.js';
import { keyHint, type ModelSigner } from './keys.js';
import { normalizeRelative } from './paths.js';
import { rootDigest, statementBytes } from './statement.js';

/**
 * Signing a model (spec §6): list its files, hash them on every core, build the Statement
 * (resources in the spec's order: code points of the whole name), sign its DSSE PAE, and write
 * the bundle. The same files and options always give the same payload bytes.
 */

export interface SignModelOptions {
  /** The model: a directory, or one file. */
  readonly dir: string;
  /** An already-loaded key (see ModelSigner.fromSigningKey / loadModelSigner). */
  readonly key: ModelSigner;
  /**
   * Where to write the bundle. Default `<dir>/model.sig` for a directory, `<file>.sig` for a
   * single file. Inside the model it is never part of what is signed.
   */
  readonly output?: string;
  /** Model-relative paths to leave out (and what lies below them). */
  readonly ignorePaths?: readonly string[];
  /** Leave out `.git`, `.gitattributes`, `.github`, `.gitignore` at the top (default true). */
  readonly ignoreGitPaths?: boolean;
  /** Follow symbolic links that stay inside the model (default false: a symlink is an error). */
  readonly allowSymlinks?: boolean;
  /** Hashing threads (default: one per core). */
  readonly threads?: number;
  /** Write the bundle (default true); false only builds it. */
  readonly write?: boolean;
}

export interface SignedModel {
  /** Where the bundle was (or would be) written. */
  readonly output: string;
  readonly bundle: string;
  /** The signed payload bytes (the Statement). */
  readonly payload: Buffer;
  readonly modelName: string;
  readonly rootDigest: string;
  readonly resources: readonly Resource[];
  readonly serialization: Serialization;
}

/**
 * The model-relative form of ignore paths given by a user: relative to the model root, or
 * absolute inside it. Paths outside the model are dropped (nothing there is signed anyway).
 * @throws UsageError E_USAGE for an empty path or one with `..`
 */
export function modelRelativeIgnores(model: string, paths: readonly string[]): string[] {
  const root = resolve(model);
  const out: string[] = [];
  for (const path of paths) {
    let rel = path;
    if (path.startsWith('/')) {
      const r = relative(root, resolve(path));
      if (r === '' || r.startsWith('..') || r.startsWith(sep)) continue;
      rel = r.split(sep).join('/');
    }
    const normalized = normalizeRelative(rel);
    if (normalized === undefined) throw new UsageError('E_USAGE', `ignore path ${JSON.stringify(path)} must name a path inside the model (no ..)`);
    out.push(normalized);
  }
  return out;
}

/** The model-relative name of `output` when it lies inside the model directory `dir`. */
export function signatureInside(dir: string, output: string): string | undefined {
  let root: string;
  try {
    root = realpathSync.native(dir);
  } catch {
    root = resolve(dir);
  }
  let parent: string;
  try {
    parent = realpathSync.native(dirname(resolve(output)));
  } catch {
    parent = dirname(resolve(output));
  }
  const r = relative(root, join(parent, basename(output)));
  if (r === '' || r.startsWith('..') || r.startsWith(sep)) return undefined;
  return r.split(sep).join('/');
}

/**
 * The default bundle path for a model: `<file>.sig` for a single file, `<dir>/model.sig` for a
 * directory. @throws IoError when `single` is not given and the model cannot be read
 */
export function defaultSignaturePath(dir: string, single: boolean = isSingleFile(dir)): string {
  return single ? `${dir.replace(/\/+$/, '')}.sig` : join(dir, DEFAULT_SIGNATURE_NAME);
}

/**
 * What listing a model leaves out, for signing and for verifying alike, in this order and
 * without repeats: the caller's ignore paths (model-relative), the git paths unless
 * `ignoreGitPaths` is false, `extra` (a verifier passes the signed Statement's ignore paths),
 * and the signature `signature` when it lies inside a model directory.
 * @throws UsageError E_USAGE for an empty ignore path or one with `..`
 */
export function modelIgnores(
  dir: string,
  options: { readonly ignorePaths?: readonly string[] | undefined; readonly ignoreGitPaths?: boolean | undefined },
  single: boolean,
  signature: string,
  extra: readonly string[] = [],
): string[] {
  const ignore = new Set<string>(modelRelativeIgnores(dir, options.ignorePaths ?? []));
  if (options.ignoreGitPaths ?? true) for (const p of DEFAULT_GIT_IGNORES) ignore.add(p);
  for (const p of extra) ignore.add(p);
  if (!single) {
    const inside = signatureInside(dir, signature);
    if (inside !== undefined) ignore.add(inside);
  }
  return [...ignore];
}

/**
 * Signs the model at `options.dir` and writes the bundle.
 * @throws ModelError E_MODEL_EMPTY (no file after the ignores); IoError (E_NOT_REGULAR_FILE for
 *   a symlink without allowSymlinks, a FIFO, a socket or a device; E_IO; E_LIMIT); FormatError
 *   E_ARTIFACT_NAME (a name that is not UTF-8); UsageError (a bad ignore path)
 */
export async function signModel(options: SignModelOptions): Promise<SignedModel> {
  const { dir, key } = options;
  const allowSymlinks = options.allowSymlinks ?? false;
  const single = isSingleFile(dir);
  const output = options.output ?? defaultSignaturePath(dir, single);
  const ignorePaths = modelIgnores(dir, options, single, output);
  const listing = listModel(dir, { ignore: ignorePaths, allowSymlinks });
  const first = listing.irregular[0];
  if (first !== undefined) {
    const more = listing.irregular.length > 1 ? ` (and ${listing.irregular.length - 1} more)` : '';
    throw new IoError('E_NOT_REGULAR_FILE', `${dir}: ${first.name} is ${first.what}; refusing to sign${more}`, {
      context: { file: first.name },
      details: listing.irregular.map((p) => `${p.name}: ${p.what}`),
    });
  }
  if (listing.files.length === 0) throw new ModelError('E_MODEL_EMPTY', `${dir}: no file to sign (after the ignore paths ${ignorePaths.join(', ') || 'none'})`, { context: { file: dir } });

  const digests = await hashModelFiles(listing.files, options.threads);
  const resources: Resource[] = [];
  for (const i of indicesByCodePoints(listing.files.map((f) => f.name))) {
    const file = listing.files[i]!;
    const digest = digests[i];
    if (digest === undefined) throw new IoError('E_NOT_REGULAR_FILE', `${dir}: ${file.name} stopped being a regular file while it was hashed`, { context: { file: file.name } });
    resources.push({ name: file.name, algorithm: 'sha256', digest });
  }
  const serialization: Serialization = {
    method: 'files',
    hashType: 'sha256',
    allowSymlinks,
    ignorePaths: listing.single ? undefined : sortedUnique(ignorePaths),
    shardSize: undefined,
  };
  const modelName = basename(realpathOr(dir));
  const payload = statementBytes({ modelName, resources, serialization });
  const signature = key.sign(pae(PAYLOAD_TYPE, payload));
  const material: WrittenMaterial =
    key.certificates === undefined ? { method: 'key', hint: keyHint(key.publicKey) } : { method: 'certificate', chain: key.certificates };
  const bundle = bundleText(material, payload, signature);
  if (options.write ?? true) writeFileAtomicSync(output, bundle);
  return { output, bundle, payload, modelName, rootDigest: rootDigest(resources), resources, serialization };
}

function sortedUnique(paths: readonly string[]): string[] {
  const unique = [...new Set(paths)];
  return indicesByCodePoints(unique).map((i) => unique[i]!);
}

function realpathOr(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    throw new InternalError('E_INTERNAL', `${path}: vanished while it was signed`);
  }
}

import { lstatSync, readdirSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { createHashBuffers, hashFile } from '../crypto/hash-file.js';
import { IoError, UsageError, ioError } from '../errors.js';
import { artifactNameProblem } from '../model/names.js';
import { serializeImageManifest, sha256Digest, type Descriptor } from './manifest.js';
import { MODEL_ARTIFACT, MODEL_CONFIG, MODEL_FILEPATH, modelLayerType } from './media-types.js';

/**
 * A model directory packed in the CNCF ModelPack format (model-spec v1): one uncompressed
 * layer per file, typed by what the file is (weights, weight configuration, documentation,
 * code, dataset), its path in the `org.cncf.model.filepath` annotation. A layer's digest is the
 * SHA-256 of the file's bytes, which is the file's digest in an OpenSSF Model Signing
 * signature, so the registry's content addressing and the signature name the same bytes.
 *
 * The packing is deterministic: layers in path order, a config holding only the layer digests,
 * no timestamps. The same files give the same manifest digest, so pushing them again is a
 * no-op and a version tag can be compared by digest.
 */

/** Caps on what one model may hold. */
export const MAX_MODEL_FILES = 100_000;

export interface ModelFile {
  /** The path inside the model, `/`-separated (the layer's `org.cncf.model.filepath`). */
  readonly path: string;
  readonly absolute: string;
  readonly size: number;
  readonly digest: string;
  readonly mediaType: string;
}

export interface PackedModel {
  readonly files: readonly ModelFile[];
  readonly config: Uint8Array;
  readonly configDescriptor: Descriptor;
  readonly manifest: Uint8Array;
  readonly digest: string;
}

export interface ListOptions {
  /** Paths inside the model to leave out: a file, or a directory and everything under it. */
  readonly ignore?: readonly string[];
  /** Absolute paths to leave out (the signature file when it sits inside the model). */
  readonly excludeAbsolute?: readonly string[];
}

/**
 * The regular files under `dir`, by path inside the model, in byte order. Symbolic links,
 * FIFOs, sockets and devices are refused: a model is files, and a link could point anywhere.
 * @throws UsageError E_USAGE when `dir` is not a directory
 * @throws IoError E_NOT_REGULAR_FILE, E_IO, E_LIMIT
 * @throws FormatError-like IoError E_IO for a path that cannot be a layer path
 */
export function listModelFiles(dir: string, options: ListOptions = {}): { path: string; absolute: string }[] {
  const root = resolve(dir);
  let stat;
  try {
    stat = lstatSync(root);
  } catch (error) {
    throw ioError(dir, error);
  }
  if (!stat.isDirectory()) throw new UsageError('E_USAGE', `${dir}: the model must be a directory (of the files to push)`);
  const ignore = (options.ignore ?? []).map((p) => p.replace(/\/+$/, ''));
  const excluded = new Set((options.excludeAbsolute ?? []).map((p) => resolve(p)));
  const found: { path: string; absolute: string }[] = [];
  const walk = (absoluteDir: string): void => {
    let entries;
    try {
      entries = readdirSync(absoluteDir, { withFileTypes: true });
    } catch (error) {
      throw ioError(absoluteDir, error);
    }
    for (const entry of entries) {
      const absolute = join(absoluteDir, entry.name);
      const path = relative(root, absolute).split(sep).join('/');
      if (excluded.has(absolute) || ignore.some((p) => path === p || path.startsWith(`${p}/`))) continue;
      const problem = artifactNameProblem(path);
      if (problem !== undefined) throw new IoError('E_IO', `${absolute}: the path ${JSON.stringify(path)} ${problem}`, { context: { file: absolute } });
      if (entry.isDirectory()) walk(absolute);
      else if (entry.isFile()) {
        found.push({ path, absolute });
        if (found.length > MAX_MODEL_FILES) throw new IoError('E_LIMIT', `${dir}: more than ${MAX_MODEL_FILES} files`);
      } else {
        const what = entry.isSymbolicLink() ? 'a symbolic link' : 'not a regular file';
        throw new IoError('E_NOT_REGULAR_FILE', `${absolute}: is ${what}; a model holds regular files only`, { context: { file: absolute } });
      }
    }
  };
  walk(root);
  return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Hashes the listed files (SHA-256, one read each) and types them.
 * @throws IoError E_IO, E_NOT_REGULAR_FILE (a file replaced by a link since it was listed)
 */
export async function hashModelFiles(files: readonly { path: string; absolute: string }[]): Promise<ModelFile[]> {
  const buffers = createHashBuffers();
  const out: ModelFile[] = [];
  for (const file of files) {
    const digest = (await hashFile(file.absolute, ['sha256'], buffers)).get('sha256')!;
    const size = lstatSync(file.absolute).size;
    out.push({ path: file.path, absolute: file.absolute, size, digest: `sha256:${digest}`, mediaType: modelLayerType(file.path) });
  }
  return out;
}

/** The ModelPack config and manifest for hashed files. */
export function packModel(files: readonly ModelFile[]): PackedModel {
  const config = Buffer.from(
    JSON.stringify({ descriptor: {}, modelfs: { type: 'layers', diffIds: files.map((f) => f.digest) }, config: {} }),
    'utf8',
  );
  const configDescriptor: Descriptor = { mediaType: MODEL_CONFIG, digest: sha256Digest(config), size: config.length };
  const manifest = serializeImageManifest({
    artifactType: MODEL_ARTIFACT,
    config: configDescriptor,
    layers: files.map((f) => ({ mediaType: f.mediaType, digest: f.digest, size: f.size, annotations: { [MODEL_FILEPATH]: f.path } })),
  });
  return { files, config, configDescriptor, manifest, digest: sha256Digest(manifest) };
}

import { closeSync, constants, mkdirSync, openSync, writeSync, writev } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseJson } from '../canonical/parse.js';
import { getOwn, isJsonObject } from '../canonical/json.js';
import { GateError, InTotoError, RegistryError, ioError } from '../errors.js';
import { LIMITS } from '../io/files.js';
import { artifactNameProblem, stepNameProblem } from '../model/names.js';
import { MAX_BUNDLE_BYTES } from '../oci/bundle-info.js';
import type { RegistryClient } from '../oci/client.js';
import { parseImageManifest, type Descriptor } from '../oci/manifest.js';
import {
  BUNDLE_PREDICATE_TYPE,
  IMAGE_TITLE,
  INTOTO_LAYOUT,
  INTOTO_LINK,
  MODEL_ARTIFACT,
  MODEL_CONFIG,
  MODEL_FILEPATH,
  MODEL_LAYER_TYPES,
  OCI_MANIFEST,
  OMS_PREDICATE,
  SIGSTORE_BUNDLE,
} from '../oci/media-types.js';
import { MAX_MODEL_FILES } from '../oci/modelpack.js';
import { listReferrers } from '../oci/referrers.js';
import { FileSinkWorker } from './file-sink.js';

/**
 * The gate's registry side: what the reference resolves to, whether the manifest is a model we
 * can materialise safely, every layer downloaded into the private workspace and checked while
 * it streams, and the attachments (signatures, in-toto links and layouts) fetched by digest.
 */

export interface ModelLayer {
  readonly path: string;
  readonly descriptor: Descriptor;
}

export interface ResolvedModel {
  readonly digest: string;
  readonly manifest: Uint8Array;
  readonly layers: readonly ModelLayer[];
  readonly config: Descriptor;
}

export interface Attachments {
  /** Sigstore bundles whose predicate is (or may be) OMS, by name, written into `<meta>/signatures/`. */
  readonly signatures: { readonly name: string; readonly path: string }[];
  /** In-toto links by name, written into `<meta>/links/`. */
  readonly links: string[];
  /** In-toto layouts: name → path in `<meta>/layouts/`. */
  readonly layouts: Map<string, string>;
  readonly ignored: string[];
}

/** Where each kind of attachment is written in the work directory's meta directory. */
export const ATTACHMENT_DIRS = ['signatures', 'links', 'layouts'] as const;

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/**
 * Layers downloaded at once. Four, not docker's three: a 1 GiB model of four shards otherwise
 * ends with one shard downloading alone (0.4 to 0.6 s at one connection's speed), while the
 * hashing thread, the pace-setter, has room for more.
 */
const DOWNLOAD_CONCURRENCY = 4;
const WORKER_THRESHOLD_BYTES = 32 * 1024 * 1024;
/** Blobs from this size on try the direct download (a socket of its own, the hashing thread). */
const DIRECT_MIN_BYTES = 16 * 1024 * 1024;

/**
 * Reads and checks a model manifest: ModelPack, raw layers only, every file path safe and
 * unique, no file that is also a directory of another.
 * @throws RegistryError E_MANIFEST; GateError E_MODEL_FILES
 */
export function readModelManifest(bytes: Uint8Array, digest: string, where: string): ResolvedModel {
  const manifest = parseImageManifest(bytes, where);
  if (manifest.artifactType !== MODEL_ARTIFACT) {
    throw new RegistryError('E_MANIFEST', `${where}: artifactType ${JSON.stringify(manifest.artifactType)} is not a ModelPack model (${MODEL_ARTIFACT})`);
  }
  if (manifest.config.mediaType !== MODEL_CONFIG) throw new RegistryError('E_MANIFEST', `${where}: the config is ${manifest.config.mediaType}, not ${MODEL_CONFIG}`);
  if (manifest.layers.length > MAX_MODEL_FILES) throw new RegistryError('E_MANIFEST', `${where}: more than ${MAX_MODEL_FILES} layers`);
  const paths = new Set<string>();
  const layers: ModelLayer[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    if (!MODEL_LAYER_TYPES.includes(layer.mediaType)) {
      throw new RegistryError('E_MANIFEST', `${where}: layer ${i} is ${layer.mediaType}; only uncompressed one-file layers (ModelPack .raw types) are materialised`);
    }
    const path = layer.annotations?.[MODEL_FILEPATH];
    if (path === undefined) throw new GateError('E_MODEL_FILES', `${where}: layer ${i} (${layer.digest}) has no ${MODEL_FILEPATH} annotation`);
    const problem = artifactNameProblem(path);
    if (problem !== undefined) throw new GateError('E_MODEL_FILES', `${where}: layer ${i}: the file path ${JSON.stringify(path)} ${problem}`, { context: { artifact: path } });
    if (paths.has(path)) throw new GateError('E_MODEL_FILES', `${where}: two layers are the file ${JSON.stringify(path)}`, { context: { artifact: path } });
    paths.add(path);
    layers.push({ path, descriptor: layer });
  }
  for (const path of paths) {
    for (let cut = path.indexOf('/'); cut !== -1; cut = path.indexOf('/', cut + 1)) {
      if (paths.has(path.slice(0, cut))) throw new GateError('E_MODEL_FILES', `${where}: ${JSON.stringify(path.slice(0, cut))} is both a file and the directory of ${JSON.stringify(path)}`);
    }
  }
  return { digest, manifest: bytes, layers, config: manifest.config };
}

/**
 * The config must be ModelPack's and list the layers' digests in order (`modelfs.diffIds`).
 * @throws RegistryError E_MANIFEST, and the download's errors
 */
export async function checkModelConfig(client: RegistryClient, repository: string, model: ResolvedModel): Promise<void> {
  const bytes = await client.fetchBlobBytes(repository, model.config, MAX_CONFIG_BYTES);
  let diffIds: unknown;
  try {
    const config = parseJson(bytes, { source: 'model config' });
    const modelfs = isJsonObject(config) ? getOwn(config, 'modelfs') : undefined;
    diffIds = isJsonObject(modelfs) ? getOwn(modelfs, 'diffIds') : undefined;
  } catch (error) {
    throw new RegistryError('E_MANIFEST', `model config ${model.config.digest}: ${(error as InTotoError).message}`, { cause: error });
  }
  const expected = model.layers.map((l) => l.descriptor.digest);
  if (!Array.isArray(diffIds) || diffIds.length !== expected.length || diffIds.some((d, i) => d !== expected[i])) {
    throw new RegistryError('E_MANIFEST', `model config ${model.config.digest}: modelfs.diffIds do not list the manifest's layers in order`);
  }
}

/**
 * Downloads every layer into `dir` (four at a time), each file created new (O_EXCL, never
 * through a symlink) and checked against its digest and size while it streams. Returns the
 * files' digests by path.
 *
 * A blob of 16 MiB or more from a plain-HTTP registry goes straight from the socket into its
 * file (the client's fetchBlobToFile: read into reused memory, hashed in place); anything else,
 * or when the registry does not answer simply, through the client's regular download, large
 * ones hashed and written on a worker thread.
 * @throws RegistryError E_DIGEST_MISMATCH, E_BLOB_SIZE, ...; IoError E_IO
 */
export async function downloadLayers(client: RegistryClient, repository: string, layers: readonly ModelLayer[], dir: string): Promise<Map<string, string>> {
  let writer: FileSinkWorker | undefined;
  const queue = [...layers];
  const worker = async (): Promise<void> => {
    for (let layer = queue.shift(); layer !== undefined; layer = queue.shift()) {
      const target = join(dir, ...layer.path.split('/'));
      try {
        mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
      } catch (error) {
        throw ioError(target, error, 'cannot create');
      }
      if (layer.descriptor.size >= DIRECT_MIN_BYTES && (await direct(client, repository, layer, target))) continue;
      // A worker thread pays for itself (about 30 ms to start) only on a large download.
      if (layer.descriptor.size >= WORKER_THRESHOLD_BYTES) await downloadThrough((writer ??= new FileSinkWorker()), client, repository, layer, target);
      else await downloadOne(client, repository, layer, target);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(DOWNLOAD_CONCURRENCY, layers.length) }, worker));
  } finally {
    await writer?.close();
  }
  return new Map(layers.map((l) => [l.path, l.descriptor.digest]));
}

/** A download's failure: ours named by the layer's path, anything else as the file that could not be written. */
function layerError(layer: ModelLayer, target: string, error: unknown): Error {
  if (error instanceof InTotoError) return error.withContext(layer.path, { artifact: layer.path });
  return ioError(target, error, 'cannot write');
}

/** The direct download; false when the regular one must do it (nothing was created). */
async function direct(client: RegistryClient, repository: string, layer: ModelLayer, target: string): Promise<boolean> {
  try {
    return (await client.fetchBlobToFile(repository, layer.descriptor, target)) !== false;
  } catch (error) {
    throw layerError(layer, target, error);
  }
}

async function downloadThrough(writer: FileSinkWorker, client: RegistryClient, repository: string, layer: ModelLayer, target: string): Promise<void> {
  try {
    await client.fetchBlobTo(repository, layer.descriptor, writer.sink(target));
  } catch (error) {
    throw layerError(layer, target, error);
  }
}

async function downloadOne(client: RegistryClient, repository: string, layer: ModelLayer, target: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  } catch (error) {
    throw ioError(target, error, 'cannot create');
  }
  try {
    // Writes go to the thread pool, chained in order, at most 4 batches (about 4 MiB) behind
    // the download: the main thread receives and hashes while another core copies into the
    // page cache.
    let chain: Promise<void> = Promise.resolve();
    let behind = 0;
    await client.fetchBlob(repository, layer.descriptor, async (chunks) => {
      if (behind >= 4) await chain;
      behind += 1;
      chain = chain.then(() => writeAll(fd, chunks)).finally(() => void (behind -= 1));
      chain.catch(() => undefined);
    });
    await chain;
  } catch (error) {
    throw layerError(layer, target, error);
  } finally {
    closeSync(fd);
  }
}

/** Writes every byte of `chunks` at the file's position (one writev, then the rest of a short write). */
async function writeAll(fd: number, chunks: readonly Buffer[]): Promise<void> {
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const written = await new Promise<number>((resolve, reject) => writev(fd, chunks, (error, n) => (error ? reject(error) : resolve(n))));
  if (written < bytes) {
    const rest = Buffer.concat(chunks).subarray(written);
    for (let offset = 0; offset < rest.length; ) offset += writeSync(fd, rest, offset);
  }
}

/**
 * The model's referrers that the gate uses, each manifest fetched by its digest and required to
 * name this model as its subject (a fallback index is just a tag anyone with push rights can
 * write): OMS signature bundles, and in-toto links and layouts, written into `metaDir`'s
 * `signatures/`, `links/` and `layouts/` by their titles (single safe file names; a second
 * attachment of one kind under the same title is ignored, and said so).
 * @throws RegistryError; IoError E_IO when the work directory cannot be written
 */
export async function fetchAttachments(client: RegistryClient, repository: string, subject: string, metaDir: string, wantInToto: boolean): Promise<Attachments> {
  const { descriptors } = await listReferrers(client, repository, subject);
  const result: Attachments = { signatures: [], links: [], layouts: new Map(), ignored: [] };
  for (const dir of ATTACHMENT_DIRS) {
    try {
      mkdirSync(join(metaDir, dir), { mode: 0o700 });
    } catch (error) {
      throw ioError(join(metaDir, dir), error, 'cannot create');
    }
  }
  const seen = { signatures: new Set<string>(), links: new Set<string>(), layouts: new Set<string>() };
  for (const entry of descriptors) {
    const isBundle = entry.artifactType === SIGSTORE_BUNDLE && (entry.annotations?.[BUNDLE_PREDICATE_TYPE] ?? OMS_PREDICATE) === OMS_PREDICATE;
    const isInToto = entry.artifactType === INTOTO_LINK || entry.artifactType === INTOTO_LAYOUT;
    if (!isBundle && !(isInToto && wantInToto)) continue;
    if (entry.mediaType !== OCI_MANIFEST) continue;
    const fetched = await client.getManifest(repository, entry.digest, [OCI_MANIFEST]);
    const manifest = parseImageManifest(fetched.bytes, `referrer ${entry.digest}`);
    const layer = manifest.layers[0];
    if (manifest.subject?.digest !== subject || manifest.artifactType !== entry.artifactType || manifest.layers.length !== 1 || layer === undefined) {
      result.ignored.push(`${entry.digest}: not a one-layer ${entry.artifactType} whose subject is this model`);
      continue;
    }
    const title = layer.annotations?.[IMAGE_TITLE] ?? entry.digest.replace(':', '-');
    if (stepNameProblem(title) !== undefined || title.startsWith('.')) {
      result.ignored.push(`${entry.digest}: title ${JSON.stringify(title)} is not a plain file name`);
      continue;
    }
    const kind = isBundle ? 'signatures' : entry.artifactType === INTOTO_LINK ? 'links' : 'layouts';
    if (seen[kind].has(title)) {
      result.ignored.push(`${entry.digest}: a second attachment named ${title}`);
      continue;
    }
    seen[kind].add(title);
    const bytes = await client.fetchBlobBytes(repository, layer, isBundle ? MAX_BUNDLE_BYTES : LIMITS.metadataBytes);
    const path = join(metaDir, kind, title);
    writeNew(path, bytes);
    if (kind === 'signatures') result.signatures.push({ name: title, path });
    else if (kind === 'links') result.links.push(title);
    else result.layouts.set(title, path);
  }
  return result;
}

function writeNew(path: string, bytes: Uint8Array): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'wx', 0o600);
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
  } catch (error) {
    throw ioError(path, error, 'cannot write');
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

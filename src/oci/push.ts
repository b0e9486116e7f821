import { createHash } from 'node:crypto';
import { createReadStream, lstatSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { GateError, RegistryError, UsageError, ioError } from '../errors.js';
import { LIMITS, readRegularFileSync } from '../io/files.js';
import { MAX_BUNDLE_BYTES, summarizeBundle, type BundleSummary } from './bundle-info.js';
import type { RegistryClient } from './client.js';
import { serializeImageManifest, type Descriptor } from './manifest.js';
import {
  ATTACHED_FILE,
  BUNDLE_CONTENT,
  BUNDLE_PREDICATE_TYPE,
  DSSE_ENVELOPE,
  IMAGE_TITLE,
  INTOTO_LAYOUT,
  INTOTO_LINK,
  MODEL_ARTIFACT,
  OCI_EMPTY,
  OCI_EMPTY_BYTES,
  OCI_EMPTY_DIGEST,
  OCI_MANIFEST,
  SIGSTORE_BUNDLE,
  modelLayerType,
} from './media-types.js';
import { hashModelFiles, listModelFiles, packModel, type ModelFile } from './modelpack.js';
import type { Reference } from './reference.js';
import { attachReferrer } from './referrers.js';

/**
 * `intoto push`: a model directory to a registry as an immutable version.
 *
 *  1. read the signature bundle (when given) and the files it lists; pack the model's files
 *     minus the signature itself and the paths the signer ignored;
 *  2. build the ModelPack manifest (deterministic: same files, same digest) from the files'
 *     digests: with a signature, the digests it lists (a file it does not list, or one it lists
 *     and the model lacks, fails here); without one, each file hashed first;
 *  3. refuse a tag that names another digest (E_TAG_EXISTS): a version never moves;
 *  4. upload the blobs the registry lacks, three at a time; a signed file is hashed while it is
 *     uploaded (and the registry checks the digest too), one the registry has is hashed
 *     locally; a file whose bytes are not the signed ones fails the push (E_MODEL_FILES) before
 *     the manifest is written, so the tag never names anything but the signed files;
 *  5. push the manifest under the tag; attach the signature, then each `--attach` file, as
 *     referrers of the model manifest.
 * Pushing the same files and attachments again uploads nothing and changes nothing.
 */

export interface PushOptions {
  readonly modelDir: string;
  /** Where to: must name a tag. */
  readonly target: Reference;
  readonly signature?: string | undefined;
  readonly attach?: readonly string[];
  readonly onEvent?: (line: string) => void;
}

export interface PushResult {
  readonly repository: string;
  readonly digest: string;
  readonly files: number;
  readonly uploadedBlobs: number;
  readonly uploadedBytes: number;
  /** False when the tag already named this digest (nothing was written to it). */
  readonly tagWritten: boolean;
  readonly referrers: readonly Descriptor[];
}

/** One `--attach` file, typed by what it is. */
interface Attachment {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly artifactType: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * Pushes a model. See the module comment for the steps.
 * @throws UsageError E_USAGE (no tag, duplicate attachment names, not a directory)
 * @throws GateError E_MODEL_FILES (the files differ from the signed ones)
 * @throws RegistryError E_TAG_EXISTS, and any registry failure
 * @throws IoError, ParseError, CryptoError for unreadable or malformed inputs
 */
export async function pushModel(client: RegistryClient, options: PushOptions): Promise<PushResult> {
  const { target } = options;
  if (target.tag === undefined || target.digest !== undefined) throw new UsageError('E_USAGE', 'push needs HOST/REPO:TAG (a version tag, and no @digest)');
  const repository = target.repository;
  const say = options.onEvent ?? (() => undefined);

  const signature = options.signature === undefined ? undefined : readSignature(options.signature);
  const attachments = (options.attach ?? []).map(readAttachment);
  const names = new Set<string>();
  for (const a of attachments) {
    if (names.has(a.name)) throw new UsageError('E_USAGE', `two attachments are named ${a.name}; attachments are found by file name`);
    names.add(a.name);
  }

  const listed = listModelFiles(options.modelDir, {
    ignore: signature?.summary.oms?.ignorePaths ?? [],
    excludeAbsolute: options.signature === undefined ? [] : [resolve(options.signature)],
  });
  const oms = signature?.summary.oms;
  // With a signature, its digests name the blobs (each file is checked against its digest while
  // it is uploaded, or hashed when the registry already has it); without one, hash first.
  const files = oms === undefined ? await hashModelFiles(listed) : signedFiles(listed, oms.resources, options.signature!);
  const packed = packModel(files);
  say(`packed ${files.length} file(s) as ${repository}@${packed.digest}`);

  const existing = await client.resolveTag(repository, target.tag);
  if (existing !== undefined && existing !== packed.digest) {
    throw new RegistryError('E_TAG_EXISTS', `${repository}:${target.tag} already names ${existing}; this model is ${packed.digest}. A version tag never moves: push under a new tag`);
  }

  let uploadedBlobs = 0;
  let uploadedBytes = 0;
  const count = (uploaded: boolean, size: number): void => {
    if (uploaded) {
      uploadedBlobs += 1;
      uploadedBytes += size;
    }
  };
  count((await client.pushBytes(repository, packed.config)).uploaded, packed.config.length);
  const problems: string[] = [];
  const queue = [...files];
  const uploader = async (): Promise<void> => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const { uploaded, problem } = await pushFile(client, repository, file, oms !== undefined);
      if (problem !== undefined) problems.push(problem);
      if (uploaded) say(`uploaded ${file.path} (${file.size} bytes)`);
      count(uploaded, file.size);
    }
  };
  await Promise.all(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, files.length) }, uploader));
  if (problems.length > 0) throw filesDiffer(problems.sort(), options.signature!);
  if (existing === undefined) await client.putManifest(repository, target.tag, packed.manifest, OCI_MANIFEST);
  const subject: Descriptor = { mediaType: OCI_MANIFEST, digest: packed.digest, size: packed.manifest.length, artifactType: MODEL_ARTIFACT };

  const referrers: Descriptor[] = [];
  const toAttach: Attachment[] = [...(signature === undefined ? [] : [signature.attachment]), ...attachments];
  if (toAttach.length > 0) count((await client.pushBytes(repository, OCI_EMPTY_BYTES)).uploaded, OCI_EMPTY_BYTES.length);
  for (const attachment of toAttach) {
    const blob = await client.pushBytes(repository, attachment.bytes);
    count(blob.uploaded, blob.size);
    const title = signature?.attachment === attachment ? `${blob.digest.replace(':', '-')}.sigstore.json` : attachment.name;
    const manifest = serializeImageManifest({
      artifactType: attachment.artifactType,
      config: { mediaType: OCI_EMPTY, digest: OCI_EMPTY_DIGEST, size: OCI_EMPTY_BYTES.length },
      layers: [{ mediaType: attachment.artifactType, digest: blob.digest, size: blob.size, annotations: { [IMAGE_TITLE]: title } }],
      subject,
      annotations: attachment.annotations,
    });
    referrers.push(await attachReferrer(client, repository, packed.digest, manifest, { artifactType: attachment.artifactType, annotations: attachment.annotations }));
    say(`attached ${attachment.name} (${attachment.artifactType})`);
  }
  return { repository, digest: packed.digest, files: files.length, uploadedBlobs, uploadedBytes, tagWritten: existing === undefined, referrers };
}

/** Blobs uploaded at once: the registry hashes and stores each upload on its own core. */
const UPLOAD_CONCURRENCY = 3;

/**
 * Uploads one file unless the registry has it. A signed file's bytes are hashed as they are
 * read for the upload (the digest it is pushed under is the signed one, which the registry
 * checks as well) or, when the registry already has the blob, hashed locally: either way the
 * file must be the signed bytes. Returns whether bytes were sent, and what differs.
 * @throws RegistryError for any registry failure but the registry's own digest refusal
 */
async function pushFile(client: RegistryClient, repository: string, file: ModelFile, signed: boolean): Promise<{ uploaded: boolean; problem: string | undefined }> {
  const hashing = signed ? hashingReader(file) : undefined;
  let uploaded: boolean;
  try {
    uploaded = await client.pushBlob(repository, { digest: file.digest, size: file.size, open: hashing?.open ?? ((start, end) => readRange(file, start, end)) });
  } catch (error) {
    // The registry computed another digest for the bytes sent: the file is not the signed one.
    if (!(signed && error instanceof RegistryError && error.registryCode === 'DIGEST_INVALID')) throw error;
    return { uploaded: false, problem: changed(file, await localDigest(file)) };
  }
  if (!signed) return { uploaded, problem: undefined };
  const actual = (uploaded ? hashing?.digest() : undefined) ?? (await localDigest(file));
  return { uploaded, problem: actual === file.digest ? undefined : changed(file, actual) };
}

function readRange(file: ModelFile, start: number, end: number): AsyncIterable<Uint8Array> {
  return createReadStream(file.absolute, { start, end: end - 1, highWaterMark: 1 << 20 });
}

/**
 * Reads for an upload and hashes what it reads, in order: a range sent again (after an
 * authentication challenge) is not hashed twice. `digest()` is undefined until every byte was
 * read exactly once in order.
 */
function hashingReader(file: ModelFile): { open: (start: number, end: number) => AsyncIterable<Uint8Array>; digest: () => string | undefined } {
  const hash = createHash('sha256');
  let hashed = 0;
  return {
    open: (start, end) =>
      (async function* read(): AsyncIterable<Uint8Array> {
        let position = start;
        for await (const chunk of readRange(file, start, end) as AsyncIterable<Buffer>) {
          const from = Math.max(0, hashed - position);
          if (position + chunk.length > hashed && position <= hashed) {
            hash.update(chunk.subarray(from));
            hashed = position + chunk.length;
          }
          position += chunk.length;
          yield chunk;
        }
      })(),
    digest: () => (hashed === file.size ? `sha256:${hash.digest('hex')}` : undefined),
  };
}

async function localDigest(file: ModelFile): Promise<string> {
  return (await hashModelFiles([file]))[0]!.digest;
}

function changed(file: ModelFile, actual: string): string {
  return `${file.path}: changed since it was signed (sha256 ${actual.slice(7, 19)}..., signed ${file.digest.slice(7, 19)}...)`;
}

/** @returns GateError E_MODEL_FILES listing `problems` */
function filesDiffer(problems: readonly string[], signaturePath: string): GateError {
  return new GateError('E_MODEL_FILES', `the model's files differ from those ${signaturePath} signs: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; and ${problems.length - 3} more` : ''}`, {
    details: [...problems],
    context: { file: signaturePath },
  });
}

function readSignature(path: string): { summary: BundleSummary; attachment: Attachment } {
  const bytes = readRegularFileSync(path, { maxBytes: MAX_BUNDLE_BYTES, what: 'signature bundle' });
  const summary = summarizeBundle(bytes);
  return { summary, attachment: { name: basename(path), bytes, artifactType: SIGSTORE_BUNDLE, annotations: bundleAnnotations(summary) } };
}

/** A bundle's annotations on its referrer: what it holds, and the predicate type when it has one. */
function bundleAnnotations(summary: BundleSummary): Record<string, string> {
  return { [BUNDLE_CONTENT]: summary.content, ...(summary.predicateType === undefined ? {} : { [BUNDLE_PREDICATE_TYPE]: summary.predicateType }) };
}

/** Reads an `--attach` file and decides what it is: an in-toto link or layout, a bundle, a DSSE envelope, or a plain file. */
function readAttachment(path: string): Attachment {
  const bytes = readRegularFileSync(path, { maxBytes: LIMITS.metadataBytes, what: 'attachment' });
  const name = basename(path);
  const title = { [IMAGE_TITLE]: name };
  if (name.endsWith('.link')) return { name, bytes, artifactType: INTOTO_LINK, annotations: title };
  if (name.endsWith('.layout')) return { name, bytes, artifactType: INTOTO_LAYOUT, annotations: title };
  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    json = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  if (json !== undefined && typeof json['mediaType'] === 'string' && json['mediaType'].includes('sigstore.bundle')) {
    const summary = summarizeBundle(bytes);
    return {
      name,
      bytes,
      artifactType: SIGSTORE_BUNDLE,
      annotations: { ...title, ...bundleAnnotations(summary) },
    };
  }
  if (json !== undefined && typeof json['payloadType'] === 'string' && Array.isArray(json['signatures'])) return { name, bytes, artifactType: DSSE_ENVELOPE, annotations: title };
  return { name, bytes, artifactType: ATTACHED_FILE, annotations: title };
}

/**
 * The files as the signature lists them: each listed file must be signed (a plain SHA-256 of
 * the file) and each signed file listed; the digest is the signed one (the bytes are checked
 * against it when they are uploaded or hashed).
 * @throws GateError E_MODEL_FILES; IoError when a file cannot be read
 */
function signedFiles(listed: readonly { path: string; absolute: string }[], resources: readonly { name: string; algorithm: string; digest: string }[], signaturePath: string): ModelFile[] {
  const signed = new Map(resources.map((r) => [r.name, r]));
  const problems: string[] = [];
  const files: ModelFile[] = [];
  for (const file of listed) {
    const resource = signed.get(file.path);
    signed.delete(file.path);
    if (resource === undefined) problems.push(`${file.path}: not in the signature`);
    else if (resource.algorithm !== 'sha256' || !/^[0-9a-f]{64}$/.test(resource.digest)) problems.push(`${file.path}: signed with ${resource.algorithm}, not a plain sha256 of the file (sign with model_signing's files serialization)`);
    else {
      let size: number;
      try {
        size = lstatSync(file.absolute).size;
      } catch (error) {
        throw ioError(file.absolute, error);
      }
      files.push({ path: file.path, absolute: file.absolute, size, digest: `sha256:${resource.digest}`, mediaType: modelLayerType(file.path) });
    }
  }
  for (const name of signed.keys()) problems.push(`${name}: signed but missing`);
  if (problems.length > 0) throw filesDiffer(problems, signaturePath);
  return files;
}

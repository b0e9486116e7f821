import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RunError, asInTotoError, isNodeError } from '../errors.js';
import { loadSigningKeyFile } from '../crypto/keyfiles.js';
import type { KeyType } from '../crypto/keys.js';
import type { SigningKey } from '../crypto/signatures.js';
import type { RecordableHashAlgorithm } from '../model/artifacts.js';
import { verifiedPayload, type Envelope } from '../model/envelope.js';
import { linkFileName, linkFromJson, makeLink, unfinishedLinkFileName, type Link } from '../model/link.js';
import { readEnvelopeFile } from '../model/metadata.js';
import { recordArtifacts } from './record.js';
import { assertStepName, checkDirectory, recordOptions, signingKeyAs, stepPlaces, writeLinkFile, type SignAs } from './step-files.js';

/**
 * `intoto-record start|stop`, for steps that are not one command (a manual edit, a review):
 * start records the materials into a signed `.<name>.<keyid8>.link-unfinished` in the working
 * directory; stop checks that file's signature with the same key, adds the products, signs
 * again, writes `<name>.<keyid8>.link` and removes the unfinished file. The files are the
 * reference's (Metablock by default), so a recording started by in-toto-record can be stopped
 * here and the other way round.
 */

interface RecordCommon extends SignAs {
  readonly name: string;
  readonly keyPath: string;
  readonly password?: string;
  readonly keyType?: KeyType;
  /** Artifacts are found and named relative to it (default: cwd). */
  readonly basePath?: string;
  /** Where the unfinished link lives, and what relative paths are resolved against (default: process.cwd()). */
  readonly cwd?: string;
  readonly excludePatterns?: readonly string[];
  readonly lstripPaths?: readonly string[];
  readonly algorithms?: readonly RecordableHashAlgorithm[];
  /** Write DSSE instead of a Metablock (stop also keeps DSSE when start wrote it). */
  readonly useDsse?: boolean;
  readonly warn: (message: string) => void;
  readonly info?: (message: string) => void;
}

/** `record start`: the materials to record. */
export interface RecordStartOptions extends RecordCommon {
  readonly materials: readonly string[];
}

/** `record stop`: the products to add, and where the link goes. */
export interface RecordStopOptions extends RecordCommon {
  readonly products: readonly string[];
  /** Where the finished link is written (default: cwd). */
  readonly metadataDirectory?: string;
}

/** The link as written (unfinished after start, finished after stop). */
export interface RecordResult {
  readonly link: Link;
  /** The unfinished link (start) or the finished one (stop). */
  readonly linkPath: string;
  readonly keyid: string;
}

function loadKey(options: RecordCommon, cwd: string): SigningKey {
  const path = resolve(cwd, options.keyPath);
  const key = loadSigningKeyFile(path, {
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(options.keyType === undefined ? {} : { expectedType: options.keyType }),
  });
  return signingKeyAs(key, options, path);
}

/**
 * Records the materials and writes the signed, unfinished link in the working directory.
 * No command runs here, so the key is loaded first (a wrong password fails before hashing).
 * @throws FormatError E_STEP_NAME, E_ARTIFACT_NAME; CryptoError E_KEY_*; IoError E_IO, E_LIMIT;
 *   RunError E_PATH_OUTSIDE_BASE, E_LSTRIP; UsageError E_USAGE
 */
export async function recordStart(options: RecordStartOptions): Promise<RecordResult> {
  assertStepName(options.name);
  const places = stepPlaces(options);
  const key = loadKey(options, places.cwd);
  options.info?.(`recording materials of '${options.name}'...`);
  const materials = await recordArtifacts(options.materials, recordOptions(places, options));
  const link = makeLink({ name: options.name, command: [], materials, products: new Map(), byproducts: {}, environment: {} });
  const linkPath = writeLinkFile(places.cwd, unfinishedLinkFileName(options.name, key.keyid), link, [key], options.useDsse ?? false);
  options.info?.(`wrote ${linkPath}; finish with 'intoto-record stop -n ${options.name} -k ${options.keyPath} -p ...'`);
  return { link, linkPath, keyid: key.keyid };
}

/**
 * Finishes a recording: the unfinished link must exist in the working directory, be signed by
 * this key and name this step; its products are replaced by what is on disk now.
 * @throws RunError E_UNFINISHED_LINK (missing, not signed by this key, another step's name);
 *   ParseError, FormatError, CryptoError E_ENVELOPE for a malformed unfinished link; whatever
 *   recording and key loading throw
 */
export async function recordStop(options: RecordStopOptions): Promise<RecordResult> {
  assertStepName(options.name);
  const places = stepPlaces(options);
  checkDirectory(places.metadataDirectory, 'metadata directory');
  const key = loadKey(options, places.cwd);
  const unfinishedPath = join(places.cwd, unfinishedLinkFileName(options.name, key.keyid));
  const envelope = readUnfinished(unfinishedPath, options.name);
  const payload = verifiedPayload(envelope, key.public);
  if (payload === undefined) {
    throw new RunError('E_UNFINISHED_LINK', `${unfinishedPath}: not signed by key ${key.keyid} (stop with the key that started the recording)`, {
      context: { file: unfinishedPath, step: options.name, keyid: key.keyid },
    });
  }
  const started = linkFromJson(payload, unfinishedPath);
  if (started.name !== options.name) {
    throw new RunError('E_UNFINISHED_LINK', `${unfinishedPath}: records step ${JSON.stringify(started.name)}, not ${JSON.stringify(options.name)}`, {
      context: { file: unfinishedPath, step: options.name },
    });
  }
  options.info?.(`recording products of '${options.name}'...`);
  const products = await recordArtifacts(options.products, recordOptions(places, options));
  const link = makeLink({ ...started, products });
  const useDsse = (options.useDsse ?? false) || envelope.kind === 'dsse';
  const linkPath = writeLinkFile(places.metadataDirectory, linkFileName(options.name, key.keyid), link, [key], useDsse);
  rmSync(unfinishedPath, { force: true });
  options.info?.(`wrote ${linkPath}; removed ${unfinishedPath}`);
  return { link, linkPath, keyid: key.keyid };
}

function readUnfinished(path: string, name: string): Envelope {
  try {
    return readEnvelopeFile(path, { noFollow: true, what: 'unfinished link' });
  } catch (error) {
    const cause = asInTotoError(error);
    if (isNodeError(cause.cause) && cause.cause.code === 'ENOENT') {
      throw new RunError('E_UNFINISHED_LINK', `${path}: no unfinished link for step '${name}' signed by this key here; run 'intoto-record start' first (in this directory, with this key)`, {
        cause,
        context: { file: path, step: name },
      });
    }
    throw cause;
  }
}

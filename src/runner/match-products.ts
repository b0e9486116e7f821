import { resolve } from 'node:path';
import { compareCodePoints } from '../canonical/json.js';
import { FormatError } from '../errors.js';
import { RECORDABLE_HASH_ALGORITHMS, type HashDict, type RecordableHashAlgorithm } from '../model/artifacts.js';
import { unverifiedPayload } from '../model/envelope.js';
import { linkFromJson, type Link } from '../model/link.js';
import { metadataType, readEnvelopeFile } from '../model/metadata.js';
import { recordArtifacts } from './record.js';

/**
 * `intoto-match-products` (in-toto 2.x's in_toto_match_products): does what is on disk match
 * the products a link recorded? Useful before signing off a step someone else ran, or to find
 * what changed since. The link is read WITHOUT checking any signature: the answer is only about
 * the file's contents, never evidence that anyone signed them.
 */

/** The link to compare, and what on disk to compare it with. */
export interface MatchProductsOptions {
  readonly linkPath: string;
  /** Paths to record (default ['.']), relative to the base path. */
  readonly paths?: readonly string[];
  /** Default: the current directory. */
  readonly basePath?: string;
  readonly excludePatterns?: readonly string[];
  readonly lstripPaths?: readonly string[];
  readonly warn: (message: string) => void;
}

/** An artifact in both, with digests that differ (both shown to the user). */
export interface DifferentArtifact {
  readonly name: string;
  readonly inLink: HashDict;
  readonly onDisk: HashDict;
}

/** The differences, each list sorted by name. */
export interface MatchProductsResult {
  readonly link: Link;
  /** Names recorded on disk that the link's products do not have. */
  readonly onlyOnDisk: readonly string[];
  /** Names among the link's products that are not on disk. */
  readonly onlyInLink: readonly string[];
  /** Names in both whose digests differ (or share no algorithm to compare). */
  readonly differ: readonly DifferentArtifact[];
  /** How many artifacts were recorded on disk. */
  readonly onDiskCount: number;
}

/** True when nothing differs. */
export function productsMatch(result: MatchProductsResult): boolean {
  return result.onlyOnDisk.length === 0 && result.onlyInLink.length === 0 && result.differ.length === 0;
}

/**
 * The algorithms to hash the disk with: those the link's products use that we can record
 * (sha256 when the link has no products or none of them).
 */
function algorithmsFor(link: Link): RecordableHashAlgorithm[] {
  const known: readonly string[] = RECORDABLE_HASH_ALGORITHMS;
  const used = new Set<RecordableHashAlgorithm>();
  for (const digests of link.products.values()) {
    for (const algorithm of digests.keys()) if (known.includes(algorithm)) used.add(algorithm as RecordableHashAlgorithm);
  }
  return used.size === 0 ? ['sha256'] : RECORDABLE_HASH_ALGORITHMS.filter((a) => used.has(a));
}

/**
 * Two digest sets agree when they share at least one algorithm and agree on every shared one.
 * (The reference compares whole dicts, so an extra md5 in the link makes it report a
 * difference; here only what both sides have is compared, and nothing in common is a difference.)
 */
function sameDigests(inLink: HashDict, onDisk: HashDict): boolean {
  let shared = 0;
  for (const [algorithm, hex] of onDisk) {
    const other = inLink.get(algorithm);
    if (other === undefined) continue;
    if (other !== hex) return false;
    shared += 1;
  }
  return shared > 0;
}

/**
 * Reads the link (either envelope, signatures NOT checked), records `paths` as intoto-run
 * would, and compares.
 * @throws IoError, ParseError, CryptoError E_ENVELOPE (the link file); FormatError
 *   E_METADATA_TYPE (not a link), E_SCHEMA, E_ARTIFACT_NAME; whatever recording throws
 */
export async function matchProducts(options: MatchProductsOptions): Promise<MatchProductsResult> {
  const envelope = readEnvelopeFile(options.linkPath, { what: 'link' });
  const payload = unverifiedPayload(envelope);
  const type = metadataType(payload);
  if (type !== 'link') {
    throw new FormatError('E_METADATA_TYPE', `${options.linkPath}: is not a link (_type ${JSON.stringify(type ?? null)})`, {
      context: { file: options.linkPath },
    });
  }
  const link = linkFromJson(payload, options.linkPath);
  const onDisk = await recordArtifacts(options.paths ?? ['.'], {
    basePath: resolve(options.basePath ?? '.'),
    ...(options.excludePatterns === undefined ? {} : { excludePatterns: options.excludePatterns }),
    ...(options.lstripPaths === undefined ? {} : { lstripPaths: options.lstripPaths }),
    algorithms: algorithmsFor(link),
    onWarning: options.warn,
  });
  const onlyOnDisk: string[] = [];
  const differ: DifferentArtifact[] = [];
  for (const [name, digests] of onDisk) {
    const inLink = link.products.get(name);
    if (inLink === undefined) onlyOnDisk.push(name);
    else if (!sameDigests(inLink, digests)) differ.push({ name, inLink, onDisk: digests });
  }
  const onlyInLink = [...link.products.keys()].filter((name) => !onDisk.has(name)).sort(compareCodePoints);
  return { link, onlyOnDisk, onlyInLink, differ, onDiskCount: onDisk.size };
}

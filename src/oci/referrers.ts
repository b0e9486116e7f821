import { RegistryError } from '../errors.js';
import { RegistryClient } from './client.js';
import { MAX_MANIFEST_BYTES, parseImageIndex, serializeImageIndex, sha256Digest, type Descriptor } from './manifest.js';
import { OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import { discard, readBounded } from './transport.js';

/**
 * Referrers: artifacts (signatures, attestations) whose manifest names another manifest as its
 * `subject` (distribution spec v1.1, "Listing Referrers"). A registry with the referrers API
 * indexes them itself; for one without it (Debian's distribution 2.8.2 among them) the client
 * keeps the list in an image index under the fallback tag `sha256-<hex of the subject>`
 * ("Referrers Tag Schema"), which is what cosign and oras read too.
 */

/** The fallback tag for a subject digest: `sha256:abc...` → `sha256-abc...`. */
export function fallbackTag(subject: string): string {
  return subject.replace(':', '-');
}

export interface Referrers {
  /** Index entries: each a referrer manifest's descriptor, with its artifactType and annotations. */
  readonly descriptors: readonly Descriptor[];
  /** Where the list came from. */
  readonly source: 'api' | 'tag';
}

/**
 * Every referrer of `subject`: through the referrers API when the registry has it, else through
 * the fallback tag (an absent tag is an empty list). The entries are untrusted pointers; each
 * referrer manifest fetched by its digest is checked against that digest.
 * @throws RegistryError
 */
export async function listReferrers(client: RegistryClient, repository: string, subject: string): Promise<Referrers> {
  const what = `referrers of ${repository}@${subject}`;
  const response = await client.http.request({
    method: 'GET',
    url: `/v2/${repository}/referrers/${subject}`,
    headers: { accept: OCI_INDEX },
    scope: RegistryClient.scopes(repository).pull,
    redirects: 'same-origin',
    accept: [200, 404],
    what: `GET ${what}`,
  });
  const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
  if (response.status === 200 && type === OCI_INDEX) {
    const index = parseImageIndex(await readBounded(response, MAX_MANIFEST_BYTES, what), what);
    return { descriptors: index.manifests, source: 'api' };
  }
  await discard(response);
  const tag = fallbackTag(subject);
  return { descriptors: await readFallbackIndex(client, repository, tag, `${what} (tag ${tag})`), source: 'tag' };
}

/**
 * The descriptors of the fallback tag's index; none when the tag does not exist.
 * @throws RegistryError (E_MANIFEST naming `where` for an index that is not one)
 */
async function readFallbackIndex(client: RegistryClient, repository: string, tag: string, where: string): Promise<readonly Descriptor[]> {
  let fetched;
  try {
    fetched = await client.getManifest(repository, tag, [OCI_INDEX]);
  } catch (error) {
    if (error instanceof RegistryError && error.code === 'E_NOT_FOUND') return [];
    throw error;
  }
  return parseImageIndex(fetched.bytes, where).manifests;
}

/**
 * Pushes a referrer manifest (by digest) and, when the registry did not index its subject
 * itself, adds it to the fallback tag's index (once: a referrer already listed is not added
 * again, so attaching the same thing twice changes nothing). Two clients updating one subject's
 * index at the same moment can lose one entry: the tag schema has no compare-and-swap.
 * @throws RegistryError
 */
export async function attachReferrer(
  client: RegistryClient,
  repository: string,
  subject: string,
  manifest: Uint8Array,
  entry: { readonly artifactType: string; readonly annotations?: Readonly<Record<string, string>> },
): Promise<Descriptor> {
  const digest = sha256Digest(manifest);
  const { subjectProcessed } = await client.putManifest(repository, digest, manifest, OCI_MANIFEST);
  const descriptor: Descriptor = {
    mediaType: OCI_MANIFEST,
    digest,
    size: manifest.length,
    artifactType: entry.artifactType,
    ...(entry.annotations === undefined ? {} : { annotations: entry.annotations }),
  };
  if (subjectProcessed) return descriptor;
  const tag = fallbackTag(subject);
  const existing = await readFallbackIndex(client, repository, tag, `fallback referrers index ${repository}:${tag}`);
  if (existing.some((d) => d.digest === digest)) return descriptor;
  await client.putManifest(repository, tag, serializeImageIndex({ manifests: [...existing, descriptor] }), OCI_INDEX);
  return descriptor;
}

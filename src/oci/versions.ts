import { InTotoError } from '../errors.js';
import { MAX_BUNDLE_BYTES, summarizeBundle, type SignerSummary } from './bundle-info.js';
import type { RegistryClient } from './client.js';
import { parseImageManifest } from './manifest.js';
import { IMAGE_TITLE, OCI_MANIFEST, SIGSTORE_BUNDLE } from './media-types.js';
import { listReferrers } from './referrers.js';

/**
 * `intoto versions`: each version tag of a repository with the digest it names, who claims to
 * have signed it (from the attached bundles' verificationMaterial: unverified, a listing, not a
 * verdict: pull verifies) and what is attached. The fallback referrers tags (`sha256-<hex>`)
 * are bookkeeping, not versions, and are left out.
 */

export interface VersionInfo {
  readonly tag: string;
  readonly digest: string | undefined;
  readonly artifactType: string | undefined;
  readonly signers: readonly SignerSummary[];
  readonly attachments: readonly { readonly artifactType: string; readonly name: string | undefined; readonly digest: string }[];
  /** Why this tag could not be read, when it could not (the listing goes on). */
  readonly error: string | undefined;
}

const FALLBACK_TAG = /^sha256-[a-f0-9]{64}$/;

/** Lists the versions of `repository`, tags in order. @throws RegistryError for the tag list itself */
export async function listVersions(client: RegistryClient, repository: string): Promise<VersionInfo[]> {
  const tags = (await client.listTags(repository)).filter((t) => !FALLBACK_TAG.test(t)).sort();
  const out: VersionInfo[] = [];
  for (const tag of tags) out.push(await describeVersion(client, repository, tag));
  return out;
}

async function describeVersion(client: RegistryClient, repository: string, tag: string): Promise<VersionInfo> {
  let digest: string | undefined;
  let artifactType: string | undefined;
  try {
    const fetched = await client.getManifest(repository, tag);
    digest = fetched.digest;
    if (fetched.mediaType === OCI_MANIFEST || fetched.mediaType === '') artifactType = parseImageManifest(fetched.bytes, `${repository}:${tag}`).artifactType;
    const { descriptors } = await listReferrers(client, repository, digest);
    const signers: SignerSummary[] = [];
    for (const entry of descriptors) {
      if (entry.artifactType !== SIGSTORE_BUNDLE) continue;
      const referrer = parseImageManifest((await client.getManifest(repository, entry.digest, [OCI_MANIFEST])).bytes, `referrer ${entry.digest}`);
      const layer = referrer.layers[0];
      if (layer === undefined || referrer.subject?.digest !== digest) continue;
      try {
        signers.push(summarizeBundle(await client.fetchBlobBytes(repository, layer, MAX_BUNDLE_BYTES)).signer);
      } catch (error) {
        if (!(error instanceof InTotoError) || error.code.startsWith('E_REGISTRY')) throw error;
        signers.push({ kind: 'unknown', keyId: undefined, identity: undefined });
      }
    }
    const attachments = descriptors.map((d) => ({ artifactType: d.artifactType ?? d.mediaType, name: d.annotations?.[IMAGE_TITLE], digest: d.digest }));
    return { tag, digest, artifactType, signers, attachments, error: undefined };
  } catch (error) {
    if (!(error instanceof InTotoError)) throw error;
    return { tag, digest, artifactType, signers: [], attachments: [], error: `${error.message} [${error.code}]` };
  }
}

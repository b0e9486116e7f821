import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createHashBuffers, hashFile } from '../crypto/hash-file.js';
import { InTotoError, ioError, RegistryError } from '../errors.js';
import { downloadLayers } from '../gate/fetch-model.js';
import type { RegistryClient } from '../oci/client.js';
import type { Descriptor } from '../oci/manifest.js';
import type { ArtifactBlob } from './run-layout.js';

/**
 * Moving a run's artifacts between files and the store: uploads by digest (nothing the
 * registry already has is sent again), downloads by the digest signed metadata names, each
 * file created new and checked against that digest and its size while it streams (the gate's
 * downloader), so bytes that differ never become a file anyone uses.
 */

/** An artifact to download: its name in the workspace, the digest signed metadata gives it, and its size. */
export interface WantedArtifact {
  readonly name: string;
  readonly digest: string;
  readonly size: number;
}

/**
 * Hashes local files (following symbolic links: inputs may live anywhere) as blobs.
 * @throws IoError E_IO, E_NOT_REGULAR_FILE
 */
export async function hashFiles(files: ReadonlyMap<string, string>): Promise<(ArtifactBlob & { readonly path: string })[]> {
  const buffers = createHashBuffers();
  const out: (ArtifactBlob & { path: string })[] = [];
  for (const [name, file] of files) {
    let path: string;
    try {
      path = realpathSync(file);
    } catch (error) {
      throw ioError(file, error);
    }
    const sha256 = (await hashFile(path, ['sha256'], buffers)).get('sha256') as string;
    out.push({ name, path, digest: `sha256:${sha256}`, size: statOf(path).size });
  }
  return out;
}

function statOf(path: string): { size: number } {
  try {
    return statSync(path);
  } catch (error) {
    throw ioError(path, error);
  }
}

/**
 * Uploads each file unless the registry has its blob; the registry checks each digest when the
 * upload closes (a file changed since it was hashed is refused). Returns how many blobs and
 * bytes were sent.
 * @throws RegistryError (E_REGISTRY DIGEST_INVALID for a file changed since it was hashed); IoError
 */
export async function uploadFiles(client: RegistryClient, repository: string, files: readonly (ArtifactBlob & { readonly path: string })[]): Promise<{ blobs: number; bytes: number }> {
  let blobs = 0;
  let bytes = 0;
  for (const file of files) {
    let sent: boolean;
    try {
      sent = await client.pushBlob(repository, {
        digest: file.digest,
        size: file.size,
        open: (start, end) => createReadStream(file.path, { start, end: end - 1, highWaterMark: 1 << 20 }),
      });
    } catch (error) {
      if (error instanceof InTotoError) throw error.withContext(`uploading ${file.name}`, { artifact: file.name });
      throw ioError(file.path, error);
    }
    if (sent) {
      blobs += 1;
      bytes += file.size;
    }
  }
  return { blobs, bytes };
}

/**
 * Downloads artifacts into `dir` (new files, never through a symlink), each checked against
 * its digest and size while it streams.
 * @throws RegistryError E_DIGEST_MISMATCH (the store served other bytes), E_BLOB_SIZE,
 *   E_NOT_FOUND, ... with the artifact's name; IoError E_IO
 */
export async function downloadArtifacts(client: RegistryClient, repository: string, wanted: readonly WantedArtifact[], dir: string): Promise<void> {
  await downloadLayers(
    client,
    repository,
    wanted.map((w) => ({ path: w.name, descriptor: { mediaType: 'application/octet-stream', digest: w.digest, size: w.size } })),
    dir,
  );
}

/**
 * The size of each digest: from the manifests already read (untrusted, but the digest is
 * checked on download, so a wrong size only makes the download fail), else asked of the
 * registry (HEAD).
 * @throws RegistryError; IoError-free
 */
export async function sizesOf(client: RegistryClient, repository: string, digests: Iterable<string>, known: ReadonlyMap<string, number>): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const digest of digests) {
    if (sizes.has(digest)) continue;
    const size = known.get(digest) ?? (await client.blobSize(repository, digest));
    if (size === undefined) throw new RegistryError('E_NOT_FOUND', `the store has no blob ${digest}`);
    sizes.set(digest, size);
  }
  return sizes;
}

/** Known sizes from manifest descriptors. Never throws. */
export function knownSizes(descriptors: Iterable<Descriptor>): Map<string, number> {
  const known = new Map<string, number>();
  for (const d of descriptors) known.set(d.digest, d.size);
  return known;
}

/** A file's size. @throws IoError E_IO */
export function fileSize(path: string): number {
  return statOf(path).size;
}

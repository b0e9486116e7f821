import { createHash } from 'node:crypto';
import { InTotoError, RegistryError } from '../errors.js';
import type { Credentials } from './auth.js';
import { MAX_MANIFEST_BYTES, sha256Digest, type Descriptor } from './manifest.js';
import { OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import { isDigest, type RegistryHost } from './reference.js';
import { directBlobToFile, prepareDirectDownloads, type DirectBlobRequest } from './direct-blob.js';
import { describeNetworkError, discard, readBounded, Transport, type Body, type TransportOptions } from './transport.js';

/**
 * The OCI distribution API (distribution-spec v1.1) for one registry: the endpoints a model
 * store needs and nothing more. Every byte that comes back is checked against the digest it
 * was asked for, while it streams: a blob is hashed chunk by chunk and its size capped by its
 * descriptor, a manifest fetched by digest must hash to that digest.
 *
 * The API for other parts of the project (the gate, pipelines that keep artifacts in a
 * registry): {@link RegistryClient.pushBlob} / {@link RegistryClient.fetchBlob} by digest,
 * {@link RegistryClient.putManifest} / {@link RegistryClient.getManifest}, {@link RegistryClient.listTags},
 * and referrers in referrers.ts.
 */

export interface ClientOptions extends TransportOptions {
  /** Uploads larger than this go in PATCH chunks of this size (default 64 MiB); smaller ones in one PUT. */
  readonly chunkBytes?: number;
}

/** Where a blob's bytes come from for an upload: a function that streams bytes [start, end). */
export interface BlobSource {
  readonly digest: string;
  readonly size: number;
  open(start: number, end: number): Body;
}

/**
 * Where a download goes: `push` takes each chunk (it may keep it: the client does not touch a
 * chunk again) and may wait to slow the download down; `finish` returns the SHA-256 of every
 * byte pushed, as `sha256:<hex>`; `abort` is called instead when the download fails.
 */
export interface BlobSink {
  push(chunk: Buffer): Promise<void> | void;
  finish(): Promise<string>;
  abort(): void;
}

/** A manifest or index as fetched: its bytes, their digest, and the media type the registry named. */
export interface FetchedManifest {
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly mediaType: string;
}

const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;
/** Downloaded bytes are handed to the writer in batches of about this size. */
const WRITE_BYTES = 1024 * 1024;
const MAX_TAGS = 100_000;

function pull(repository: string): string {
  return `repository:${repository}:pull`;
}
function push(repository: string): string {
  return `repository:${repository}:pull,push`;
}

export class RegistryClient {
  readonly registry: RegistryHost;
  private readonly transport: Transport;
  private readonly chunkBytes: number;

  /** @throws RegistryError E_INSECURE, E_REGISTRY (see Transport) */
  constructor(registry: RegistryHost, options: ClientOptions = {}) {
    this.registry = registry;
    this.transport = new Transport(registry, options);
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes < 1) throw new RegistryError('E_REGISTRY', `chunk size ${this.chunkBytes} is not a positive integer`);
  }

  /** `http://host:port` or `https://host:port`. */
  get origin(): string {
    return this.transport.origin;
  }

  /** Closes idle connections. */
  close(): Promise<void> {
    return this.transport.close();
  }

  /**
   * `GET /v2/`: the registry answers and speaks the distribution API (authenticating if it asks).
   * @throws RegistryError
   */
  async ping(): Promise<void> {
    const response = await this.transport.request({ method: 'GET', url: '/v2/', accept: [200], what: `GET ${this.registry.authority}/v2/` });
    await discard(response);
  }

  /**
   * `HEAD /v2/<name>/blobs/<digest>`: the blob's size when the registry has it, undefined when not.
   * @throws RegistryError
   */
  async blobSize(repository: string, digest: string): Promise<number | undefined> {
    checkDigest(digest);
    const response = await this.transport.request({
      method: 'HEAD',
      url: `/v2/${repository}/blobs/${digest}`,
      scope: pull(repository),
      redirects: 'blob',
      accept: [200, 404],
      what: `HEAD blob ${repository}@${digest}`,
    });
    await discard(response);
    if (response.status === 404) return undefined;
    const size = Number(response.headers.get('content-length'));
    return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
  }

  /**
   * Uploads a blob unless the registry already has it: one PUT when it fits in a chunk
   * (POST, then PUT with the bytes), else PATCH chunks with `Content-Range`, then a closing PUT.
   * The registry checks the digest when the upload closes. Returns whether bytes were sent.
   * @throws RegistryError E_REGISTRY (the registry refused, e.g. DIGEST_INVALID when the
   *   source changed since it was hashed), E_REDIRECT (an upload location on another origin)
   */
  async pushBlob(repository: string, source: BlobSource): Promise<boolean> {
    checkDigest(source.digest);
    if ((await this.blobSize(repository, source.digest)) === source.size) return false;
    const what = `upload ${repository}@${source.digest}`;
    let location = await this.startUpload(repository, what);
    const octets = { 'content-type': 'application/octet-stream' };
    if (source.size <= this.chunkBytes) {
      const response = await this.transport.request({
        method: 'PUT',
        url: withDigest(location, source.digest),
        headers: { ...octets, 'content-length': String(source.size) },
        body: () => source.open(0, source.size),
        scope: push(repository),
        accept: [201],
        what,
      });
      await discard(response);
      return true;
    }
    for (let start = 0; start < source.size; start += this.chunkBytes) {
      const end = Math.min(source.size, start + this.chunkBytes);
      const response = await this.transport.request({
        method: 'PATCH',
        url: location,
        headers: { ...octets, 'content-length': String(end - start), 'content-range': `${start}-${end - 1}` },
        body: () => source.open(start, end),
        scope: push(repository),
        accept: [202],
        what: `${what} (bytes ${start}-${end - 1})`,
      });
      await discard(response);
      location = nextLocation(response.headers.get('location'), location, what);
    }
    const response = await this.transport.request({
      method: 'PUT',
      url: withDigest(location, source.digest),
      headers: { ...octets, 'content-length': '0' },
      scope: push(repository),
      accept: [201],
      what,
    });
    await discard(response);
    return true;
  }

  /** Uploads bytes held in memory (configs, signatures, attachments). @throws RegistryError */
  async pushBytes(repository: string, bytes: Uint8Array): Promise<{ digest: string; size: number; uploaded: boolean }> {
    const digest = sha256Digest(bytes);
    const uploaded = await this.pushBlob(repository, { digest, size: bytes.length, open: (start, end) => bytes.subarray(start, end) });
    return { digest, size: bytes.length, uploaded };
  }

  private async startUpload(repository: string, what: string): Promise<string> {
    const response = await this.transport.request({
      method: 'POST',
      url: `/v2/${repository}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      scope: push(repository),
      accept: [202],
      what,
    });
    await discard(response);
    return nextLocation(response.headers.get('location'), `${this.origin}/v2/${repository}/blobs/uploads/`, what);
  }

  /**
   * Streams a blob to `write` (batches of chunks, about 1 MiB each), hashing as it goes; a
   * chunk is handed over only after it has been counted, so a body longer than
   * `descriptor.size` stops there (bounded memory for an endless answer). Returns once every
   * byte is written and the digest matched: the caller must not trust the bytes before.
   * @throws RegistryError E_DIGEST_MISMATCH, E_BLOB_SIZE (shorter, longer, or broke off),
   *   E_NOT_FOUND, E_REGISTRY, E_REDIRECT; whatever `write` throws
   */
  async fetchBlob(repository: string, descriptor: Pick<Descriptor, 'digest' | 'size'>, write: (chunks: readonly Buffer[]) => Promise<void> | void): Promise<void> {
    const hash = createHash('sha256');
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      const batch = pending;
      pending = [];
      pendingBytes = 0;
      if (batch.length > 0) await write(batch);
    };
    await this.fetchBlobTo(repository, descriptor, {
      push: async (chunk) => {
        hash.update(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BYTES) await flush();
      },
      finish: async () => {
        await flush();
        return `sha256:${hash.digest('hex')}`;
      },
      abort: () => undefined,
    });
  }

  /**
   * Streams a blob into a {@link BlobSink} that hashes what it is given (for instance on
   * another thread); the size is capped here, and the digest the sink reports at the end must
   * be the descriptor's.
   * @throws as {@link fetchBlob}; whatever the sink throws
   */
  async fetchBlobTo(repository: string, descriptor: Pick<Descriptor, 'digest' | 'size'>, sink: BlobSink): Promise<void> {
    checkDigest(descriptor.digest);
    const what = `blob ${repository}@${descriptor.digest}`;
    let finished = false;
    try {
      const response = await this.transport.request({
        method: 'GET',
        url: `/v2/${repository}/blobs/${descriptor.digest}`,
        headers: { accept: '*/*', 'accept-encoding': 'identity' },
        scope: pull(repository),
        redirects: 'blob',
        accept: [200],
        what: `GET ${what}`,
      });
      const declared = response.headers.get('content-length');
      if (declared !== null && Number(declared) !== descriptor.size) {
        await discard(response);
        throw new RegistryError('E_BLOB_SIZE', `${what}: the registry announces ${declared} bytes, the descriptor says ${descriptor.size}`);
      }
      let received = 0;
      const body = response.body;
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          received += chunk.length;
          if (received > descriptor.size) {
            throw new RegistryError('E_BLOB_SIZE', `${what}: the registry sent more than the ${descriptor.size} bytes the descriptor names`);
          }
          try {
            await sink.push(chunk);
          } catch (error) {
            throw new WriterFailure(error);
          }
        }
      } catch (error) {
        if (error instanceof WriterFailure) throw error.cause;
        if (error instanceof InTotoError) throw error;
        throw new RegistryError('E_BLOB_SIZE', `${what}: the download broke off after ${received} of ${descriptor.size} bytes: ${describeNetworkError(error)}`, { cause: error });
      } finally {
        if (!body.readableEnded) body.destroy();
      }
      if (received < descriptor.size) throw new RegistryError('E_BLOB_SIZE', `${what}: the download ended after ${received} of ${descriptor.size} bytes`);
      finished = true;
      const actual = await sink.finish();
      if (actual !== descriptor.digest) {
        throw new RegistryError('E_DIGEST_MISMATCH', `${what}: the registry served bytes whose digest is ${actual}`);
      }
    } finally {
      if (!finished) sink.abort();
    }
  }

  /** Starts what {@link fetchBlobToFile} needs (its hashing thread) ahead of time, when it can be used here. */
  prepareBlobDownloads(): void {
    if (this.transport.origin.startsWith('http:')) prepareDirectDownloads();
  }

  /**
   * Downloads a blob straight into a new file when the registry is spoken to over plain HTTP
   * and answers simply (direct-blob.ts: a socket read into reused memory, hashed in place,
   * written on the thread pool, at about a third of the CPU of Node's HTTP client). Returns
   * how the file was written ('unbuffered': O_DIRECT, past the page cache, where the file
   * system allows it; else 'buffered'), or false, having created nothing, when it cannot
   * (HTTPS, a redirect, a challenge, an error answer, a chunked body): the caller then uses
   * {@link fetchBlobTo}.
   * @throws RegistryError E_DIGEST_MISMATCH, E_BLOB_SIZE; IoError E_IO
   */
  async fetchBlobToFile(
    repository: string,
    descriptor: Pick<Descriptor, 'digest' | 'size'>,
    path: string,
    options: Pick<DirectBlobRequest, 'slots' | 'buffered'> = {},
  ): Promise<false | 'unbuffered' | 'buffered'> {
    checkDigest(descriptor.digest);
    const what = `blob ${repository}@${descriptor.digest}`;
    const get = this.transport.plainGet(`/v2/${repository}/blobs/${descriptor.digest}`, pull(repository), { accept: '*/*', 'accept-encoding': 'identity' });
    if (get === undefined) return false;
    const result = await directBlobToFile({ ...get, size: descriptor.size, path, what, ...options });
    if ('fallback' in result) return false;
    if (result.digest !== descriptor.digest) throw new RegistryError('E_DIGEST_MISMATCH', `${what}: the registry served bytes whose digest is ${result.digest}`);
    return result.unbuffered ? 'unbuffered' : 'buffered';
  }

  /**
   * A small blob (a config, a signature bundle, an attachment) read whole, digest checked.
   * @throws RegistryError as fetchBlob; E_BLOB_SIZE when the descriptor's size is over `maxBytes`
   */
  async fetchBlobBytes(repository: string, descriptor: Pick<Descriptor, 'digest' | 'size'>, maxBytes: number): Promise<Uint8Array> {
    if (descriptor.size > maxBytes) {
      throw new RegistryError('E_BLOB_SIZE', `blob ${repository}@${descriptor.digest}: ${descriptor.size} bytes, over the limit of ${maxBytes} for this kind of blob`);
    }
    const out = Buffer.allocUnsafe(descriptor.size);
    let offset = 0;
    await this.fetchBlob(repository, descriptor, (chunks) => {
      for (const chunk of chunks) {
        out.set(chunk, offset);
        offset += chunk.length;
      }
    });
    return out;
  }

  /**
   * `GET /v2/<name>/manifests/<tag|digest>`: the bytes (at most 4 MiB), their digest, and the
   * media type. Fetched by digest, the bytes must hash to it.
   * @throws RegistryError E_NOT_FOUND, E_DIGEST_MISMATCH, E_MANIFEST (too large), E_REGISTRY
   */
  async getManifest(repository: string, reference: string, accept: readonly string[] = [OCI_MANIFEST, OCI_INDEX]): Promise<FetchedManifest> {
    const what = `manifest ${repository}${isDigest(reference) ? '@' : ':'}${reference}`;
    const response = await this.transport.request({
      method: 'GET',
      url: `/v2/${repository}/manifests/${reference}`,
      headers: { accept: accept.join(', ') },
      scope: pull(repository),
      redirects: 'same-origin',
      accept: [200],
      what: `GET ${what}`,
    });
    let bytes: Uint8Array;
    try {
      bytes = await readBounded(response, MAX_MANIFEST_BYTES, what);
    } catch (error) {
      if (error instanceof RegistryError && /over the limit/.test(error.message)) throw new RegistryError('E_MANIFEST', error.message, { cause: error });
      throw error;
    }
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new RegistryError('E_DIGEST_MISMATCH', `${what}: the registry served a manifest whose digest is ${digest}`);
    }
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    return { bytes, digest, mediaType };
  }

  /**
   * The digest a tag names now, or undefined when there is no such tag (the manifest is
   * fetched and hashed: the registry's Docker-Content-Digest header is not taken on trust).
   * @throws RegistryError
   */
  async resolveTag(repository: string, tag: string): Promise<string | undefined> {
    try {
      return (await this.getManifest(repository, tag)).digest;
    } catch (error) {
      if (error instanceof RegistryError && error.code === 'E_NOT_FOUND') return undefined;
      throw error;
    }
  }

  /**
   * `PUT /v2/<name>/manifests/<tag|digest>`. Returns the manifest's digest and whether the
   * registry processed its `subject` (the `OCI-Subject` header of a registry with the referrers API).
   * @throws RegistryError E_REGISTRY (e.g. MANIFEST_BLOB_UNKNOWN), E_DIGEST_MISMATCH (the registry names another digest)
   */
  async putManifest(repository: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<{ digest: string; subjectProcessed: boolean }> {
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && reference !== digest) throw new RegistryError('E_DIGEST_MISMATCH', `manifest for ${repository}@${reference} hashes to ${digest}`);
    const response = await this.transport.request({
      method: 'PUT',
      url: `/v2/${repository}/manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: () => bytes,
      scope: push(repository),
      accept: [201],
      what: `PUT manifest ${repository}${isDigest(reference) ? '@' : ':'}${reference}`,
    });
    await discard(response);
    const named = response.headers.get('docker-content-digest');
    if (named !== null && named !== digest) {
      throw new RegistryError('E_DIGEST_MISMATCH', `PUT manifest ${repository}:${reference}: the registry stored it as ${named}, not ${digest}`);
    }
    return { digest, subjectProcessed: response.headers.get('oci-subject') !== null };
  }

  /**
   * `GET /v2/<name>/tags/list`, every page (`n` and the `Link` header), at most 100,000 tags.
   * @throws RegistryError E_NOT_FOUND (no such repository), E_REGISTRY, E_LIMIT-like E_REGISTRY beyond the cap
   */
  async listTags(repository: string): Promise<string[]> {
    const tags: string[] = [];
    let url: string | undefined = `/v2/${repository}/tags/list?n=1000`;
    for (let page = 0; url !== undefined; page++) {
      const response = await this.transport.request({ method: 'GET', url, scope: pull(repository), redirects: 'same-origin', accept: [200], what: `GET tags of ${repository}` });
      const link = response.headers.get('link');
      const body = await readBounded(response, 8 * 1024 * 1024, `tags of ${repository}`);
      let list: unknown;
      try {
        list = (JSON.parse(Buffer.from(body).toString('utf8')) as { tags?: unknown }).tags;
      } catch (error) {
        throw new RegistryError('E_REGISTRY', `tags of ${repository}: the answer is not JSON`, { cause: error });
      }
      if (list !== null && list !== undefined && !(Array.isArray(list) && list.every((t) => typeof t === 'string'))) {
        throw new RegistryError('E_REGISTRY', `tags of ${repository}: "tags" is not a list of strings`);
      }
      tags.push(...((list as string[] | null | undefined) ?? []));
      if (tags.length > MAX_TAGS) throw new RegistryError('E_REGISTRY', `tags of ${repository}: more than ${MAX_TAGS} tags`);
      const next = link === null ? undefined : /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1];
      url = next === undefined || page > 1000 ? undefined : new URL(next, `${this.origin}/`).href;
    }
    return tags;
  }

  /** The raw request, for referrers.ts (the referrers API answers 404 on registries without it). */
  get http(): Transport {
    return this.transport;
  }

  /** Token scopes for a repository, for referrers.ts. */
  static scopes(repository: string): { pull: string; push: string } {
    return { pull: pull(repository), push: push(repository) };
  }
}

/** What the writer of a download threw, told apart from a failure of the download itself. */
class WriterFailure {
  constructor(readonly cause: unknown) {}
}

/** Credentials, re-exported for callers that build a client. */
export type { Credentials };

/** @throws RegistryError E_MANIFEST for a digest we do not accept */
function checkDigest(digest: string): void {
  if (!isDigest(digest)) throw new RegistryError('E_MANIFEST', `${JSON.stringify(digest)} is not a sha256 digest`);
}

function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.href;
}

/** An upload's next location (absolute, or relative to the last one). @throws RegistryError E_REGISTRY when missing */
function nextLocation(header: string | null, base: string, what: string): string {
  if (header === null || header === '') throw new RegistryError('E_REGISTRY', `${what}: the registry gave no upload location`);
  try {
    return new URL(header, base).href;
  } catch (error) {
    throw new RegistryError('E_REGISTRY', `${what}: the upload location ${JSON.stringify(header.slice(0, 200))} is not a URL`, { cause: error });
  }
}

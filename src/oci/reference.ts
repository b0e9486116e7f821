import { UsageError } from '../errors.js';

/**
 * Registry references, `HOST[:PORT]/REPO[:TAG][@sha256:HEX]`, parsed strictly (OCI distribution
 * spec, "Pulling manifests": the repository name grammar and the tag grammar). The host is never
 * implied: there is no default registry, so a reference always says where it goes.
 */

/** `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*` */
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST_NAME = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const IPV6 = /^\[[0-9a-fA-F:.]+\]$/;
/** The distribution spec's limit on `<name>` in a URL. */
const MAX_REPOSITORY_LENGTH = 255;

/** A registry host as written: `host`, `host:port`, `[v6]` or `[v6]:port`. */
export interface RegistryHost {
  /** `host[:port]` exactly as it appears in URLs and in ~/.docker/config.json. */
  readonly authority: string;
  /** The host name or address alone (brackets kept for IPv6). */
  readonly hostname: string;
  readonly port: number | undefined;
}

/** A repository in a registry, with an optional tag and an optional digest. */
export interface Reference {
  readonly registry: RegistryHost;
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

function bad(text: string, why: string): never {
  throw new UsageError('E_USAGE', `${JSON.stringify(text)} is not a registry reference: ${why} (expected HOST[:PORT]/REPO[:TAG][@sha256:HEX])`);
}

/**
 * Parses `HOST[:PORT]`.
 * @throws UsageError E_USAGE
 */
export function parseRegistryHost(text: string, whole = text): RegistryHost {
  let hostname = text;
  let port: number | undefined;
  const colon = text.lastIndexOf(':');
  if (colon !== -1 && !text.endsWith(']')) {
    hostname = text.slice(0, colon);
    const portText = text.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) bad(whole, `port ${JSON.stringify(portText)} is not a number from 1 to 65535`);
    port = Number(portText);
  }
  if (!(HOST_NAME.test(hostname) || IPV6.test(hostname)) || hostname.length > 253) bad(whole, `${JSON.stringify(hostname)} is not a host name`);
  return { authority: port === undefined ? hostname : `${hostname}:${port}`, hostname, port };
}

/**
 * Parses a full reference. The first path segment is always the registry host.
 * @throws UsageError E_USAGE for anything outside the grammar
 */
export function parseReference(text: string, options: { readonly requireTagOrDigest?: boolean } = {}): Reference {
  if (text.length > 2048) bad(text.slice(0, 40), 'longer than 2048 characters');
  const slash = text.indexOf('/');
  if (slash <= 0) bad(text, 'no registry host (the part before the first /)');
  const first = text.slice(0, slash);
  // Docker's rule for telling a host from a repository path: a host has a '.' or a ':', or is
  // localhost. Without it `library/x` would be taken for host "library".
  if (!(first.includes('.') || first.includes(':') || first === 'localhost')) {
    bad(text, `${JSON.stringify(first)} is not a registry host (a host has a dot or a port, or is localhost; there is no default registry)`);
  }
  const registry = parseRegistryHost(first, text);
  let rest = text.slice(slash + 1);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad(text, `${JSON.stringify(digest)} is not a sha256 digest (sha256: and 64 lower-case hex digits)`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(text, `${JSON.stringify(tag)} is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  if (rest.length > MAX_REPOSITORY_LENGTH || !REPOSITORY.test(rest)) {
    bad(text, `${JSON.stringify(rest)} is not a repository name (lower-case letters and digits separated by . _ __ - or /)`);
  }
  if (options.requireTagOrDigest && tag === undefined && digest === undefined) bad(text, 'it names neither a tag nor a digest');
  return { registry, repository: rest, tag, digest };
}

/** `HOST/REPO`, `HOST/REPO:TAG`, `HOST/REPO@DIGEST` or `HOST/REPO:TAG@DIGEST`. */
export function formatReference(ref: Reference): string {
  return `${ref.registry.authority}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** True for `sha256:` and 64 lower-case hex digits, the only digest form we accept. */
export function isDigest(text: string): boolean {
  return DIGEST.test(text);
}

/** True for a valid tag. */
export function isTag(text: string): boolean {
  return TAG.test(text);
}

/**
 * True when the host is this machine: `localhost`, 127.0.0.0/8 or `[::1]`. Only such hosts are
 * spoken to over plain HTTP without --insecure (nobody else on the network sees the traffic).
 */
export function isLoopback(hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '[::1]') return true;
  const v4 = /^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$/.exec(hostname);
  return v4 !== null && v4.slice(1).every((part) => Number(part) <= 255);
}

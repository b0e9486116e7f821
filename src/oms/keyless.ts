import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { JsonObject } from '../canonical/json.js';
import { parseJson } from '../canonical/parse.js';
import { InTotoError, IoError, ModelError, ioError } from '../errors.js';
import { LIMITS, readRegularFileSync } from '../io/files.js';

/**
 * Keyless (Sigstore) bundles, verified offline with `@sigstore/verify`: the Fulcio certificate
 * chains to a CA of the trusted root, its SCT and the Rekor entry (inclusion proof or promise,
 * at least one of each) verify against the root's logs, the certificate was valid when the log
 * entry was integrated, and the DSSE signature verifies with the certificate's key. The
 * identity (certificate SAN) and issuer (Fulcio's OIDC issuer extension) are then compared
 * here, exactly: `@sigstore/verify` would treat the identity as a regular expression, so
 * `a.b@x.com` would also accept `aXb@x.com.evil`.
 */

/** Who must have signed, and what to trust. */
export interface KeylessPolicy {
  readonly identity: string;
  readonly issuer: string;
  /** A trusted_root.json (Sigstore's TrustedRoot); default: {@link defaultTrustedRoot}. */
  readonly trustedRoot?: JsonObject;
}

export interface KeylessSigner {
  readonly identity: string;
  readonly issuer: string;
}

/**
 * The public-good Sigstore trusted root pinned by `@sigstore/tuf` 4.0.2 (its seeds.json), the
 * one npm's own provenance checks start from: used offline, never refreshed over the network.
 * @throws IoError E_IO when the package is missing
 */
export function defaultTrustedRoot(): JsonObject {
  try {
    const require = createRequire(import.meta.url);
    const seeds = JSON.parse(readFileSync(require.resolve('@sigstore/tuf/seeds.json'), 'utf8')) as Record<string, { targets: Record<string, string> }>;
    const encoded = Object.values(seeds)[0]?.targets['trusted_root.json'];
    if (encoded === undefined) throw new Error('seeds.json has no trusted_root.json');
    return JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as JsonObject;
  } catch (cause) {
    throw new IoError('E_IO', `cannot read the pinned Sigstore trusted root from @sigstore/tuf (${cause instanceof Error ? cause.message : String(cause)}); give one with --trusted-root`, { cause });
  }
}

/** Reads a trusted_root.json file. @throws IoError; ParseError */
export function readTrustedRoot(path: string): JsonObject {
  const value = parseJson(readRegularFileSync(path, { maxBytes: LIMITS.metadataBytes, what: 'trusted root' }), { source: path });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw ioError(path, new Error('not a JSON object'), 'not a trusted root');
  return value as JsonObject;
}

/**
 * Verifies a keyless bundle and returns the signer; the caller then reads the payload from the
 * same bundle document it passed in.
 * @throws ModelError E_MODEL_SIGNATURE (signature, certificate, log, identity or issuer),
 *   E_MODEL_BUNDLE (not a bundle the library can read)
 */
export async function verifyKeylessBundle(bundleJson: JsonObject, policy: KeylessPolicy, source: string): Promise<KeylessSigner> {
  // Loaded from node_modules when needed (not bundled into the commands): compiling them cost
  // every start of `intoto` about 70 ms, and only keyless verification uses them.
  const require = createRequire(import.meta.url);
  const { bundleFromJSON } = require('@sigstore/bundle') as typeof import('@sigstore/bundle');
  const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify') as typeof import('@sigstore/verify');
  const { TrustedRoot } = require('@sigstore/protobuf-specs') as typeof import('@sigstore/protobuf-specs');
  let bundle;
  try {
    bundle = bundleFromJSON(bundleJson);
  } catch (cause) {
    throw new ModelError('E_MODEL_BUNDLE', `${source}: not a valid Sigstore bundle (${(cause as Error).message})`, { cause, context: { file: source } });
  }
  let trust;
  try {
    trust = toTrustMaterial(TrustedRoot.fromJSON(policy.trustedRoot ?? defaultTrustedRoot()));
  } catch (cause) {
    if (cause instanceof InTotoError) throw cause;
    throw new ModelError('E_MODEL_SIGNATURE', `the trusted root cannot be used (${(cause as Error).message})`, { cause });
  }
  let signer;
  try {
    signer = new Verifier(trust, { tlogThreshold: 1, ctlogThreshold: 1 }).verify(toSignedEntity(bundle));
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    throw new ModelError('E_MODEL_SIGNATURE', `${source}: Sigstore verification failed${typeof code === 'string' ? ` (${code})` : ''}: ${(cause as Error).message}`, {
      cause,
      context: { file: source },
    });
  }
  const identity = signer.identity?.subjectAlternativeName;
  const issuer = signer.identity?.extensions?.issuer;
  if (identity !== policy.identity) {
    throw new ModelError('E_MODEL_SIGNATURE', `${source}: signed by ${JSON.stringify(identity ?? null)}, not by the identity ${JSON.stringify(policy.identity)}`, { context: { file: source } });
  }
  if (issuer !== policy.issuer) {
    throw new ModelError('E_MODEL_SIGNATURE', `${source}: the identity was issued by ${JSON.stringify(issuer ?? null)}, not by ${JSON.stringify(policy.issuer)}`, { context: { file: source } });
  }
  return { identity, issuer };
}

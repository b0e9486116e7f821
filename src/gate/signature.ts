import { createHash, createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { parseJson } from '../canonical/parse.js';
import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { CryptoError, GateError, InTotoError, UsageError } from '../errors.js';
import { LIMITS, readRegularFileSync } from '../io/files.js';
import { pae } from '../model/envelope.js';
import { SIGSTORE_BUNDLE_TYPES, OMS_PREDICATE } from '../oci/media-types.js';

/**
 * The gate's signature slot: "verify the OpenSSF Model Signing signature over the downloaded
 * files". The full OMS verifier (key, certificate chain and Sigstore methods) lives in
 * src/oms/ (branch `oms`), whose `verifyModel` takes this slot when it is merged.
 *
 * Until then this file checks the one method that needs nothing but node:crypto, the key
 * method (`-k SIGNER.pub`), and nothing else: an ECDSA signature (P-256, P-384 or P-521, the
 * curves OMS v1.0 allows) over the DSSE pre-authentication encoding of an in-toto Statement
 * whose predicate is `https://model_signing/signature/v1.0` with the `files` serialization;
 * then the statement's resources must be exactly the downloaded files, digest for digest, and
 * its subject digest the SHA-256 of the resource digests in payload order (OMS v1.0).
 * The certificate-chain and Sigstore methods fail closed (E_USAGE) until src/oms lands.
 */

/** Who must have signed: what `-k`, `--certificate-chain` or `--identity/--issuer` said. */
export type SignerOption =
  | { readonly kind: 'key'; readonly path: string }
  | { readonly kind: 'certificate-chain'; readonly paths: readonly string[] }
  | { readonly kind: 'sigstore'; readonly identity: string; readonly issuer: string };

export interface SignatureInput {
  readonly signer: SignerOption;
  /** The attached Sigstore bundles (untrusted bytes), by name for messages. */
  readonly bundles: readonly { readonly name: string; readonly bytes: Uint8Array }[];
  /** The downloaded files: path in the model → `sha256:<hex>` (each checked while it streamed). */
  readonly files: ReadonlyMap<string, string>;
  /** The directory holding them (what src/oms's verifyModel will read). */
  readonly modelDir: string;
}

export interface SignatureResult {
  readonly method: SignerOption['kind'];
  /** The signer's key id (SHA-256 of its SPKI PEM, model_signing's hint convention). */
  readonly keyId: string;
  readonly bundle: string;
}

const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
const CURVE_HASH: Readonly<Record<string, string>> = { prime256v1: 'sha256', secp384r1: 'sha384', secp521r1: 'sha512' };

/**
 * Passes when one of the bundles is a valid signature by the signer over exactly `files`.
 * @throws GateError E_SIGNATURE_MISSING (no bundle), E_MODEL_FILES (a valid signature over other files)
 * @throws CryptoError E_SIGNATURE (no bundle verifies with the signer), E_KEY_FORMAT, E_KEY_UNSUPPORTED
 * @throws UsageError E_USAGE for a signer method not available in this build
 */
export async function checkModelSignature(input: SignatureInput): Promise<SignatureResult> {
  if (input.signer.kind !== 'key') {
    throw new UsageError('E_USAGE', `${input.signer.kind === 'sigstore' ? '--identity/--issuer' : '--certificate-chain'} verification needs the OpenSSF Model Signing verifier (src/oms), which this build does not have yet; use -k SIGNER.pub`);
  }
  if (input.bundles.length === 0) throw new GateError('E_SIGNATURE_MISSING', 'no OpenSSF Model Signing signature is attached to this model');
  const { key, keyId, hash } = loadSignerKey(input.signer.path);
  const reasons: string[] = [];
  let filesDiffer: GateError | undefined;
  for (const bundle of input.bundles) {
    try {
      checkResources(verifiedStatement(bundle.bytes, key, hash), input.files, bundle.name);
      return { method: 'key', keyId, bundle: bundle.name };
    } catch (error) {
      // A valid signature over other files says more than "no signature verifies": keep it.
      if (error instanceof GateError) filesDiffer ??= error;
      else reasons.push(`${bundle.name}: ${error instanceof InTotoError ? error.message : String(error)}`);
    }
  }
  if (filesDiffer !== undefined) throw filesDiffer;
  throw new CryptoError('E_SIGNATURE', `no attached signature verifies with ${input.signer.path} (key ${keyId.slice(0, 16)}...): ${reasons[0]}${reasons.length > 1 ? ` (and ${reasons.length - 1} more)` : ''}`, {
    details: reasons,
    context: { file: input.signer.path, keyid: keyId },
  });
}

function loadSignerKey(path: string): { key: KeyObject; keyId: string; hash: string } {
  const text = readRegularFileSync(path, { maxBytes: LIMITS.keyBytes, what: 'public key' }).toString('utf8');
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (error) {
    throw new CryptoError('E_KEY_FORMAT', `${path}: not a PEM public key`, { cause: error, context: { file: path } });
  }
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const hash = curve === undefined ? undefined : CURVE_HASH[curve];
  if (hash === undefined) {
    throw new CryptoError('E_KEY_UNSUPPORTED', `${path}: OpenSSF Model Signing keys are ECDSA P-256, P-384 or P-521, not ${key.asymmetricKeyType}${curve === undefined ? '' : ` ${curve}`}`, { context: { file: path } });
  }
  const pem = key.export({ type: 'spki', format: 'pem' }) as string;
  return { key, keyId: createHash('sha256').update(pem).digest('hex'), hash };
}

function bad(why: string): never {
  throw new CryptoError('E_SIGNATURE', why);
}

/** Checks the bundle's DSSE signature with `key`; returns the statement decoded from the signed bytes only. */
function verifiedStatement(bytes: Uint8Array, key: KeyObject, hash: string): JsonObject {
  const bundle = parseJson(bytes, { source: 'signature bundle' });
  if (!isJsonObject(bundle)) bad('not a JSON object');
  const mediaType = getOwn(bundle, 'mediaType');
  if (typeof mediaType !== 'string' || !SIGSTORE_BUNDLE_TYPES.includes(mediaType)) bad(`not a Sigstore bundle (mediaType ${JSON.stringify(mediaType)})`);
  const envelope = getOwn(bundle, 'dsseEnvelope');
  if (!isJsonObject(envelope)) bad('no DSSE envelope');
  const payloadType = getOwn(envelope, 'payloadType');
  const payloadText = getOwn(envelope, 'payload');
  const signatures = getOwn(envelope, 'signatures');
  if (payloadType !== PAYLOAD_TYPE) bad(`payloadType ${JSON.stringify(payloadType)} is not ${PAYLOAD_TYPE}`);
  if (typeof payloadText !== 'string' || !Array.isArray(signatures) || signatures.length === 0 || signatures.length > 16) bad('malformed DSSE envelope');
  const payload = base64(payloadText);
  const signed = pae(PAYLOAD_TYPE, payload);
  const valid = (signatures as readonly JsonValue[]).some((entry) => {
    const sig = isJsonObject(entry) ? getOwn(entry, 'sig') : undefined;
    if (typeof sig !== 'string') return false;
    try {
      return verifySignature(hash, signed, { key, dsaEncoding: 'der' }, base64(sig));
    } catch {
      return false;
    }
  });
  if (!valid) bad('the signature does not verify with this key (signed by another key, or changed after signing)');
  const statement = parseJson(payload, { source: 'signed statement' });
  if (!isJsonObject(statement)) bad('the signed payload is not a JSON object');
  if (getOwn(statement, '_type') !== STATEMENT_V1) bad(`the signed payload is not an in-toto Statement v1`);
  if (getOwn(statement, 'predicateType') !== OMS_PREDICATE) bad(`predicateType ${JSON.stringify(getOwn(statement, 'predicateType'))} is not ${OMS_PREDICATE}`);
  return statement;
}

function base64(text: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) bad('invalid base64 in the DSSE envelope');
  return Buffer.from(text, 'base64');
}

/**
 * The signed resources must be exactly the downloaded files with the same SHA-256, and the
 * subject digest must be the SHA-256 of the resource digests in payload order.
 * @throws GateError E_MODEL_FILES; CryptoError E_SIGNATURE for a statement OMS would not write
 */
function checkResources(statement: JsonObject, files: ReadonlyMap<string, string>, bundleName: string): void {
  const predicate = getOwn(statement, 'predicate');
  if (!isJsonObject(predicate)) bad(`${bundleName}: the statement has no predicate`);
  const serialization = getOwn(predicate, 'serialization');
  const method = isJsonObject(serialization) ? getOwn(serialization, 'method') : undefined;
  if (method !== 'files') bad(`${bundleName}: serialization ${JSON.stringify(method)} is not "files" (a shard digest is not a file's digest, so it cannot be compared with the registry's layers)`);
  const list = getOwn(predicate, 'resources');
  if (!Array.isArray(list)) bad(`${bundleName}: predicate.resources is not a list`);
  const signed = new Map<string, string>();
  const root = createHash('sha256');
  for (const item of list as readonly JsonValue[]) {
    const name = isJsonObject(item) ? getOwn(item, 'name') : undefined;
    const algorithm = isJsonObject(item) ? getOwn(item, 'algorithm') : undefined;
    const digest = isJsonObject(item) ? getOwn(item, 'digest') : undefined;
    if (typeof name !== 'string' || algorithm !== 'sha256' || typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) {
      bad(`${bundleName}: a resource is not {name, algorithm: "sha256", digest: 64 hex digits}`);
    }
    if (signed.has(name)) bad(`${bundleName}: the resource ${JSON.stringify(name)} is listed twice`);
    signed.set(name, `sha256:${digest}`);
    root.update(Buffer.from(digest, 'hex'));
  }
  const subject = getOwn(statement, 'subject');
  const first = Array.isArray(subject) && subject.length === 1 ? (subject as readonly JsonValue[])[0] : undefined;
  const subjectDigest = isJsonObject(first) ? getOwn(first, 'digest') : undefined;
  if (!isJsonObject(subjectDigest) || getOwn(subjectDigest, 'sha256') !== root.digest('hex')) {
    bad(`${bundleName}: the subject digest is not the SHA-256 of the resource digests`);
  }
  const problems: string[] = [];
  for (const [path, digest] of files) {
    const expected = signed.get(path);
    if (expected === undefined) problems.push(`${path}: in the registry's manifest but not signed`);
    else if (expected !== digest) problems.push(`${path}: ${digest} in the registry, ${expected} signed`);
  }
  for (const path of signed.keys()) if (!files.has(path)) problems.push(`${path}: signed but not in the registry's manifest`);
  if (problems.length > 0) {
    throw new GateError('E_MODEL_FILES', `the model's files differ from the signed ones: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; and ${problems.length - 3} more` : ''}`, {
      details: problems,
    });
  }
}

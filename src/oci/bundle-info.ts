import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { parseJson } from '../canonical/parse.js';
import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { CryptoError } from '../errors.js';
import { SIGSTORE_BUNDLE_TYPES } from './media-types.js';

/**
 * What a Sigstore bundle says about itself, read WITHOUT verifying anything: who claims to have
 * signed it (the key hint, or the certificate's identity and key), what kind of content it
 * holds, and for an OpenSSF Model Signing payload the files it lists. Push uses this to pack
 * exactly the signed files and to fail early when they differ; `intoto versions` to show the
 * signer. Only the gate's signature check (src/gate/) makes any of it trustworthy.
 */

export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

export interface SignerSummary {
  readonly kind: 'key' | 'certificate' | 'unknown';
  /** The key's id: the bundle's `publicKey.hint`, or for a certificate the SHA-256 of its public key in SPKI PEM (the same convention model_signing uses for hints). */
  readonly keyId: string | undefined;
  /** For a certificate: its subject alternative name(s). */
  readonly identity: string | undefined;
}

export interface OmsResource {
  readonly name: string;
  readonly algorithm: string;
  readonly digest: string;
}

export interface BundleSummary {
  readonly mediaType: string;
  readonly content: 'dsse-envelope' | 'message-signature';
  readonly signer: SignerSummary;
  /** The in-toto Statement's predicateType, when the bundle holds a DSSE envelope with a readable statement. */
  readonly predicateType: string | undefined;
  /** For an OMS payload: its resources and serialization parameters. */
  readonly oms: { readonly resources: readonly OmsResource[]; readonly method: string | undefined; readonly ignorePaths: readonly string[] } | undefined;
}

function malformed(why: string): never {
  throw new CryptoError('E_ENVELOPE', `signature bundle: ${why}`);
}

function object(value: JsonValue | undefined, where: string): JsonObject {
  if (!isJsonObject(value)) malformed(`${where} is not an object`);
  return value;
}

/**
 * Reads a bundle's JSON and summarises it.
 * @throws CryptoError E_ENVELOPE for something that is not a Sigstore bundle
 * @throws ParseError for bytes that are not strict JSON
 */
export function summarizeBundle(bytes: Uint8Array): BundleSummary {
  if (bytes.length > MAX_BUNDLE_BYTES) malformed(`${bytes.length} bytes, over the limit of ${MAX_BUNDLE_BYTES}`);
  const bundle = object(parseJson(bytes, { source: 'signature bundle' }), 'the bundle');
  const mediaType = getOwn(bundle, 'mediaType');
  if (typeof mediaType !== 'string' || !SIGSTORE_BUNDLE_TYPES.includes(mediaType)) malformed(`mediaType ${JSON.stringify(mediaType)} is not a Sigstore bundle's`);
  const material = object(getOwn(bundle, 'verificationMaterial'), 'verificationMaterial');
  const envelope = getOwn(bundle, 'dsseEnvelope');
  const content = envelope !== undefined ? 'dsse-envelope' : getOwn(bundle, 'messageSignature') !== undefined ? 'message-signature' : malformed('neither dsseEnvelope nor messageSignature');
  let predicateType: string | undefined;
  let oms: BundleSummary['oms'];
  if (content === 'dsse-envelope') {
    const statement = statementOf(object(envelope, 'dsseEnvelope'));
    if (statement !== undefined) {
      const type = getOwn(statement, 'predicateType');
      predicateType = typeof type === 'string' ? type : undefined;
      oms = omsOf(statement);
    }
  }
  return { mediaType, content, signer: signerOf(material), predicateType, oms };
}

/** The in-toto Statement inside a DSSE envelope, or undefined when the payload is not one we can read. */
export function statementOf(envelope: JsonObject): JsonObject | undefined {
  const payload = getOwn(envelope, 'payload');
  if (typeof payload !== 'string') malformed('dsseEnvelope.payload is not a string');
  try {
    const value = parseJson(Buffer.from(payload, 'base64'), { source: 'DSSE payload' });
    return isJsonObject(value) ? value : undefined;
  } catch {
    // Not a statement we can read (not JSON, or JSON outside our strict reader's rules).
    return undefined;
  }
}

function omsOf(statement: JsonObject): BundleSummary['oms'] {
  const predicate = getOwn(statement, 'predicate');
  if (!isJsonObject(predicate)) return undefined;
  const list = getOwn(predicate, 'resources');
  if (!Array.isArray(list)) return undefined;
  const resources: OmsResource[] = [];
  for (const item of list as readonly JsonValue[]) {
    if (!isJsonObject(item)) return undefined;
    const name = getOwn(item, 'name');
    const algorithm = getOwn(item, 'algorithm');
    const digest = getOwn(item, 'digest');
    if (typeof name !== 'string' || typeof algorithm !== 'string' || typeof digest !== 'string') return undefined;
    resources.push({ name, algorithm, digest });
  }
  const serialization = getOwn(predicate, 'serialization');
  const method = isJsonObject(serialization) ? getOwn(serialization, 'method') : undefined;
  const ignore = isJsonObject(serialization) ? getOwn(serialization, 'ignore_paths') : undefined;
  const ignorePaths = Array.isArray(ignore) ? (ignore as readonly JsonValue[]).filter((p): p is string => typeof p === 'string') : [];
  return { resources, method: typeof method === 'string' ? method : undefined, ignorePaths };
}

/** The signer a bundle's verificationMaterial names (claimed, not verified). */
export function signerOf(material: JsonObject): SignerSummary {
  const publicKey = getOwn(material, 'publicKey');
  if (isJsonObject(publicKey)) {
    const hint = getOwn(publicKey, 'hint');
    const raw = getOwn(publicKey, 'rawBytes');
    if (typeof hint === 'string' && hint !== '') return { kind: 'key', keyId: hint, identity: undefined };
    if (typeof raw === 'string') return { kind: 'key', keyId: keyIdOfRawKey(raw), identity: undefined };
    return { kind: 'key', keyId: undefined, identity: undefined };
  }
  const chain = getOwn(material, 'x509CertificateChain');
  const single = getOwn(material, 'certificate');
  let der: string | undefined;
  if (isJsonObject(chain)) {
    const certificates = getOwn(chain, 'certificates');
    const first = Array.isArray(certificates) ? (certificates as readonly JsonValue[])[0] : undefined;
    const raw = isJsonObject(first) ? getOwn(first, 'rawBytes') : undefined;
    der = typeof raw === 'string' ? raw : undefined;
  } else if (isJsonObject(single)) {
    const raw = getOwn(single, 'rawBytes');
    der = typeof raw === 'string' ? raw : undefined;
  }
  if (der === undefined) return { kind: 'unknown', keyId: undefined, identity: undefined };
  try {
    const certificate = new X509Certificate(Buffer.from(der, 'base64'));
    const pem = certificate.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    return { kind: 'certificate', keyId: createHash('sha256').update(pem).digest('hex'), identity: certificate.subjectAltName ?? certificate.subject.replace(/\n/g, ', ') };
  } catch {
    return { kind: 'certificate', keyId: undefined, identity: undefined };
  }
}

/** A raw public key (base64 of DER SPKI, or of PEM text as model_signing 1.0.1 wrote it) to its hint-style id. */
function keyIdOfRawKey(raw: string): string | undefined {
  try {
    const bytes = Buffer.from(raw, 'base64');
    const text = bytes.toString('latin1');
    const key = text.includes('-----BEGIN') ? createPublicKeyFrom(text) : createPublicKeyFrom(bytes);
    return createHash('sha256').update(key).digest('hex');
  } catch {
    return undefined;
  }
}

function createPublicKeyFrom(input: string | Buffer): string {
  const key = typeof input === 'string' ? createPublicKey(input) : createPublicKey({ key: input, format: 'der', type: 'spki' });
  return key.export({ type: 'spki', format: 'pem' }) as string;
}

import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { parseJson } from '../canonical/parse.js';
import { decodeBase64Strict } from '../crypto/encoding.js';
import { InTotoError, ModelError } from '../errors.js';
import { pae } from '../model/envelope.js';
import { BUNDLE_MEDIA_TYPE, BUNDLE_MEDIA_TYPES, PAYLOAD_TYPE } from './format.js';

/**
 * Sigstore bundles as OMS uses them (spec §4): reading one into its three methods' shapes,
 * and writing the key and certificate kinds. Only the structure is checked here; signatures
 * are checked by the method's verifier, and the payload is read only from verified bytes.
 */

/** What `verificationMaterial` holds, by signing method (spec §4.1). */
export type Material =
  | { readonly method: 'key'; readonly hint: string | undefined; readonly rawBytes: Buffer | undefined }
  | { readonly method: 'certificate'; readonly chain: readonly Buffer[] }
  | { readonly method: 'sigstore'; readonly certificate: Buffer; readonly tlogEntries: number };

export interface BundleSignature {
  readonly sig: Buffer;
}

export interface ParsedBundle {
  readonly mediaType: string;
  readonly material: Material;
  readonly payloadType: string;
  /** The payload bytes exactly as signed (decoded from base64). */
  readonly payload: Buffer;
  readonly signature: BundleSignature;
  /** The whole document, for the Sigstore library (keyless bundles). */
  readonly json: JsonObject;
}

export const BUNDLE_LIMITS = { maxBytes: 256 * 1024 * 1024, maxCertificates: 10 } as const;

const bad = (source: string, message: string, cause?: unknown): ModelError =>
  new ModelError('E_MODEL_BUNDLE', `${source}: ${message}`, { context: { file: source }, ...(cause === undefined ? {} : { cause }) });

function base64(source: string, value: JsonValue | undefined, what: string): Buffer {
  if (typeof value !== 'string' || value === '') throw bad(source, `${what} must be a non-empty base64 string`);
  try {
    return Buffer.from(decodeBase64Strict(value, what));
  } catch (cause) {
    throw bad(source, `${what} is not valid base64`, cause);
  }
}

/**
 * Parses a bundle file's bytes. The envelope must hold exactly one signature (OMS signs with
 * one key); `keyid` may be absent, empty or null (spec §4.1).
 * @throws ModelError E_MODEL_BUNDLE
 */
export function readBundle(bytes: Uint8Array, source: string): ParsedBundle {
  let document: JsonValue;
  try {
    document = parseJson(bytes, { source, maxDepth: 32 });
  } catch (cause) {
    throw bad(source, `not a JSON document (${cause instanceof InTotoError ? cause.message : String(cause)})`, cause);
  }
  if (!isJsonObject(document)) throw bad(source, 'a bundle must be a JSON object');
  const mediaType = getOwn(document, 'mediaType');
  if (typeof mediaType !== 'string' || !BUNDLE_MEDIA_TYPES.includes(mediaType)) {
    throw bad(source, `mediaType ${JSON.stringify(mediaType)} is not a Sigstore bundle v0.3 (${BUNDLE_MEDIA_TYPE})`);
  }
  const vm = getOwn(document, 'verificationMaterial');
  if (!isJsonObject(vm)) throw bad(source, 'verificationMaterial is missing');
  const envelope = getOwn(document, 'dsseEnvelope');
  if (!isJsonObject(envelope)) {
    throw bad(source, getOwn(document, 'messageSignature') !== undefined ? 'holds a message signature, not the DSSE envelope OMS uses' : 'dsseEnvelope is missing');
  }
  const payloadType = getOwn(envelope, 'payloadType');
  if (typeof payloadType !== 'string') throw bad(source, 'dsseEnvelope.payloadType must be a string');
  const payload = base64(source, getOwn(envelope, 'payload'), 'dsseEnvelope.payload');
  const signatures = getOwn(envelope, 'signatures');
  if (!Array.isArray(signatures) || signatures.length !== 1) {
    throw bad(source, `dsseEnvelope must hold exactly one signature, it has ${Array.isArray(signatures) ? signatures.length : 'none'}`);
  }
  const signature = signatures[0] as JsonValue;
  if (!isJsonObject(signature)) throw bad(source, 'dsseEnvelope.signatures[0] must be an object');
  const keyid = getOwn(signature, 'keyid');
  if (keyid !== undefined && keyid !== null && typeof keyid !== 'string') throw bad(source, 'dsseEnvelope.signatures[0].keyid must be a string or null');
  const sig = base64(source, getOwn(signature, 'sig'), 'dsseEnvelope.signatures[0].sig');
  return { mediaType, material: readMaterial(vm, source), payloadType, payload, signature: { sig }, json: document };
}

function readMaterial(vm: JsonObject, source: string): Material {
  const present = ['publicKey', 'x509CertificateChain', 'certificate'].filter((k) => getOwn(vm, k) !== undefined);
  if (present.length !== 1) throw bad(source, `verificationMaterial must hold one of publicKey, x509CertificateChain or certificate${present.length > 1 ? `, not ${present.join(' and ')}` : ''}`);
  const tlog = getOwn(vm, 'tlogEntries');
  if (tlog !== undefined && !Array.isArray(tlog)) throw bad(source, 'verificationMaterial.tlogEntries must be a list');
  const publicKey = getOwn(vm, 'publicKey');
  if (publicKey !== undefined) {
    if (!isJsonObject(publicKey)) throw bad(source, 'verificationMaterial.publicKey must be an object');
    const hint = getOwn(publicKey, 'hint');
    const raw = getOwn(publicKey, 'rawBytes');
    if (hint !== undefined && hint !== null && typeof hint !== 'string') throw bad(source, 'publicKey.hint must be a string');
    if (hint == null && raw === undefined) throw bad(source, 'publicKey needs a hint or rawBytes');
    return {
      method: 'key',
      hint: typeof hint === 'string' && hint !== '' ? hint : undefined,
      rawBytes: raw === undefined ? undefined : base64(source, raw, 'publicKey.rawBytes'),
    };
  }
  const chain = getOwn(vm, 'x509CertificateChain');
  if (chain !== undefined) {
    const certificates = isJsonObject(chain) ? getOwn(chain, 'certificates') : undefined;
    if (!Array.isArray(certificates) || certificates.length === 0 || certificates.length > BUNDLE_LIMITS.maxCertificates) {
      throw bad(source, `x509CertificateChain.certificates must list 1 to ${BUNDLE_LIMITS.maxCertificates} certificates`);
    }
    return {
      method: 'certificate',
      chain: certificates.map((c, i) => base64(source, isJsonObject(c) ? getOwn(c, 'rawBytes') : undefined, `x509CertificateChain.certificates[${i}].rawBytes`)),
    };
  }
  const certificate = getOwn(vm, 'certificate');
  const rawCertificate = base64(source, isJsonObject(certificate ?? null) ? getOwn(certificate as JsonObject, 'rawBytes') : undefined, 'certificate.rawBytes');
  if (!Array.isArray(tlog) || tlog.length === 0) throw bad(source, 'a Sigstore (keyless) bundle needs at least one transparency log entry (tlogEntries)');
  return { method: 'sigstore', certificate: rawCertificate, tlogEntries: tlog.length };
}

/** DSSE's PAE over the bundle's payload, as signed. */
export function bundlePae(bundle: Pick<ParsedBundle, 'payloadType' | 'payload'>): Uint8Array {
  return pae(bundle.payloadType, bundle.payload);
}

/**
 * model_signing 0.2's PAE, kept only to verify its signatures: its `pae` formatted the payload
 * bytes into a Python string, so what it signed is `DSSEV1 <n> <type> <m> b'...'` with the
 * payload as Python's repr of bytes (and it hashed with SHA-256 whatever the curve).
 */
export function paeV02(bundle: Pick<ParsedBundle, 'payloadType' | 'payload'>): Buffer {
  const type = bundle.payloadType;
  return Buffer.from(`DSSEV1 ${Buffer.byteLength(type)} ${type} ${bundle.payload.length} ${pythonBytesRepr(bundle.payload)}`, 'utf8');
}

/** Python's repr() of a bytes object. */
export function pythonBytesRepr(bytes: Uint8Array): string {
  const quote = bytes.includes(0x27) && !bytes.includes(0x22) ? '"' : "'";
  const q = quote.charCodeAt(0);
  const parts: string[] = ['b', quote];
  for (const c of bytes) {
    if (c === q || c === 0x5c) parts.push('\\', String.fromCharCode(c));
    else if (c === 0x09) parts.push('\\t');
    else if (c === 0x0a) parts.push('\\n');
    else if (c === 0x0d) parts.push('\\r');
    else if (c < 0x20 || c >= 0x7f) parts.push(`\\x${c.toString(16).padStart(2, '0')}`);
    else parts.push(String.fromCharCode(c));
  }
  parts.push(quote);
  return parts.join('');
}

/** What a signer's bundle holds besides the envelope. */
export type WrittenMaterial = { readonly method: 'key'; readonly hint: string } | { readonly method: 'certificate'; readonly chain: readonly Buffer[] };

/**
 * A bundle as model_signing 1.1 writes it: compact JSON, keys `mediaType`,
 * `verificationMaterial`, `dsseEnvelope`; `tlogEntries: []` and `keyid: ""`.
 */
export function bundleText(material: WrittenMaterial, payload: Uint8Array, signature: Uint8Array): string {
  const verificationMaterial =
    material.method === 'key'
      ? { publicKey: { hint: material.hint }, tlogEntries: [] }
      : { x509CertificateChain: { certificates: material.chain.map((der) => ({ rawBytes: der.toString('base64') })) }, tlogEntries: [] };
  return JSON.stringify({
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial,
    dsseEnvelope: {
      payload: Buffer.from(payload).toString('base64'),
      payloadType: PAYLOAD_TYPE,
      signatures: [{ sig: Buffer.from(signature).toString('base64'), keyid: '' }],
    },
  });
}

import { CryptoError, InTotoError, IoError, ParseError } from '../errors.js';
import { canonicalBytes, pythonJsonDumps } from '../canonical/encode.js';
import { getOwn, isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { parseJson } from '../canonical/parse.js';
import { LIMITS } from '../io/files.js';
import { bytesToHex, decodeBase64Strict, encodeBase64, hexToBytes } from '../crypto/encoding.js';
import { keyHasKeyid, type PublicKey } from '../crypto/keys.js';
import { verifySignature, type SigningKey } from '../crypto/signatures.js';
import { checkSchema, DSSE_SCHEMA, METABLOCK_SCHEMA } from './schemas.js';

/**
 * The two signature envelopes, auto-detected on load:
 * - Metablock (in-toto 1.3.1): `{"signatures": [{keyid, sig: hex}], "signed": {...}}`, each
 *   signature over the canonical JSON of `signed`;
 * - DSSE (ITE-5): `{"payload": b64, "payloadType", "signatures": [{keyid?, sig: b64}]}`, each
 *   signature over PAE(payloadType, payload).
 *
 * An envelope keeps the exact bytes its signatures cover. Verification ({@link verifiedPayload})
 * checks a signature over those bytes and only then decodes the payload from those same bytes
 * (THREATS.md invariant 4): nothing outside the signed part is ever read, and nothing is
 * re-serialised between the check and the use.
 */

export const DSSE_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface EnvelopeSignature {
  /** The keyid the signature claims; DSSE allows it to be absent. */
  readonly keyid: string | undefined;
  readonly sig: Uint8Array;
  /**
   * DSSE only: the bytes of `sig` read as hex, when its text is lowercase hex (in-toto 1.4
   * wrote DSSE signatures in hex). Never verified as a signature: only used to say why one
   * fails ({@link signatureEncodingProblem}).
   */
  readonly hexReading?: Uint8Array;
}

export interface Envelope {
  readonly kind: 'metablock' | 'dsse';
  readonly signatures: readonly EnvelopeSignature[];
  /** The bytes every signature covers: canonical JSON of `signed`, or the DSSE PAE. */
  readonly signedBytes: Uint8Array;
  /** Where the payload sits inside signedBytes, and how it is encoded. */
  readonly payloadOffset: number;
  readonly payloadEncoding: 'canonical-json' | 'json';
  readonly source: string;
}

/**
 * DSSE v1 pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body,
 * lengths in UTF-8 bytes as ASCII decimal.
 */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = Buffer.from(payloadType, 'utf8');
  const head = Buffer.from(`DSSEv1 ${type.length} `, 'ascii');
  const mid = Buffer.from(` ${payload.length} `, 'ascii');
  return new Uint8Array(Buffer.concat([head, type, mid, payload]));
}

export interface EnvelopeLimits {
  /** Largest DSSE payload, decoded (default LIMITS.dssePayloadBytes). */
  readonly maxPayloadBytes?: number;
}

/**
 * Parses metadata bytes (strict JSON) and recognises the envelope. Fields outside the signed
 * part that neither envelope defines are ignored (never read); inside it they are errors.
 * @throws ParseError (JSON); FormatError E_SCHEMA; CryptoError E_ENVELOPE (neither envelope, or
 *   both); ParseError E_BASE64 (DSSE); IoError E_LIMIT (a DSSE payload over
 *   `limits.maxPayloadBytes`, checked before it is decoded)
 */
export function parseEnvelope(bytes: Uint8Array, source: string, limits: EnvelopeLimits = {}): Envelope {
  const document = parseJson(bytes, { source });
  if (!isJsonObject(document)) throw new CryptoError('E_ENVELOPE', `${source}: metadata must be a JSON object`);
  const signed = getOwn(document, 'signed') !== undefined;
  const payload = getOwn(document, 'payload') !== undefined;
  // Unknown fields beside the signed part are ignored (schemas.ts), but not these two: which
  // one the signatures cover would depend on which we looked at first.
  if (signed && payload) {
    throw new CryptoError('E_ENVELOPE', `${source}: both a Metablock ("signed") and a DSSE envelope ("payload")`, { context: { file: source } });
  }
  if (signed) return metablockFrom(document, source);
  if (payload) return dsseFrom(document, source, limits.maxPayloadBytes ?? LIMITS.dssePayloadBytes);
  throw new CryptoError('E_ENVELOPE', `${source}: neither a Metablock ("signed") nor a DSSE envelope ("payload")`, {
    context: { file: source },
  });
}

function metablockFrom(document: JsonObject, source: string): Envelope {
  refuseGpgSignatures(document, source);
  checkSchema(METABLOCK_SCHEMA, document, source);
  const signed = document['signed'] as JsonValue;
  const envelope = metablockOver(document['signatures'] as readonly JsonObject[], canonicalBytes(signed), source);
  decodedSigned.set(envelope, signed);
  return envelope;
}

/**
 * A GPG signature (`{keyid, other_headers, signature}`, as in-toto's `sign_gpg` writes) is
 * refused by name, before the schema would call its fields unexpected.
 * @throws CryptoError E_KEY_UNSUPPORTED
 */
function refuseGpgSignatures(document: JsonObject, source: string): void {
  const signatures = getOwn(document, 'signatures');
  if (!Array.isArray(signatures)) return;
  for (const signature of signatures.slice(0, 100)) {
    if (isJsonObject(signature) && (getOwn(signature, 'other_headers') !== undefined || (getOwn(signature, 'signature') !== undefined && getOwn(signature, 'sig') === undefined))) {
      throw new CryptoError(
        'E_KEY_UNSUPPORTED',
        `${source}: signed with GPG (a signature with other_headers): GPG keys are not supported; re-sign with an ed25519, RSA or ECDSA key file`,
        { context: { file: source } },
      );
    }
  }
}

/**
 * A Metablock envelope whose signatures cover `signedBytes`, the canonical bytes of its
 * `signed` object, for a reader that made those bytes itself in its own pass over the file
 * (link-reader.ts). `signatures` is checked as parseEnvelope checks it: GPG signatures refused,
 * then the Metablock schema (the `signed` object, which the reader holds, stands in as an
 * empty object).
 * @throws CryptoError E_KEY_UNSUPPORTED; FormatError E_SCHEMA
 */
export function metablockEnvelope(signatures: JsonValue, signedBytes: Uint8Array, source: string): Envelope {
  refuseGpgSignatures({ signatures }, source);
  checkSchema(METABLOCK_SCHEMA, { signatures, signed: {} }, source);
  return metablockOver(signatures as readonly JsonObject[], signedBytes, source);
}

function metablockOver(signatures: readonly JsonObject[], signedBytes: Uint8Array, source: string): Envelope {
  const sigs = signatures.map((s) => ({
    keyid: s['keyid'] as string,
    sig: hexToBytes(s['sig'] as string) ?? new Uint8Array(),
  }));
  // Frozen: what was decoded with these bytes (decodedSigned, link-reader.ts) is handed out
  // when a signature over envelope.signedBytes verifies, so those must stay the same bytes.
  return Object.freeze({ kind: 'metablock', signatures: Object.freeze(sigs), signedBytes, payloadOffset: 0, payloadEncoding: 'canonical-json', source });
}

/**
 * A Metablock's `signed` value as the strict parser read it, kept beside the canonical bytes
 * made from it. Decoding those bytes again would give back exactly this value: canonical
 * encoding is one-to-one on what the strict parser yields (no duplicate keys, integers only,
 * no lone surrogates), so the bytes a signature covers and this value say the same thing, and
 * the second parse of a 10 MB link (a third of its loading time) is skipped. It is never
 * handed out before a signature over those bytes has verified.
 */
const decodedSigned = new WeakMap<Envelope, JsonValue>();

function dsseFrom(document: JsonObject, source: string, maxPayloadBytes: number): Envelope {
  checkSchema(DSSE_SCHEMA, document, source);
  const payloadType = document['payloadType'] as string;
  if (payloadType !== DSSE_PAYLOAD_TYPE) {
    throw new CryptoError('E_ENVELOPE', `${source}: DSSE payloadType ${JSON.stringify(payloadType)} is not ${DSSE_PAYLOAD_TYPE}`);
  }
  const encoded = document['payload'] as string;
  // Bounded before decoding, like every input (THREATS.md invariant 3): base64 holds 3 bytes
  // per 4 characters.
  const size = Math.floor(encoded.length / 4) * 3;
  if (size > maxPayloadBytes) {
    throw new IoError('E_LIMIT', `${source}: DSSE payload of about ${size} bytes, over the limit of ${maxPayloadBytes}`, {
      context: { file: source },
    });
  }
  const payload = decodeBase64Strict(encoded, `${source}: payload`);
  const signatures = (document['signatures'] as readonly JsonObject[]).map((s, i): EnvelopeSignature => {
    const keyid = s['keyid'];
    const text = s['sig'] as string;
    const hex = text.length >= 64 ? hexToBytes(text) : undefined;
    let sig: Uint8Array;
    try {
      sig = decodeBase64Strict(text, `${source}: signatures[${i}].sig`);
    } catch (error) {
      if (hex === undefined) throw error;
      throw new ParseError('E_BASE64', `${source}: signatures[${i}].sig is hex, not base64: ${HEX_ADVICE}`, { context: { file: source } });
    }
    return { keyid: typeof keyid === 'string' && keyid !== '' ? keyid : undefined, sig, ...(hex === undefined ? {} : { hexReading: hex }) };
  });
  const signedBytes = pae(payloadType, payload);
  return { kind: 'dsse', signatures, signedBytes, payloadOffset: signedBytes.length - payload.length, payloadEncoding: 'json', source };
}

/**
 * True when some signature in the envelope, claiming `key`'s keyid in either form (in-toto
 * 1.3.1's or in-toto 2.x's, see crypto/keys.ts; or, in DSSE, no keyid), verifies under `key`
 * over the signed bytes. The keyid only picks the signatures to try: the verdict is the key's.
 */
export function isSignedBy(envelope: Envelope, key: PublicKey): boolean {
  return envelope.signatures.some(
    (s) => (s.keyid === undefined ? envelope.kind === 'dsse' : keyHasKeyid(key, s.keyid)) && verifySignature(key, s.sig, envelope.signedBytes),
  );
}

const HEX_ADVICE = 'DSSE signatures are base64 (in-toto 1.4 wrote them in hex, which in-toto >= 2.0 and securesystemslib >= 0.28 refuse); re-sign the file (intoto-sign --use-dsse)';

/**
 * Why `key`'s signature on a DSSE envelope fails when the reason is its encoding: a signature
 * claiming the key's keyid whose text, read as hex rather than base64, would verify. Such a
 * signature is never accepted; this only names the fault. Undefined otherwise. Never throws.
 */
export function signatureEncodingProblem(envelope: Envelope, key: PublicKey): string | undefined {
  if (envelope.kind !== 'dsse') return undefined;
  for (const s of envelope.signatures) {
    if (s.hexReading === undefined || (s.keyid !== undefined && !keyHasKeyid(key, s.keyid))) continue;
    if (verifySignature(key, s.hexReading, envelope.signedBytes)) return `its DSSE signature by ${key.keyid.slice(0, 8)} is hex, not base64: ${HEX_ADVICE}`;
  }
  return undefined;
}

/**
 * The keys, among `candidates`, that signed the envelope. Attribution is by the key that
 * verified, never by a file name or a claimed keyid alone.
 */
export function signersOf(envelope: Envelope, candidates: Iterable<PublicKey>): PublicKey[] {
  const signers: PublicKey[] = [];
  for (const key of candidates) if (isSignedBy(envelope, key)) signers.push(key);
  return signers;
}

/**
 * The payload, decoded from the verified bytes, when `key` signed the envelope; undefined
 * otherwise.
 * @throws ParseError when the signed bytes do not decode (a signer signed garbage)
 */
export function verifiedPayload(envelope: Envelope, key: PublicKey): JsonValue | undefined {
  return isSignedBy(envelope, key) ? decodePayload(envelope) : undefined;
}

/**
 * The payload WITHOUT any signature check. Only for tools that must read unsigned or
 * untrusted metadata on purpose (re-signing, `match-products`, showing a file): never for a
 * verdict.
 * @throws ParseError
 */
export function unverifiedPayload(envelope: Envelope): JsonValue {
  return decodePayload(envelope);
}

function decodePayload(envelope: Envelope): JsonValue {
  const decoded = decodedSigned.get(envelope);
  if (decoded !== undefined) return decoded;
  const bytes = envelope.signedBytes.subarray(envelope.payloadOffset);
  const source = envelope.source;
  try {
    if (envelope.payloadEncoding === 'canonical-json') return parseJson(bytes, { source, canonical: true });
    // A DSSE payload is JSON; some producers write it as canonical JSON, whose raw control
    // characters plain JSON forbids. Both readings are exact, so accept either.
    try {
      return parseJson(bytes, { source });
    } catch (error) {
      if (error instanceof InTotoError && error.code === 'E_JSON_SYNTAX') return parseJson(bytes, { source, canonical: true });
      throw error;
    }
  } catch (error) {
    if (error instanceof InTotoError) throw error.withContext('', { file: envelope.source });
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * A Metablock file's text, laid out as the reference writes it (Python json.dumps with
 * indent=1, sorted keys, ASCII escapes), signatures over the canonical bytes of `signed`.
 * Existing signatures (with `append`) are kept before the new ones; a key that already signed
 * is not added twice.
 */
export function metablockText(signed: JsonValue, keys: readonly SigningKey[], existing: readonly EnvelopeSignature[] = []): string {
  const bytes = canonicalBytes(signed);
  const signatures: JsonObject[] = existing.map((s) => ({ keyid: s.keyid ?? '', sig: bytesToHex(s.sig) }));
  for (const key of keys) {
    if (signatures.some((s) => s['keyid'] === key.keyid)) continue;
    signatures.push({ keyid: key.keyid, sig: bytesToHex(key.sign(bytes)) });
  }
  return pythonJsonDumps({ signatures, signed });
}

/**
 * A DSSE envelope's text. The payload is `signed` as compact JSON with sorted keys and
 * escaped control characters (deterministic, and plain JSON for every reader); signatures
 * cover its PAE.
 */
export function dsseText(signed: JsonValue, keys: readonly SigningKey[], existing: readonly EnvelopeSignature[] = []): string {
  const payload = new Uint8Array(Buffer.from(pythonJsonDumps(signed, null), 'utf8'));
  const bytes = pae(DSSE_PAYLOAD_TYPE, payload);
  const signatures: JsonObject[] = existing.map((s) => ({ keyid: s.keyid ?? '', sig: encodeBase64(s.sig) }));
  for (const key of keys) {
    if (signatures.some((s) => s['keyid'] === key.keyid)) continue;
    signatures.push({ keyid: key.keyid, sig: encodeBase64(key.sign(bytes)) });
  }
  return pythonJsonDumps({ payload: encodeBase64(payload), payloadType: DSSE_PAYLOAD_TYPE, signatures });
}

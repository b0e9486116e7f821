import { isAscii } from 'node:buffer';
import { canonicalBytes } from '../canonical/encode.js';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { parseJson } from '../canonical/parse.js';
import { InTotoError } from '../errors.js';
import type { PublicKey } from '../crypto/keys.js';
import type { ArtifactTable } from './artifact-table.js';
import { DECLINE, scanArtifacts, skip, type Cursor } from './artifact-scan.js';
import { isSignedBy, metablockEnvelope, parseEnvelope, signatureEncodingProblem, signersOf, verifiedPayload, type Envelope } from './envelope.js';
import { makeLink, type Link } from './link.js';
import { checkSchema, LINK_SCHEMA } from './schemas.js';

/**
 * What a file in a link slot holds, read from its bytes and attributed to the keys whose
 * signatures verify over exactly the bytes it was decoded from.
 *
 * A link Metablock of the usual form is read in one pass over the file's bytes: the strict
 * parse, the canonical bytes its signatures cover, and the Link with its artifact tables
 * checked, all at once, where the general path parses the file, encodes `signed` again and
 * walks it a third time to build the Link. The canonical bytes are written over the file's
 * own bytes, behind the read position (they are never longer than the text they stand for),
 * so that a 10 MB link needs no second 10 MB buffer, and the signatures are checked at once,
 * before the buffer is reused: nothing that refers to it is handed out.
 *
 * The pass takes only the form links are written in (the reference's and ours): ASCII bytes,
 * an object with `signatures` then `signed`, the link's seven fields in canonical order,
 * artifact names and digests of plain characters (no escapes), keys in strictly increasing
 * order, and everything valid. Anything else, malformed or merely unusual, makes it decline,
 * and the file is read by the general path (parseEnvelope, then linkFromJson after the
 * signature check), which reports the error if there is one: the errors, their codes and their
 * order are the general path's own. Within its form, the pass checks the same rules with the
 * same functions (the names' and digests' rules, the JSON Schemas through ajv, the strict
 * parser for every field other than the artifact maps), or stricter ones. The loop over the
 * artifact maps, most of the work, is in artifact-scan.ts.
 *
 * Why the Link it builds is the one the signature covers (THREATS.md invariant 4): the pass
 * parses the file into a value V (the artifact maps held as tables) and writes canonical(V) as
 * the signed bytes; the general path would decode those bytes back into V (canonical encoding
 * is one-to-one on what the strict parser yields, see envelope.ts) and build the same Link.
 * Property tests hold the two paths together (test/model/link-reader.test.ts). The Link is
 * handed out only with the keys whose signature over those bytes verified.
 *
 * A second link format (an in-toto Statement with a link predicate, in DSSE) plugs in after
 * the general path: {@link readSlot} hands its payload to the caller, which tells the kinds
 * apart by their type (verify/link-load.ts).
 */

const LINK_KEYS = ['_type', 'byproducts', 'command', 'environment', 'materials', 'name', 'products'] as const;
const QUOTED_KEYS = new Map(LINK_KEYS.map((k) => [k, Buffer.from(`"${k}"`, 'latin1')]));
const SIGNATURES_KEY = Buffer.from('"signatures"', 'latin1');
const SIGNED_KEY = Buffer.from('"signed"', 'latin1');

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

/** What a link slot's file holds, and which of the candidate keys signed it. */
export type SlotContent =
  /** No candidate verified; `encodingProblem` names a signature in the wrong encoding. */
  | { readonly kind: 'unsigned'; readonly encodingProblem?: string }
  | { readonly kind: 'link'; readonly signers: readonly PublicKey[]; readonly link: Link }
  | { readonly kind: 'payload'; readonly signers: readonly PublicKey[]; readonly payload: JsonValue };

/**
 * Reads the bytes of a file found in a link slot and attributes it to the `candidates` whose
 * signatures verify: a link Metablock in one pass when it has the usual form (overwriting
 * `bytes` with its canonical bytes: pass a buffer of your own, such as a reused read buffer),
 * anything else (DSSE, a sublayout, an unusual or malformed link) through parseEnvelope, from
 * `again()` when the pass had started to write. The Link or payload comes only from the bytes
 * the first verifying key's signature covers.
 * @throws as parseEnvelope: ParseError; FormatError E_SCHEMA; CryptoError E_ENVELOPE;
 *   ParseError E_BASE64; IoError E_LIMIT; and ParseError when the signed bytes do not decode
 *   (a signer signed garbage); whatever `again` throws
 */
export function readSlot(bytes: Uint8Array, source: string, candidates: readonly PublicKey[], again: () => Uint8Array): SlotContent {
  const pass = onePass(bytes, source);
  if (pass.kind === 'read') {
    // Checked now, while `bytes` still holds what they cover; nothing referring to it is kept.
    const signers = signersOf(pass.envelope, candidates);
    return signers.length === 0 ? { kind: 'unsigned' } : { kind: 'link', signers, link: pass.link };
  }
  const envelope = parseEnvelope(pass.kind === 'declined-untouched' ? bytes : again(), source);
  // The first key that verifies yields the payload (one signature check, not two: a check of
  // a 10 MB payload costs tens of milliseconds); the others are only checked.
  let payload: JsonValue | undefined;
  const signers: PublicKey[] = [];
  for (const key of candidates) {
    if (payload === undefined) {
      payload = verifiedPayload(envelope, key);
      if (payload !== undefined) signers.push(key);
    } else if (isSignedBy(envelope, key)) signers.push(key);
  }
  if (payload !== undefined) return { kind: 'payload', signers, payload };
  // Why none verified, when the reason is a DSSE signature in hex (signatureEncodingProblem).
  const problem = candidates.map((key) => signatureEncodingProblem(envelope, key)).find((p) => p !== undefined);
  return problem === undefined ? { kind: 'unsigned' } : { kind: 'unsigned', encodingProblem: problem };
}

/**
 * The one pass on a copy of `bytes` (for the differential tests and tools): the envelope over
 * the canonical bytes it wrote, and the Link, or undefined when it declines. Never throws our
 * errors (it declines instead).
 */
export function readLinkMetablock(bytes: Uint8Array, source: string): { readonly envelope: Envelope; readonly link: Link } | undefined {
  const pass = onePass(new Uint8Array(bytes), source);
  if (pass.kind !== 'read') return undefined;
  // A copy of the bytes `pass.envelope` covers, which are the copy just made.
  return { envelope: metablockEnvelope(pass.signatures, pass.envelope.signedBytes.slice(), source), link: pass.link };
}

type Pass =
  | { readonly kind: 'read'; readonly envelope: Envelope; readonly signatures: JsonValue; readonly link: Link }
  | { readonly kind: 'declined-untouched' }
  | { readonly kind: 'declined-written' };

function onePass(bytes: Uint8Array, source: string): Pass {
  // ASCII only: then the bytes are valid UTF-8 without a BOM, and a character is a byte.
  if (!isAscii(bytes)) return { kind: 'declined-untouched' };
  const pass = new OnePass(bytes, source);
  try {
    return pass.metablock();
  } catch (error) {
    if (error === DECLINE || error instanceof InTotoError) return { kind: pass.q === 0 ? 'declined-untouched' : 'declined-written' };
    throw error;
  }
}

class OnePass implements Cursor {
  p = 0;
  /** Where the next canonical byte of `signed` goes, in `out` (the input itself). */
  q = 0;
  readonly out: Uint8Array;

  constructor(
    readonly b: Uint8Array,
    private readonly source: string,
  ) {
    this.out = b;
  }

  metablock(): Pass {
    this.space();
    this.expect(LBRACE, false);
    this.space();
    this.key(SIGNATURES_KEY, false);
    const signatures = this.field(1, false);
    this.space();
    this.expect(COMMA, false);
    this.space();
    this.key(SIGNED_KEY, false);
    if (this.b[this.p] !== LBRACE) throw DECLINE;
    const link = this.signed();
    this.space();
    this.expect(RBRACE, false);
    this.space();
    if (this.p !== this.b.length || this.q > this.p) throw DECLINE;
    // The signature list checked as parseEnvelope checks it (inside the pass: an error declines).
    const envelope = metablockEnvelope(signatures, this.out.subarray(0, this.q), this.source);
    return { kind: 'read', envelope, signatures, link };
  }

  /** `signed`: the seven fields of a link in canonical order, at nesting 2. */
  private signed(): Link {
    this.expect(LBRACE, true);
    const fields = new Map<string, JsonValue>();
    let materials: ArtifactTable | undefined;
    let products: ArtifactTable | undefined;
    for (const [i, name] of LINK_KEYS.entries()) {
      this.space();
      this.key(QUOTED_KEYS.get(name) as Buffer, true);
      if (name === 'materials') materials = scanArtifacts(this);
      else if (name === 'products') products = scanArtifacts(this);
      else {
        fields.set(name, this.field(2, true));
        // A sublayout (or anything else) is for the general path; no need to read further.
        if (name === '_type' && fields.get(name) !== 'link') throw DECLINE;
      }
      this.space();
      this.expect(i < LINK_KEYS.length - 1 ? COMMA : RBRACE, true);
    }
    if (materials === undefined || products === undefined) throw DECLINE;
    // The schema of everything but the artifact maps, by the same validator as linkFromJson;
    // the maps (ARTIFACTS: an object of at most CAPS.artifactsPerLink entries) were checked
    // entry by entry, and empty objects stand in for them.
    const value = Object.fromEntries(fields) as Record<string, JsonValue>;
    checkSchema(LINK_SCHEMA, { ...value, materials: {}, products: {} }, this.source);
    return makeLink({
      name: value['name'] as string,
      command: value['command'] as readonly string[],
      materials,
      products,
      byproducts: value['byproducts'] as JsonObject,
      environment: value['environment'] as JsonObject,
    });
  }

  /**
   * One field, found by its extent and read by the strict parser as a document at `depth`
   * (so the depth cap counts from the envelope's root); its canonical bytes written if `emit`.
   */
  private field(depth: number, emit: boolean): JsonValue {
    const end = valueEnd(this.b, this.p);
    const text = Buffer.from(this.b.buffer, this.b.byteOffset + this.p, end - this.p).toString('latin1');
    const value = parseJson(text, { source: this.source, maxDepth: 64 - depth });
    this.p = end;
    if (emit) {
      const bytes = canonicalBytes(value);
      // Canonical JSON is never longer than the text it was read from; checked all the same,
      // since the bytes go over the input behind the read position.
      if (this.q + bytes.length > this.p) throw DECLINE;
      this.out.set(bytes, this.q);
      this.q += bytes.length;
    }
    return value;
  }

  /** A quoted key with nothing escaped, then the colon; whitespace around the colon skipped. */
  private key(quoted: Buffer, emit: boolean): void {
    const { b } = this;
    for (let i = 0; i < quoted.length; i++) if (b[this.p + i] !== quoted[i]) throw DECLINE;
    this.p += quoted.length;
    if (emit) {
      this.out.set(quoted, this.q);
      this.q += quoted.length;
    }
    this.space();
    this.expect(COLON, emit);
    this.space();
  }

  private expect(c: number, emit: boolean): void {
    if (this.b[this.p] !== c) throw DECLINE;
    this.p++;
    if (emit) this.out[this.q++] = c;
  }

  private space(): void {
    this.p = skip(this.b, this.p);
  }
}

/**
 * Where the JSON value starting at `p` ends, found by its brackets and strings only (what is
 * inside is for the strict parser to judge). Declines what it cannot delimit: an unterminated
 * string, unbalanced brackets, nesting past 64.
 */
function valueEnd(b: Uint8Array, p: number): number {
  const n = b.length;
  let depth = 0;
  for (;;) {
    if (p >= n) throw DECLINE;
    const c = b[p] as number;
    if (c === QUOTE) {
      p++;
      for (;;) {
        if (p >= n) throw DECLINE;
        const s = b[p] as number;
        if (s === QUOTE) break;
        p += s === BACKSLASH ? 2 : 1;
      }
      p++;
    } else if (c === LBRACE || c === LBRACKET) {
      if (++depth > 64) throw DECLINE;
      p++;
    } else if (c === RBRACE || c === RBRACKET) {
      if (--depth < 0) throw DECLINE;
      p++;
    } else if (depth === 0 && (c === COMMA || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09)) {
      return p;
    } else {
      p++;
    }
    if (depth === 0 && (c === QUOTE || c === RBRACE || c === RBRACKET)) return p;
  }
}

import { isAscii } from 'node:buffer';
import { canonicalBytes } from '../canonical/encode.js';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { parseJsonValueAt } from '../canonical/parse.js';
import { InTotoError } from '../errors.js';
import type { PublicKey } from '../crypto/keys.js';
import type { ArtifactMap } from './artifacts.js';
import { DECLINE, scanArtifacts, skip, type Cursor } from './artifact-scan.js';
import { isSignedBy, metablockEnvelope, parseEnvelope, verifiedPayload, type Envelope } from './envelope.js';
import { makeLink, type Link } from './link.js';
import { checkSchema, LINK_SCHEMA } from './schemas.js';

/**
 * A link Metablock read in one pass over the file's bytes: the strict parse, the canonical
 * bytes its signatures cover, and the Link with its artifact maps checked, all at once, where
 * the general path parses the file, encodes `signed` again and walks it a third time to build
 * the Link (two thirds of intoto-verify's time on links of 50,000 artifacts).
 *
 * The pass takes only the form links are written in (the reference's and ours): ASCII bytes,
 * an object with `signatures` then `signed`, the link's seven fields in canonical order,
 * artifact names and digests of plain characters (no escapes), keys in strictly increasing
 * order, and everything valid. Anything else, malformed or merely unusual, makes it decline,
 * and the file is read by the general path (parseEnvelope, then linkFromJson after the
 * signature check), which reports the error if there is one: the errors, their codes and their
 * order are the general path's own. Within its form, the pass checks the same rules with the
 * same functions (artifactNameProblem, digestProblem, the JSON Schemas through ajv, the
 * strict parser for every field other than the artifact maps), or stricter ones. The loop over
 * the artifact maps, most of the work, is in artifact-scan.ts.
 *
 * Why the Link it builds is the one the signature covers (THREATS.md invariant 4): the pass
 * parses the file into a value V (the artifact maps held as Maps) and writes canonical(V) as
 * the signed bytes; the general path would decode those bytes back into V (canonical encoding
 * is one-to-one on what the strict parser yields, see envelope.ts) and build the same Link.
 * Property tests hold the two paths together (test/model/link-reader.test.ts). The Link is
 * kept beside its envelope and handed out by {@link verifiedContent} only once a signature
 * over those bytes has verified.
 */

const LINK_KEYS = ['_type', 'byproducts', 'command', 'environment', 'materials', 'name', 'products'] as const;
const QUOTED_KEYS = new Map(LINK_KEYS.map((k) => [k, Buffer.from(`"${k}"`, 'latin1')]));
const SIGNATURES_KEY = Buffer.from('"signatures"', 'latin1');
const SIGNED_KEY = Buffer.from('"signed"', 'latin1');

const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/** The Links built by the pass, by envelope; read only through {@link verifiedContent}. */
const prebuilt = new WeakMap<Envelope, Link>();

/**
 * Reads the bytes of a file found in a link slot: a link Metablock in one pass when it has
 * the usual form, anything else (DSSE, a sublayout, an unusual or malformed link) through
 * parseEnvelope. Nothing is verified yet.
 * @throws as parseEnvelope: ParseError; FormatError E_SCHEMA; CryptoError E_ENVELOPE;
 *   ParseError E_BASE64
 */
export function readSlotEnvelope(bytes: Uint8Array, source: string): Envelope {
  const read = readLinkMetablock(bytes, source);
  if (read === undefined) return parseEnvelope(bytes, source);
  prebuilt.set(read.envelope, read.link);
  return read.envelope;
}

/** What a signed file holds: a link, or another payload (a sublayout) as JSON. */
export type VerifiedContent = { readonly kind: 'link'; readonly link: Link } | { readonly kind: 'payload'; readonly payload: JsonValue };

/**
 * The content of the envelope when `key` signed it (one signature check), undefined
 * otherwise: the Link the one pass built, or the payload decoded from the verified bytes.
 * @throws ParseError when the signed bytes do not decode (a signer signed garbage)
 */
export function verifiedContent(envelope: Envelope, key: PublicKey): VerifiedContent | undefined {
  const link = prebuilt.get(envelope);
  if (link !== undefined) return isSignedBy(envelope, key) ? { kind: 'link', link } : undefined;
  const payload = verifiedPayload(envelope, key);
  return payload === undefined ? undefined : { kind: 'payload', payload };
}

/**
 * The one pass (exported for the differential tests): the envelope and the Link, or
 * undefined when the bytes are not a link Metablock of the usual form or not valid.
 * Never throws our errors (it declines instead).
 */
export function readLinkMetablock(bytes: Uint8Array, source: string): { readonly envelope: Envelope; readonly link: Link } | undefined {
  // ASCII only: then the bytes are valid UTF-8 without a BOM, and their latin1 reading is
  // their UTF-8 reading, so that string positions are byte positions.
  if (!isAscii(bytes)) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  try {
    return new Pass(bytes, text, source).metablock();
  } catch (error) {
    if (error === DECLINE || error instanceof InTotoError) return undefined;
    throw error;
  }
}

class Pass implements Cursor {
  p = 0;
  /** Canonical bytes of `signed`, written as it is read; never longer than the input. */
  readonly out: Buffer;
  q = 0;

  constructor(
    readonly b: Uint8Array,
    readonly text: string,
    private readonly source: string,
  ) {
    this.out = Buffer.allocUnsafe(b.length);
  }

  metablock(): { envelope: Envelope; link: Link } {
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
    // Every byte written stands for one read, or for a field no longer than its text: the
    // output cannot outgrow its buffer, and a write past the end (dropped) would show here.
    if (this.p !== this.b.length || this.q > this.out.length) throw DECLINE;
    return { envelope: metablockEnvelope(signatures, this.out.subarray(0, this.q), this.source), link };
  }

  /** `signed`: the seven fields of a link in canonical order, at nesting 2. */
  private signed(): Link {
    this.expect(LBRACE, true);
    const fields = new Map<string, JsonValue>();
    let materials: ArtifactMap | undefined;
    let products: ArtifactMap | undefined;
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

  /** One field read by the strict parser at `depth`, its canonical bytes written if `emit`. */
  private field(depth: number, emit: boolean): JsonValue {
    const { value, end } = parseJsonValueAt(this.text, this.p, depth, { source: this.source });
    this.p = end;
    if (emit) {
      const bytes = canonicalBytes(value);
      if (this.q + bytes.length > this.out.length) throw DECLINE;
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
      if (this.q + quoted.length > this.out.length) throw DECLINE;
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

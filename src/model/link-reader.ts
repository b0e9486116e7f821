import { isAscii } from 'node:buffer';
import { canonicalBytes } from '../canonical/encode.js';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { parseJsonValueAt } from '../canonical/parse.js';
import { InTotoError } from '../errors.js';
import type { PublicKey } from '../crypto/keys.js';
import { DIGEST_HEX_LENGTH, keepArtifactList, type ArtifactMap, type HashDict } from './artifacts.js';
import { digestProblem, makeDigests, MAX_ALGORITHMS } from './digests.js';
import { isSignedBy, metablockEnvelope, parseEnvelope, verifiedPayload, type Envelope } from './envelope.js';
import { makeLink, type Link } from './link.js';
import { artifactNameProblem } from './names.js';
import { CAPS, checkSchema, LINK_SCHEMA } from './schemas.js';

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
 * strict parser for every field other than the artifact maps), or stricter ones.
 *
 * Why the Link it builds is the one the signature covers (THREATS.md invariant 4): the pass
 * parses the file into a value V (the artifact maps held as Maps) and writes canonical(V) as
 * the signed bytes; the general path would decode those bytes back into V (canonical encoding
 * is one-to-one on what the strict parser yields, see envelope.ts) and build the same Link.
 * Property tests hold the two paths together (test/model/link-reader.test.ts). The Link is
 * kept beside its envelope and handed out by {@link verifiedContent} only once a signature
 * over those bytes has verified.
 */

/** Thrown inside the pass to give up; never leaves this module. */
const DECLINE = Symbol('decline');

const LINK_KEYS = ['_type', 'byproducts', 'command', 'environment', 'materials', 'name', 'products'] as const;
const QUOTED_KEYS = new Map(LINK_KEYS.map((k) => [k, Buffer.from(`"${k}"`, 'latin1')]));
const SIGNATURES_KEY = Buffer.from('"signatures"', 'latin1');
const SIGNED_KEY = Buffer.from('"signed"', 'latin1');

/**
 * Byte classes: PLAIN, what a string the pass takes may hold as it is (printable ASCII but the
 * quote and the backslash: nothing to unescape, and its canonical form is itself); HEX, lower-
 * case hexadecimal digits; DIGIT, 0 to 9. One table lookup per byte in the loops below.
 */
const PLAIN = 1;
const HEX = 2;
const DIGIT = 4;
const CLASS = new Uint8Array(256);
for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x22 && c !== 0x5c) CLASS[c] = PLAIN;
for (let c = 0x30; c <= 0x39; c++) CLASS[c] = (CLASS[c] as number) | HEX | DIGIT;
for (let c = 0x61; c <= 0x66; c++) CLASS[c] = (CLASS[c] as number) | HEX;

const QUOTE = 0x22;
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

class Pass {
  private p = 0;
  /** Canonical bytes of `signed`, written as it is read; never longer than the input. */
  private readonly out: Buffer;
  private q = 0;

  constructor(
    private readonly b: Uint8Array,
    private readonly text: string,
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
      if (name === 'materials') materials = this.artifacts();
      else if (name === 'products') products = this.artifacts();
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
    const { b } = this;
    let p = this.p;
    while (p < b.length) {
      const c = b[p] as number;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.p = p;
  }

  /**
   * A materials or products object at nesting 3, its digest dicts at 4: the checks of
   * link.ts (artifactsFromJson) on plain strings in strictly increasing order, the canonical
   * bytes copied as they are read. The hot loop of verification: positions in locals.
   */
  private artifacts(): ArtifactMap {
    const { b, text } = this;
    const out = this.out;
    let p = this.p;
    let q = this.q;
    const map = new Map<string, HashDict>();
    // The entries in order too, for the rule queues (artifactList).
    const names: string[] = [];
    const dicts: HashDict[] = [];
    if (b[p] !== LBRACE) throw DECLINE;
    out[q++] = LBRACE;
    p = skip(b, p + 1);
    if (b[p] === RBRACE) {
      out[q++] = RBRACE;
      this.p = p + 1;
      this.q = q;
      return map;
    }
    let previousStart = -1;
    let previousEnd = -1;
    for (;;) {
      // The name: plain printable ASCII in strictly increasing order (no two the same).
      if (b[p] !== QUOTE) throw DECLINE;
      out[q++] = QUOTE;
      const nameStart = ++p;
      let c = b[p] as number;
      // (Past the end, b[p] is undefined and so is its class: the loop stops, the check fails.)
      while (((CLASS[c] as number) & PLAIN) !== 0) {
        out[q++] = c;
        c = b[++p] as number;
      }
      if (c !== QUOTE) throw DECLINE;
      const nameEnd = p;
      out[q++] = QUOTE;
      if (previousStart >= 0 && !increasing(b, previousStart, previousEnd, nameStart, nameEnd)) throw DECLINE;
      // An all-digit name is an array index, which the general path's Object.keys lists first.
      if (((CLASS[b[nameStart] as number] as number) & DIGIT) !== 0 && digitsOnly(b, nameStart, nameEnd)) throw DECLINE;
      previousStart = nameStart;
      previousEnd = nameEnd;
      const name = text.slice(nameStart, nameEnd);
      if (artifactNameProblem(name) !== undefined) throw DECLINE;
      p = skip(b, p + 1);
      if (b[p] !== COLON) throw DECLINE;
      out[q++] = COLON;
      p = skip(b, p + 1);
      if (b[p] !== LBRACE) throw DECLINE;
      out[q++] = LBRACE;
      p = skip(b, p + 1);

      // The digest dict: 1 to MAX_ALGORITHMS entries, algorithms strictly increasing.
      let count = 0;
      let algorithm0 = '';
      let hex0 = '';
      let algorithms: string[] | undefined;
      let hexes: string[] | undefined;
      let algorithmStart = -1;
      let algorithmEnd = -1;
      for (;;) {
        if (b[p] !== QUOTE || ++count > MAX_ALGORITHMS) throw DECLINE;
        out[q++] = QUOTE;
        const start = ++p;
        c = b[p] as number;
        while (((CLASS[c] as number) & PLAIN) !== 0) {
          out[q++] = c;
          c = b[++p] as number;
        }
        if (c !== QUOTE) throw DECLINE;
        if (algorithmStart >= 0 && !increasing(b, algorithmStart, algorithmEnd, start, p)) throw DECLINE;
        algorithmStart = start;
        algorithmEnd = p;
        const known = knownAlgorithm(b, start, p);
        const algorithm = known?.name ?? text.slice(start, p);
        out[q++] = QUOTE;
        p = skip(b, p + 1);
        if (b[p] !== COLON) throw DECLINE;
        out[q++] = COLON;
        p = skip(b, p + 1);
        if (b[p] !== QUOTE) throw DECLINE;
        out[q++] = QUOTE;
        const hexStart = ++p;
        c = b[p] as number;
        while (((CLASS[c] as number) & HEX) !== 0) {
          out[q++] = c;
          c = b[++p] as number;
        }
        if (c !== QUOTE) throw DECLINE;
        const hex = text.slice(hexStart, p);
        out[q++] = QUOTE;
        // A known algorithm with lower-case hex of its length passes digestProblem; anything
        // else is asked (an all-digit name is an array index: out of order, see above).
        if (known !== undefined ? p - hexStart !== known.length : digestProblem(algorithm, hex) !== undefined || /^[0-9]+$/.test(algorithm)) throw DECLINE;
        if (count === 1) {
          algorithm0 = algorithm;
          hex0 = hex;
        } else {
          (algorithms ??= []).push(algorithm);
          (hexes ??= []).push(hex);
        }
        p = skip(b, p + 1);
        c = b[p] as number;
        if (c === COMMA) {
          out[q++] = COMMA;
          p = skip(b, p + 1);
          continue;
        }
        if (c !== RBRACE) throw DECLINE;
        out[q++] = RBRACE;
        break;
      }
      const digests = makeDigests(algorithm0, hex0, algorithms, hexes);
      map.set(name, digests);
      names.push(name);
      dicts.push(digests);
      if (map.size > CAPS.artifactsPerLink) throw DECLINE;

      p = skip(b, p + 1);
      const next = b[p];
      if (next === COMMA) {
        out[q++] = COMMA;
        p = skip(b, p + 1);
        continue;
      }
      if (next !== RBRACE) throw DECLINE;
      out[q++] = RBRACE;
      this.p = p + 1;
      this.q = q;
      keepArtifactList(map, { names, digests: dicts });
      return map;
    }
  }
}

/** The position of the first byte at or after `p` that is not JSON whitespace. */
function skip(b: Uint8Array, p: number): number {
  while (p < b.length) {
    const c = b[p] as number;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
    else break;
  }
  return p;
}

/** b[s2, e2) sorts strictly after b[s1, e1) (bytes of ASCII: code-point order). */
function increasing(b: Uint8Array, s1: number, e1: number, s2: number, e2: number): boolean {
  const n1 = e1 - s1;
  const n2 = e2 - s2;
  const m = n1 < n2 ? n1 : n2;
  for (let i = 0; i < m; i++) {
    const x = b[s1 + i] as number;
    const y = b[s2 + i] as number;
    if (x !== y) return y > x;
  }
  return n2 > n1;
}

/** The known algorithms, sha256 (nearly every digest) first. */
const KNOWN = [...DIGEST_HEX_LENGTH]
  .sort(([a], [b]) => (a === 'sha256' ? -1 : b === 'sha256' ? 1 : 0))
  .map(([name, length]) => ({ name, length, bytes: Buffer.from(name, 'latin1') }));

/** The known algorithm named at b[s, e), as one shared string (no copy per artifact). */
function knownAlgorithm(b: Uint8Array, s: number, e: number): { readonly name: string; readonly length: number } | undefined {
  for (let k = 0; k < KNOWN.length; k++) {
    const known = KNOWN[k] as (typeof KNOWN)[number];
    const bytes = known.bytes;
    if (bytes.length !== e - s) continue;
    let i = 0;
    while (i < bytes.length && b[s + i] === bytes[i]) i++;
    if (i === bytes.length) return known;
  }
  return undefined;
}

/** True when b[s, e) is all ASCII digits. */
function digitsOnly(b: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (((CLASS[b[i] as number] as number) & DIGIT) === 0) return false;
  return true;
}

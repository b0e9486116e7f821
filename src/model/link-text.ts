import { ByteWriter, type ByteSink } from '../canonical/byte-writer.js';
import { canonicalString, pythonJsonDumps, writeCanonical } from '../canonical/encode.js';
import { compareCodePoints, type JsonValue } from '../canonical/json.js';
import { bytesToHex } from '../crypto/encoding.js';
import type { SigningKey } from '../crypto/signatures.js';
import type { ArtifactMap } from './artifacts.js';
import type { Link } from './link.js';

/**
 * The Metablock file of a link, written straight from the link's artifact maps as bytes: the
 * same bytes as `metablockText(linkToJson(link), keys)` (a property test holds the two
 * together), without building a JSON object of every artifact, nor a string of the whole file.
 * The canonical bytes a signature covers are built once, in one buffer; the file itself goes
 * out in chunks, so a link of a million artifacts (116 MB) is never held whole in memory.
 * Names and digests that are plain printable ASCII (nearly all) are copied as they are;
 * anything else goes through the generic encoders, which escape it, or refuse what cannot be
 * encoded.
 */

type Entries = Iterable<readonly [string, ReadonlyMap<string, string>]>;

/** The artifacts in code-point order of name (the recorder's maps already are: then no copy). */
function inOrder(artifacts: ArtifactMap): Entries {
  let previous: string | undefined;
  for (const name of artifacts.keys()) {
    if (previous !== undefined && compareCodePoints(previous, name) > 0) {
      return [...artifacts].sort((a, b) => compareCodePoints(a[0], b[0]));
    }
    previous = name;
  }
  return artifacts;
}

/** A digest dict in code-point order of algorithm (nearly always one entry: no copy). */
function digestsInOrder(digests: ReadonlyMap<string, string>): Iterable<readonly [string, string]> {
  return digests.size > 1 ? [...digests].sort((a, b) => compareCodePoints(a[0], b[0])) : digests;
}

// Canonical JSON escapes only `"` and `\`; Python's json.dumps with ensure_ascii escapes those
// and everything outside printable ASCII. A string made only of printable ASCII other than
// those two is written as it is by both.
const PLAIN = /^[ !#-[\]-~]*$/;

function canonicalQuoted(text: string): string {
  return PLAIN.test(text) ? `"${text}"` : canonicalString(text);
}

function pythonQuoted(text: string): string {
  return PLAIN.test(text) ? `"${text}"` : pythonJsonDumps(text);
}

/** The one sha256 digest of an artifact when that is all it has (nearly always), else undefined. */
function onlySha256(digests: ReadonlyMap<string, string>): string | undefined {
  return digests.size === 1 ? digests.get('sha256') : undefined;
}

/**
 * The sha256 of the common artifact, a plain name with one plain sha256 digest, which both
 * encoders write as it is; undefined for anything that has to be quoted the long way.
 */
function plainSha256(name: string, digests: ReadonlyMap<string, string>): string | undefined {
  const hex = onlySha256(digests);
  return hex !== undefined && PLAIN.test(name) && PLAIN.test(hex) ? hex : undefined;
}

// The text of a large link is written once per run, by code the JIT has barely compiled, so
// the common artifact (a plain name and one sha256) is written by the cheapest means measured:
// two regular-expression checks and byte loops, with no string built per artifact (joining
// 20,000 templates costs three times as much, a native write per piece twice as much).

/** `"name":{"algorithm":"hex",...}` in canonical JSON, the long way. */
function canonicalArtifact(name: string, digests: ReadonlyMap<string, string>): string {
  let text = `${canonicalQuoted(name)}:{`;
  let first = true;
  for (const [algorithm, value] of digestsInOrder(digests)) {
    text += `${first ? '' : ','}${canonicalQuoted(algorithm)}:${canonicalQuoted(value)}`;
    first = false;
  }
  return `${text}}`;
}

function writeCanonicalArtifacts(out: ByteWriter, artifacts: ArtifactMap): void {
  out.byte(0x7b); // {
  let first = true;
  for (const [name, digests] of inOrder(artifacts)) {
    if (!first) out.byte(0x2c); // ,
    first = false;
    const hex = plainSha256(name, digests);
    if (hex !== undefined) {
      out.byte(0x22);
      out.latin1(name);
      out.latin1('":{"sha256":"');
      out.latin1(hex);
      out.latin1('"}');
    } else {
      out.utf8(canonicalArtifact(name, digests));
    }
  }
  out.byte(0x7d); // }
}

/** json.dumps(indent=1) of the artifacts as the value of a key at nesting `level`. */
function writePythonArtifacts(out: ByteWriter, artifacts: ArtifactMap, level: number): void {
  if (artifacts.size === 0) {
    out.ascii('{}');
    return;
  }
  const entry = `\n${' '.repeat(level + 1)}`;
  const digest = `\n${' '.repeat(level + 2)}`;
  const close = `${entry}}`;
  const middle = `": {${digest}"sha256": "`;
  const end = `"${close}`;
  const pythonArtifact = (name: string, digests: ReadonlyMap<string, string>): string => {
    if (digests.size === 0) return `${pythonQuoted(name)}: {}`;
    let text = `${pythonQuoted(name)}: {`;
    let first = true;
    for (const [algorithm, value] of digestsInOrder(digests)) {
      text += `${first ? '' : ','}${digest}${pythonQuoted(algorithm)}: ${pythonQuoted(value)}`;
      first = false;
    }
    return text + close;
  };
  out.byte(0x7b);
  let first = true;
  for (const [name, digests] of inOrder(artifacts)) {
    if (!first) out.byte(0x2c);
    first = false;
    out.latin1(entry);
    const hex = plainSha256(name, digests);
    if (hex !== undefined) {
      out.byte(0x22);
      out.latin1(name);
      out.latin1(middle);
      out.latin1(hex);
      out.latin1(end);
    } else {
      out.ascii(pythonArtifact(name, digests));
    }
  }
  out.ascii(`\n${' '.repeat(level)}}`);
}

/** json.dumps(indent=1) of any value as the value of a key at nesting `level` (ASCII). */
function pythonAt(value: JsonValue, level: number): string {
  // Python escapes newlines inside strings, so every raw newline in the text is indentation.
  return pythonJsonDumps(value).replace(/\n/g, `\n${' '.repeat(level)}`);
}

/**
 * The canonical JSON bytes of the link's `signed` object: what a Metablock signature covers.
 * @throws ParseError E_CANONICAL for a value canonical JSON cannot encode
 */
export function linkCanonicalBytes(link: Link): Uint8Array {
  const out = new ByteWriter(undefined, canonicalSizeHint(link));
  out.ascii('{"_type":"link","byproducts":');
  writeCanonical(link.byproducts, out);
  out.ascii(',"command":');
  writeCanonical([...link.command], out);
  out.ascii(',"environment":');
  writeCanonical(link.environment, out);
  out.ascii(',"materials":');
  writeCanonicalArtifacts(out, link.materials);
  out.ascii(',"name":');
  out.utf8(canonicalQuoted(link.name));
  out.ascii(',"products":');
  writeCanonicalArtifacts(out, link.products);
  out.byte(0x7d);
  return out.finish();
}

/**
 * About the size of the canonical bytes (exact for plain names with one sha256), so that the
 * buffer is allocated once: every doubling copies, and touches fresh pages, which on a virtual
 * machine cost more than the copy (a quarter of the time for a link of 20,000 artifacts).
 */
function canonicalSizeHint(link: Link): number {
  let size = 256;
  for (const artifacts of [link.materials, link.products]) {
    for (const [name, digests] of artifacts) {
      const hex = onlySha256(digests);
      size += hex === undefined ? name.length * 3 + 256 : name.length + hex.length + 16;
    }
  }
  return size;
}

/** The `signatures` array of the file, one entry per distinct keyid, in the order given. */
function signaturesText(link: Link, keys: readonly SigningKey[]): string {
  if (keys.length === 0) return '[]';
  const bytes = linkCanonicalBytes(link);
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const key of keys) {
    if (seen.has(key.keyid)) continue;
    seen.add(key.keyid);
    parts.push(`\n  {\n   "keyid": ${pythonJsonDumps(key.keyid)},\n   "sig": "${bytesToHex(key.sign(bytes))}"\n  }`);
  }
  return `[${parts.join(',')}\n ]`;
}

/**
 * Writes the Metablock file in-toto 1.3.1 writes for `link`, signed by `keys` (none: an
 * unsigned link, as in-toto-mock writes), to `sink` in chunks. Signing (and with it the
 * encoding of every name) happens before the first chunk; an unsigned link can still fail on
 * a name part-way, so write to a temporary file (writeFileAtomicSync) and keep it only whole.
 * @throws ParseError E_CANONICAL; CryptoError when a key cannot sign
 */
export function writeLinkMetablock(link: Link, keys: readonly SigningKey[], sink: ByteSink): void {
  const signatures = signaturesText(link, keys);
  // Check what the file needs beyond the signed bytes before any of it is written.
  const byproducts = pythonAt(link.byproducts, 2);
  const command = pythonAt([...link.command], 2);
  const environment = pythonAt(link.environment, 2);
  const out = new ByteWriter(sink);
  out.ascii(`{\n "signatures": ${signatures},\n "signed": {\n  "_type": "link",\n  "byproducts": ${byproducts}`);
  out.ascii(`,\n  "command": ${command},\n  "environment": ${environment},\n  "materials": `);
  writePythonArtifacts(out, link.materials, 2);
  out.ascii(',\n  "name": ');
  out.ascii(pythonQuoted(link.name));
  out.ascii(',\n  "products": ');
  writePythonArtifacts(out, link.products, 2);
  out.ascii('\n }\n}');
  out.finish();
}

/**
 * {@link writeLinkMetablock} as one string.
 * @throws ParseError E_CANONICAL; CryptoError when a key cannot sign
 */
export function linkMetablockText(link: Link, keys: readonly SigningKey[]): string {
  const chunks: Buffer[] = [];
  writeLinkMetablock(link, keys, (chunk) => chunks.push(Buffer.from(chunk)));
  return Buffer.concat(chunks).toString('latin1');
}

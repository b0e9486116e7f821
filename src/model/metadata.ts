import { FormatError } from '../errors.js';
import { getOwn, isJsonObject, type JsonValue } from '../canonical/json.js';
import type { PublicKey } from '../crypto/keys.js';
import { LIMITS, ReadBuffer, readRegularFileSync } from '../io/files.js';
import { parseEnvelope, type Envelope } from './envelope.js';
import { layoutFromJson, type Layout, type LayoutReadOptions } from './layout.js';
import { linkFromJson, type Link } from './link.js';
import { releaseScanBuffers } from './artifact-scan.js';
import { readSlot, type SlotContent } from './link-reader.js';
import { isStatement, linkFromStatement } from './statement.js';

/** Link or layout, told apart by `_type` (a sublayout stands where a link is expected). */
export type Metadata = { readonly type: 'link'; readonly link: Link } | { readonly type: 'layout'; readonly layout: Layout };

export interface ReadEnvelopeOptions {
  /** Refuse a symlink as the file itself (link directories). */
  readonly noFollow?: boolean;
  readonly maxBytes?: number;
  readonly what?: string;
}

/**
 * Reads and parses a metadata file into its envelope (nothing verified yet).
 * @throws IoError E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE; ParseError; FormatError E_SCHEMA;
 *   CryptoError E_ENVELOPE
 */
export function readEnvelopeFile(path: string, options: ReadEnvelopeOptions = {}): Envelope {
  return parseEnvelope(readMetadataBytes(path, options), path);
}

/** Link files are read one at a time into this buffer (see ReadBuffer). */
const slotBuffer = new ReadBuffer();

/**
 * Lets go of the buffers reading link files keeps for the next file (the file buffer, the
 * artifact scanner's): call once a layout's links are read, so that their memory (as large as
 * the largest link) is not held while the rules run.
 */
export function releaseSlotBuffers(): void {
  slotBuffer.release();
  releaseScanBuffers();
}

/**
 * Reads a file in a link slot and attributes it to the `candidates` whose signatures verify
 * (link-reader.ts): a link Metablock of the usual form in one pass, in a buffer reused from
 * one link file to the next; anything else through parseEnvelope.
 * @throws as readEnvelopeFile, and ParseError when the signed bytes do not decode
 */
export function readSlotFile(path: string, candidates: readonly PublicKey[], options: ReadEnvelopeOptions = {}): SlotContent {
  const bytes = readMetadataBytes(path, { ...options, into: slotBuffer });
  return readSlot(bytes, path, candidates, () => readMetadataBytes(path, options));
}

function readMetadataBytes(path: string, options: ReadEnvelopeOptions & { readonly into?: ReadBuffer }): Uint8Array {
  return readRegularFileSync(path, {
    maxBytes: options.maxBytes ?? LIMITS.metadataBytes,
    what: options.what ?? 'metadata file',
    ...(options.noFollow === undefined ? {} : { noFollow: options.noFollow }),
    ...(options.into === undefined ? {} : { into: options.into }),
  });
}

/** The `_type` of a payload, or undefined. */
export function metadataType(value: JsonValue): string | undefined {
  const type = isJsonObject(value) ? getOwn(value, '_type') : undefined;
  return typeof type === 'string' ? type : undefined;
}

/**
 * Reads a payload as a link or a layout; a link Statement (in-toto attestation, link
 * predicate v0.3) is read as the link it stands for (statement.ts).
 * @throws FormatError E_METADATA_TYPE for any other `_type`; whatever the link, Statement or
 *   layout readers throw
 */
export function metadataFromJson(value: JsonValue, where: string, options: LayoutReadOptions = {}): Metadata {
  const type = metadataType(value);
  if (type === 'link') return { type: 'link', link: linkFromJson(value, where) };
  if (isStatement(value)) return { type: 'link', link: linkFromStatement(value, where) };
  if (type === 'layout') return { type: 'layout', layout: layoutFromJson(value, where, options) };
  throw new FormatError('E_METADATA_TYPE', `${where}: _type must be "link" or "layout", got ${JSON.stringify(type ?? null)}`);
}

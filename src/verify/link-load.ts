import { InTotoError } from '../errors.js';
import type { JsonValue } from '../canonical/json.js';
import type { PublicKey } from '../crypto/keys.js';
import { linkFromJson, type Link } from '../model/link.js';
import type { SlotContent } from '../model/link-reader.js';
import { metadataType, readSlotFile } from '../model/metadata.js';
import { isStatement, linkFromStatement } from '../model/statement.js';

/**
 * One link file read, checked and attributed, with no knowledge of steps or layouts. The file is read without
 * following a symlink, regular files only, size-capped; it is attributed to the `candidates`
 * whose signatures verify; the payload is decoded from the verified bytes only. A link payload
 * is read whole here (the expensive part); a layout payload (a sublayout) is returned as JSON
 * for the caller to read in its context.
 */
export type LoadedFile =
  | { readonly kind: 'missing' }
  /** No candidate verified; `encodingProblem` names a signature in the wrong encoding. */
  | { readonly kind: 'unsigned'; readonly encodingProblem?: string }
  | { readonly kind: 'link'; readonly signers: readonly string[]; readonly link: Link }
  | { readonly kind: 'layout'; readonly signers: readonly string[]; readonly payload: JsonValue }
  | { readonly kind: 'other'; readonly signers: readonly string[]; readonly payload: JsonValue };

/**
 * @throws IoError (E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE); ParseError; FormatError
 *   (E_SCHEMA, E_ARTIFACT_NAME, E_ARTIFACT_ALIAS); CryptoError E_ENVELOPE
 */
export function loadLinkFile(file: string, candidates: readonly PublicKey[]): LoadedFile {
  let content: SlotContent;
  try {
    content = readSlotFile(file, candidates, { noFollow: true, what: 'link file' });
  } catch (error) {
    if (error instanceof InTotoError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return { kind: 'missing' };
    throw error;
  }
  if (content.kind === 'unsigned') {
    return content; // encodingProblem, if any, names a signature in the wrong encoding
  }
  const keyids = content.signers.map((k) => k.keyid);
  // Read in one pass with the file: the same Link linkFromJson would build (link-reader.ts).
  if (content.kind === 'link') return { kind: 'link', signers: keyids, link: content.link };
  // Other payloads, decoded from the bytes the first signer's signature covers: told apart
  // by their type (a link in another envelope, a sublayout, anything else).
  const payload = content.payload;
  const type = metadataType(payload);
  if (type === 'link') return { kind: 'link', signers: keyids, link: linkFromJson(payload, file) };
  // An in-toto attestation (Statement v1, link predicate) stands for a link, checked the same way.
  if (isStatement(payload)) return { kind: 'link', signers: keyids, link: linkFromStatement(payload, file) };
  return { kind: type === 'layout' ? 'layout' : 'other', signers: keyids, payload };
}

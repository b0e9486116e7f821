import { InTotoError } from '../errors.js';
import type { JsonValue } from '../canonical/json.js';
import type { PublicKey } from '../crypto/keys.js';
import { signatureEncodingProblem, signersOf } from '../model/envelope.js';
import { linkFromJson, type Link } from '../model/link.js';
import { verifiedContent, type VerifiedContent } from '../model/link-reader.js';
import { metadataType, readSlotEnvelopeFile } from '../model/metadata.js';
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
 *   (E_SCHEMA, E_ARTIFACT_NAME); CryptoError E_ENVELOPE
 */
export function loadLinkFile(file: string, candidates: readonly PublicKey[]): LoadedFile {
  let envelope;
  try {
    envelope = readSlotEnvelopeFile(file, { noFollow: true, what: 'link file' });
  } catch (error) {
    if (error instanceof InTotoError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return { kind: 'missing' };
    throw error;
  }
  // The first candidate that verifies yields the content (one signature check, not two: a
  // check of a 10 MB link costs tens of milliseconds); the others are only checked.
  let content: VerifiedContent | undefined;
  const keyids: string[] = [];
  for (const [i, key] of candidates.entries()) {
    if (content === undefined) {
      content = verifiedContent(envelope, key);
      if (content !== undefined) keyids.push(key.keyid);
    } else if (signersOf(envelope, candidates.slice(i, i + 1)).length > 0) {
      keyids.push(key.keyid);
    }
  }
  if (content === undefined) {
    const problem = candidates.map((key) => signatureEncodingProblem(envelope, key)).find((p) => p !== undefined);
    return problem === undefined ? { kind: 'unsigned' } : { kind: 'unsigned', encodingProblem: problem };
  }
  // Read in one pass with the file: the same Link linkFromJson would build (link-reader.ts).
  if (content.kind === 'link') return { kind: 'link', signers: keyids, link: content.link };
  const payload = content.payload;
  const type = metadataType(payload);
  if (type === 'link') return { kind: 'link', signers: keyids, link: linkFromJson(payload, file) };
  // An in-toto attestation (Statement v1, link predicate) stands for a link, checked the same way.
  if (isStatement(payload)) return { kind: 'link', signers: keyids, link: linkFromStatement(payload, file) };
  return { kind: type === 'layout' ? 'layout' : 'other', signers: keyids, payload };
}

import { join } from 'node:path';
import { FormatError, InTotoError, VerificationError } from '../errors.js';
import type { PublicKey } from '../crypto/keys.js';
import { signersOf, verifiedPayload, type Envelope } from '../model/envelope.js';
import type { Layout, Step } from '../model/layout.js';
import { linkFileName } from '../model/link.js';
import { metadataFromJson, readEnvelopeFile, type Metadata } from '../model/metadata.js';
import type { Session } from './session.js';

/**
 * Check 3: the links of every step (verifylib.load_links_for_layout and the signature half of
 * verify_link_signature_thresholds).
 *
 * For each step and each authorised functionary, the file `<step>.<keyid[:8]>.link` in the
 * link directory is read (not following a symlink, regular files only, size-capped), in
 * either envelope. A file is attributed only to the keys that actually verify a signature in
 * it, and only among the authorised keys whose prefix names the file: two authorised keys
 * sharing an 8-digit prefix share one file, tried against both. The payload is decoded from
 * the verified bytes only, and a link's signed `name` must be the step's (a functionary
 * authorised for two steps cannot move a link from one slot to the other).
 *
 * Differences from the reference, on purpose (fail closed): a file that exists but cannot be
 * read as metadata (a symlink, a FIFO, too large, malformed, a payload that is neither link
 * nor layout) fails verification instead of being skipped; a well-formed file that no
 * authorised key signed is skipped as the reference does, and named in E_THRESHOLD.
 */

/** One verified link (or sublayout) for a step, attributed to the key that verified it. */
export interface Evidence {
  /** The layout keyid of the functionary (the key that verified). */
  readonly keyid: string;
  readonly key: PublicKey;
  readonly file: string;
  readonly envelope: Envelope;
  readonly metadata: Metadata;
}

export interface StepEvidence {
  readonly step: Step;
  readonly evidence: readonly Evidence[];
  /** Link files found for this step (at most one per distinct prefix). */
  readonly filesFound: readonly string[];
  /** Files looked for and absent. */
  readonly filesMissing: readonly string[];
  /** Files present that did not count, with the reason. */
  readonly ignored: readonly string[];
}

/**
 * Loads and attributes the links of every step of `layout` from `linkDir`.
 * @throws VerificationError E_LINK_NAME_MISMATCH, E_SUBLAYOUT_NAME (a sublayout with an unsafe
 *   step or inspection name); IoError (E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE, E_LIMIT);
 *   ParseError, FormatError, CryptoError E_ENVELOPE for a file that is not valid metadata
 */
export function loadLinks(layout: Layout, linkDir: string, session: Session): StepEvidence[] {
  return layout.steps.map((step) => loadStepLinks(step, layout, linkDir, session));
}

function loadStepLinks(step: Step, layout: Layout, linkDir: string, session: Session): StepEvidence {
  // Group the authorised keys by the prefix that names their file.
  const byPrefix = new Map<string, PublicKey[]>();
  for (const keyid of step.pubkeys) {
    const key = layout.keys.get(keyid);
    if (key === undefined) continue; // refused when the layout was loaded
    const prefix = keyid.slice(0, 8);
    byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), key]);
  }
  const evidence: Evidence[] = [];
  const filesFound: string[] = [];
  const filesMissing: string[] = [];
  const ignored: string[] = [];
  for (const [prefix, candidates] of byPrefix) {
    const file = join(linkDir, linkFileName(step.name, prefix));
    const envelope = readLinkFile(file, step, session);
    if (envelope === undefined) {
      filesMissing.push(file);
      continue;
    }
    filesFound.push(file);
    const signers = signersOf(envelope, candidates);
    const first = signers[0];
    if (first === undefined) {
      const why = `${file}: no valid signature by the authorised key(s) ${candidates.map((k) => k.keyid.slice(0, 12)).join(', ')}`;
      ignored.push(why);
      session.note(`step '${step.name}': ignored ${why}`);
      continue;
    }
    const metadata = decode(envelope, first, file, step);
    for (const key of signers) evidence.push({ keyid: key.keyid, key, file, envelope, metadata });
  }
  return { step, evidence, filesFound, filesMissing, ignored };
}

/** The envelope in `file`, or undefined when there is no such file. */
function readLinkFile(file: string, step: Step, session: Session): Envelope | undefined {
  session.countLinkFile(file);
  try {
    return readEnvelopeFile(file, { noFollow: true, what: 'link file' });
  } catch (error) {
    if (error instanceof InTotoError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    if (error instanceof InTotoError) throw error.withContext(`step '${step.name}'`, { step: step.name, file });
    throw error;
  }
}

function decode(envelope: Envelope, signer: PublicKey, file: string, step: Step): Metadata {
  const where = `${file} (step '${step.name}', signed by ${signer.keyid.slice(0, 8)})`;
  let metadata: Metadata;
  try {
    const payload = verifiedPayload(envelope, signer);
    if (payload === undefined) throw new VerificationError('E_LINK_SIG', `${where}: signature no longer verifies`);
    metadata = metadataFromJson(payload, where);
  } catch (error) {
    // A sublayout is written by a functionary: an unsafe name in it is an attack on the
    // paths we derive from names, reported under its own code.
    if (error instanceof FormatError && error.code === 'E_STEP_NAME') {
      throw new VerificationError('E_SUBLAYOUT_NAME', `sublayout ${error.message}`, {
        cause: error,
        context: { ...error.context, file, step: step.name },
      });
    }
    if (error instanceof InTotoError) throw error.withContext('', { step: step.name, file, keyid: signer.keyid });
    throw error;
  }
  if (metadata.type === 'link' && metadata.link.name !== step.name) {
    throw new VerificationError(
      'E_LINK_NAME_MISMATCH',
      `${file}: link signed by ${signer.keyid.slice(0, 8)} is for step ${JSON.stringify(metadata.link.name)}, found in the slot of step '${step.name}'`,
      { context: { step: step.name, file, keyid: signer.keyid } },
    );
  }
  return metadata;
}

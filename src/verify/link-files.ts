import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, InTotoError, VerificationError } from '../errors.js';
import type { JsonValue } from '../canonical/json.js';
import type { PublicKey } from '../crypto/keys.js';
import type { Layout, Step } from '../model/layout.js';
import { linkFileName } from '../model/link.js';
import { metadataFromJson, releaseSlotBuffers, type Metadata } from '../model/metadata.js';
import { loadLinkFile, type LoadedFile } from './link-load.js';
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

interface Slot {
  readonly step: Step;
  readonly request: { readonly file: string; readonly candidates: readonly PublicKey[] };
}

/**
 * Loads and attributes the links of every step of `layout` from `linkDir`.
 * @throws VerificationError E_LINK_NAME_MISMATCH, E_SUBLAYOUT_NAME (a sublayout with an unsafe
 *   step or inspection name); IoError (E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE, E_LIMIT);
 *   ParseError, FormatError, CryptoError E_ENVELOPE for a file that is not valid metadata
 */
export function loadLinks(layout: Layout, linkDir: string, session: Session): StepEvidence[] {
  const slots: Slot[] = [];
  for (const step of layout.steps) {
    // Group the authorised keys by the prefix that names their file.
    const byPrefix = new Map<string, PublicKey[]>();
    for (const keyid of step.pubkeys) {
      const key = layout.keys.get(keyid);
      if (key === undefined) continue; // refused when the layout was loaded
      const prefix = keyid.slice(0, 8);
      byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), key]);
    }
    for (const [prefix, candidates] of byPrefix) {
      const file = join(linkDir, linkFileName(step.name, prefix));
      session.countLinkFile(file);
      slots.push({ step, request: { file, candidates } });
    }
  }
  // One after the other on this thread, the largest file first: link files are read into one
  // buffer, reused (model/metadata.ts), which is then allocated once, at its largest.
  const loaded = new Array<LoadedFile | InTotoError>(slots.length);
  for (const i of bySizeDescending(slots.map((slot) => slot.request.file))) {
    const { request } = slots[i] as Slot;
    loaded[i] = loadOne(request.file, request.candidates);
  }
  releaseSlotBuffers();
  const byStep = new Map<Step, { evidence: Evidence[]; filesFound: string[]; filesMissing: string[]; ignored: string[] }>();
  for (const step of layout.steps) byStep.set(step, { evidence: [], filesFound: [], filesMissing: [], ignored: [] });
  // In slot order: the first failure reported is the first in layout order.
  slots.forEach((slot, i) => {
    const entry = byStep.get(slot.step);
    const result = loaded[i];
    if (entry !== undefined && result !== undefined) attribute(slot, result, entry, session);
  });
  return layout.steps.map((step) => {
    const entry = byStep.get(step) ?? { evidence: [], filesFound: [], filesMissing: [], ignored: [] };
    return { step, ...entry };
  });
}

/** Indices of `files` from the largest to the smallest (files that cannot be stat'ed last). */
function bySizeDescending(files: readonly string[]): number[] {
  const sizes = files.map((file) => {
    try {
      return lstatSync(file).size;
    } catch {
      return -1;
    }
  });
  return files.map((_, i) => i).sort((a, b) => (sizes[b] as number) - (sizes[a] as number) || a - b);
}

function loadOne(file: string, candidates: readonly PublicKey[]): LoadedFile | InTotoError {
  try {
    return loadLinkFile(file, candidates);
  } catch (error) {
    if (error instanceof InTotoError) return error;
    throw error;
  }
}

function attribute(
  slot: Slot,
  result: LoadedFile | InTotoError,
  entry: { evidence: Evidence[]; filesFound: string[]; filesMissing: string[]; ignored: string[] },
  session: Session,
): void {
  const { step, request } = slot;
  const { file, candidates } = request;
  if (result instanceof InTotoError) throw result.withContext(`step '${step.name}'`, { step: step.name, file });
  if (result.kind === 'missing') {
    entry.filesMissing.push(file);
    return;
  }
  entry.filesFound.push(file);
  if (result.kind === 'unsigned') {
    const encoding = result.encodingProblem;
    const why = `${file}: ${encoding ?? `no valid signature by the authorised key(s) ${candidates.map((k) => k.keyid.slice(0, 12)).join(', ')}`}`;
    entry.ignored.push(why);
    session.note(`step '${step.name}': ignored ${why}`);
    return;
  }
  const signers = candidates.filter((k) => result.signers.includes(k.keyid));
  const first = signers[0];
  if (first === undefined) return;
  const metadata: Metadata = result.kind === 'link' ? { type: 'link', link: result.link } : readLayout(result.payload, file, step, first);
  if (metadata.type === 'link' && metadata.link.name !== step.name) {
    throw new VerificationError(
      'E_LINK_NAME_MISMATCH',
      `${file}: link signed by ${first.keyid.slice(0, 8)} is for step ${JSON.stringify(metadata.link.name)}, found in the slot of step '${step.name}'`,
      { context: { step: step.name, file, keyid: first.keyid } },
    );
  }
  for (const key of signers) entry.evidence.push({ keyid: key.keyid, key, file, metadata });
}

/** A verified payload that is not a link: a sublayout, or an error. */
function readLayout(payload: JsonValue, file: string, step: Step, signer: PublicKey): Metadata {
  const where = `${file} (step '${step.name}', signed by ${signer.keyid.slice(0, 8)})`;
  try {
    return metadataFromJson(payload, where);
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
}

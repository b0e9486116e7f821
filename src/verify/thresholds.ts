import { VerificationError } from '../errors.js';
import type { ArtifactMap, HashDict } from '../model/artifacts.js';
import type { Link } from '../model/link.js';
import type { StepEvidence } from './link-files.js';

/**
 * Check 4: every step has links from at least `threshold` distinct authorised functionaries
 * (verifylib.verify_link_signature_thresholds); and, after sublayouts are summarised, check 7:
 * those links agree on materials and products (verify_threshold_constraints).
 *
 * Functionaries are counted by key identity (the hash of the key material), not by keyid:
 * the layout loader already refuses one key under two keyids, and counting identities here
 * as well means a single key can never be counted twice, whatever path led to it.
 */

/**
 * @throws VerificationError E_LINK_MISSING when fewer link files exist than the threshold
 *   (the reference's LinkNotFoundError), E_THRESHOLD when fewer distinct functionaries signed
 *   valid links, naming the step, how many were valid and by whom
 */
export function verifyThresholds(steps: readonly StepEvidence[]): void {
  for (const s of steps) {
    const { step } = s;
    const identities = new Set(s.evidence.map((e) => e.key.identity));
    if (identities.size >= step.threshold) continue;
    const details = [
      ...s.evidence.map((e) => `valid: ${e.file} signed by ${e.keyid}`),
      ...s.ignored.map((reason) => `ignored: ${reason}`),
      ...s.filesMissing.map((file) => `missing: ${file}`),
    ];
    if (s.filesFound.length < step.threshold) {
      throw new VerificationError(
        'E_LINK_MISSING',
        `step '${step.name}' requires ${step.threshold} link file(s), found ${s.filesFound.length}` +
          (s.filesMissing[0] === undefined ? '' : ` (looked for ${s.filesMissing.map(baseName).join(', ')})`),
        { context: { step: step.name }, details },
      );
    }
    const who = s.evidence.map((e) => e.keyid.slice(0, 8)).join(', ');
    throw new VerificationError(
      'E_THRESHOLD',
      `step '${step.name}' requires links from ${step.threshold} distinct authorised functionaries, ` +
        `found ${identities.size} valid${who === '' ? '' : ` (by ${who})`}` +
        (s.ignored.length === 0 ? '' : `; ignored ${s.ignored.length} file(s) without a valid authorised signature (${shortReason(s.ignored[0] ?? '')})`),
      { context: { step: step.name }, details },
    );
  }
}

/** One step's links once sublayouts are replaced by their summary links. */
export interface StepLinks {
  readonly step: string;
  readonly links: readonly { readonly keyid: string; readonly file: string; readonly link: Link }[];
}

/**
 * Every valid link of a step must record the same materials and products. Stricter than the
 * reference, which compares only when the threshold is above 1 and otherwise silently uses
 * the first link: two authorised functionaries who disagree are a failure whatever the
 * threshold, because the rules would check one account and ignore the other.
 * @throws VerificationError E_LINKS_DISAGREE naming the step, the artifact and both digests
 */
export function verifyLinksAgree(steps: readonly StepLinks[]): void {
  for (const { step, links } of steps) {
    const first = links[0];
    if (first === undefined) continue;
    for (const other of links.slice(1)) {
      for (const kind of ['materials', 'products'] as const) {
        const difference = firstDifference(first.link[kind], other.link[kind]);
        if (difference === undefined) continue;
        const [a, b] = [first.keyid.slice(0, 8), other.keyid.slice(0, 8)];
        throw new VerificationError(
          'E_LINKS_DISAGREE',
          `step '${step}': links by ${a} and ${b} disagree on ${kind} ${JSON.stringify(difference.name)}: ` +
            `${difference.ours} (${a}) vs ${difference.theirs} (${b})`,
          {
            context: { step, artifact: difference.name },
            details: [`${first.file} (${first.keyid})`, `${other.file} (${other.keyid})`],
          },
        );
      }
    }
  }
}

interface Difference {
  readonly name: string;
  readonly ours: string;
  readonly theirs: string;
}

function firstDifference(ours: ArtifactMap, theirs: ArtifactMap): Difference | undefined {
  for (const [name, digests] of ours) {
    const other = theirs.get(name);
    if (other === undefined) return { name, ours: show(digests), theirs: 'absent' };
    if (!sameDigests(digests, other)) return { name, ours: show(digests), theirs: show(other) };
  }
  for (const [name, digests] of theirs) {
    if (!ours.has(name)) return { name, ours: 'absent', theirs: show(digests) };
  }
  return undefined;
}

function sameDigests(a: HashDict, b: HashDict): boolean {
  if (a.size !== b.size) return false;
  for (const [algorithm, digest] of a) if (b.get(algorithm) !== digest) return false;
  return true;
}

function show(digests: HashDict): string {
  return [...digests].map(([algorithm, hex]) => `${algorithm} ${hex}`).join(', ') || 'no digests';
}

/** An ignored file's reason with the file's directory left out. */
function shortReason(reason: string): string {
  const at = reason.indexOf(': ');
  return at === -1 ? reason : `${baseName(reason.slice(0, at))}${reason.slice(at)}`;
}

function baseName(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1);
}

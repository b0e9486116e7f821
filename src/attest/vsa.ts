import { resolve } from 'node:path';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { createHashBuffers, type HashBuffers } from '../crypto/hash-file.js';
import type { LayoutReport, VerifyReport } from '../verify/report.js';
import { fileDescriptor, fileDigest, fileUri, finalProductFiles, type FinalProductListing } from './files.js';
import { attestationTimestamp, STATEMENT_V1, VSA_FAILURE_FIELD, VSA_V1 } from './schemas.js';

/**
 * A Verification Summary Attestation (SLSA VSA v1) of one `intoto verify`, passed or failed:
 * the subjects are the final product's files (as the inspections saw them), the policy is the
 * layout (its digest), the input attestations are the link files the verification read, and
 * a failed verification carries its code and message in an extension field.
 */

/** The default verifier id (override with --verifier-id: the id should name your gate). */
export const DEFAULT_VERIFIER_ID = 'urn:intoto-ts:verifier:intoto-verify';
/** What `verifiedLevels` holds when the verification passed: no SLSA track is claimed. */
export const IN_TOTO_VERIFIED = 'IN_TOTO_VERIFIED';

export interface VsaOptions extends FinalProductListing {
  readonly report: VerifyReport;
  readonly layoutPath: string;
  readonly verifierId: string;
  readonly verifierVersion: string;
  /** The artifact's URI; default: the final product's `file:` URI. */
  readonly resourceUri?: string;
  readonly timeVerified: Date;
}

/**
 * The VSA Statement (unsigned; attest/envelope.ts checks and signs it).
 * @throws IoError (the final product cannot be listed or hashed), UsageError (overlapping
 *   final products)
 */
export async function vsaStatement(options: VsaOptions): Promise<JsonObject> {
  const files = finalProductFiles(options);
  const buffers = createHashBuffers();
  const subject: JsonValue[] = [];
  for (const [name, path] of files) subject.push(await fileDescriptor(name, path, buffers));
  const failure = options.report.failure;
  // When the layout cannot be read (the failure says why), the policy is named by its URI only.
  const layoutDigest = await digestOrUndefined(options.layoutPath, buffers);
  const predicate: JsonObject = {
    verifier: { id: options.verifierId, version: { 'intoto-ts': options.verifierVersion } },
    timeVerified: attestationTimestamp(options.timeVerified),
    resourceUri: options.resourceUri ?? defaultResourceUri(options),
    policy: { uri: fileUri(options.layoutPath), ...(layoutDigest === undefined ? {} : { digest: layoutDigest }) },
    inputAttestations: await inputAttestations(options.report.layout, buffers),
    verificationResult: failure === undefined ? 'PASSED' : 'FAILED',
    verifiedLevels: failure === undefined ? [IN_TOTO_VERIFIED] : ['FAILED'],
    slsaVersion: '1.0',
    ...(failure === undefined ? {} : { [VSA_FAILURE_FIELD]: { code: failure.code, message: failure.message, details: failure.details.slice(0, 100) } }),
  };
  return { _type: STATEMENT_V1, subject, predicateType: VSA_V1, predicate };
}

function defaultResourceUri(options: VsaOptions): string {
  const only = options.finalProducts?.length === 1 ? options.finalProducts[0] : undefined;
  return fileUri(resolve(options.cwd, only ?? '.'));
}

/** `{sha256}` of a regular file, or undefined when it is absent or not one. Never throws. */
async function digestOrUndefined(path: string, buffers: HashBuffers): Promise<JsonObject | undefined> {
  try {
    return await fileDigest(path, buffers);
  } catch {
    return undefined;
  }
}

/**
 * Every link file the verification read (sublayouts included), with its digest.
 * @throws IoError when one of them can no longer be read
 */
async function inputAttestations(layout: LayoutReport, buffers: HashBuffers): Promise<JsonObject[]> {
  const files: string[] = [];
  const visit = (report: LayoutReport): void => {
    for (const step of report.steps) {
      for (const file of step.linkFiles) if (!files.includes(file)) files.push(file);
      for (const sub of step.sublayouts) visit(sub);
    }
  };
  visit(layout);
  const out: JsonObject[] = [];
  for (const file of files) out.push({ uri: fileUri(file), digest: await fileDigest(file, buffers) });
  return out;
}

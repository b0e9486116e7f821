import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SigningKey } from '../crypto/signatures.js';
import { writeAttestation } from '../attest/envelope.js';
import { provenanceStatement } from '../attest/provenance.js';
import { PROVENANCE_STATEMENT_SCHEMA } from '../attest/schemas.js';

/**
 * What `intoto pipeline run` writes besides the standard in-toto files: the SLSA Provenance v1
 * of the final products, after the chain verified (attest/provenance.ts), signed with the
 * provenance key (default: the owner key). Each link's own attestation (`--attest`) is written
 * by the runner. Both go to an attestation directory beside the output directory, never into
 * it: in-toto-verify 1.3.1, run there, would take them for part of the final product.
 */

/** The provenance's file name, in the attestation directory. */
export const PROVENANCE_FILE = 'provenance.intoto.json';

export interface PipelineProvenance {
  /** Signs the provenance. */
  readonly key: SigningKey;
  readonly builderId: string;
  readonly builderVersion: string;
}

/**
 * Writes `attestationDir/provenance.intoto.json` about the final products in `outDir`;
 * returns its path.
 * @throws IoError; FormatError E_SCHEMA (a bug); CryptoError (the key cannot sign)
 */
export async function writePipelineProvenance(options: {
  readonly provenance: PipelineProvenance;
  readonly outDir: string;
  readonly attestationDir: string;
  readonly finalProducts: readonly string[];
  readonly inputs: ReadonlyMap<string, string>;
  readonly params: ReadonlyMap<string, string>;
  readonly startedOn: Date;
}): Promise<string> {
  const { outDir, provenance } = options;
  const statement = await provenanceStatement({
    subjects: new Map(options.finalProducts.map((name) => [name, join(outDir, name)])),
    layoutPath: join(outDir, 'root.layout'),
    params: options.params,
    inputs: options.inputs,
    linkFiles: readdirSync(outDir).filter((name) => name.endsWith('.link')).map((name) => join(outDir, name)),
    builderId: provenance.builderId,
    builderVersion: provenance.builderVersion,
    invocationId: randomUUID(),
    startedOn: options.startedOn,
    finishedOn: new Date(),
  });
  const path = join(options.attestationDir, PROVENANCE_FILE);
  writeAttestation(path, statement, PROVENANCE_STATEMENT_SCHEMA, [provenance.key]);
  return path;
}

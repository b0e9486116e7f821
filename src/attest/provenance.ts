import { basename } from 'node:path';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { createHashBuffers } from '../crypto/hash-file.js';
import { fileDescriptor, fileDigest } from './files.js';
import { attestationTimestamp, PROVENANCE_V1, STATEMENT_V1 } from './schemas.js';

/**
 * SLSA Provenance v1 of a pipeline run (`intoto pipeline run`), for its final products:
 * - buildDefinition.buildType: {@link PIPELINE_BUILD_TYPE}, documented in docs/ATTESTATIONS.md;
 * - externalParameters: the signed layout (name and digest) and the `--param` values, the
 *   only inputs a user controls besides the input files;
 * - resolvedDependencies: the pipeline's input files, each with its digest;
 * - runDetails: the builder (id, version), when the run started and finished, an invocation
 *   id, and as byproducts the digests of the links that record every step.
 */

/** The buildType of a pipeline run (see docs/ATTESTATIONS.md). */
export const PIPELINE_BUILD_TYPE = 'urn:intoto-ts:buildtype:pipeline-run:v1';
/** The default builder id (override with --builder-id: the id should name your build platform). */
export const DEFAULT_BUILDER_ID = 'urn:intoto-ts:builder:pipeline-run';

export interface ProvenanceInput {
  /** The final products: artifact name -> file. */
  readonly subjects: ReadonlyMap<string, string>;
  /** The signed layout the run followed. */
  readonly layoutPath: string;
  readonly params: ReadonlyMap<string, string>;
  /** The pipeline's inputs: artifact name -> file. */
  readonly inputs: ReadonlyMap<string, string>;
  /** The link files of the run. */
  readonly linkFiles: readonly string[];
  readonly builderId: string;
  readonly builderVersion: string;
  readonly invocationId: string;
  readonly startedOn: Date;
  readonly finishedOn: Date;
}

/**
 * The provenance Statement (unsigned; attest/envelope.ts checks and signs it).
 * @throws IoError when a subject, input, link or the layout cannot be hashed
 */
export async function provenanceStatement(input: ProvenanceInput): Promise<JsonObject> {
  const buffers = createHashBuffers();
  const subject: JsonValue[] = [];
  for (const [name, path] of [...input.subjects].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) subject.push(await fileDescriptor(name, path, buffers));
  const resolvedDependencies: JsonValue[] = [];
  for (const [name, path] of [...input.inputs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) resolvedDependencies.push(await fileDescriptor(name, path, buffers));
  const byproducts: JsonValue[] = [];
  for (const file of [...input.linkFiles].sort()) byproducts.push(await fileDescriptor(basename(file), file, buffers));
  return {
    _type: STATEMENT_V1,
    subject,
    predicateType: PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: PIPELINE_BUILD_TYPE,
        externalParameters: {
          layout: { name: basename(input.layoutPath), digest: await fileDigest(input.layoutPath, buffers) },
          parameters: Object.fromEntries([...input.params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
        },
        resolvedDependencies,
      },
      runDetails: {
        builder: { id: input.builderId, version: { 'intoto-ts': input.builderVersion } },
        metadata: { invocationId: input.invocationId, startedOn: attestationTimestamp(input.startedOn), finishedOn: attestationTimestamp(input.finishedOn) },
        byproducts,
      },
    },
  };
}

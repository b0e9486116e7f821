import type { SigningKey } from '../crypto/signatures.js';
import { RegistryError } from '../errors.js';
import { dsseText, metablockText } from '../model/envelope.js';
import type { RegistryClient } from '../oci/client.js';
import { sha256Digest } from '../oci/manifest.js';
import { OCI_MANIFEST } from '../oci/media-types.js';
import { listInputFiles } from '../pipeline/inputs.js';
import { withParams } from '../pipeline/params.js';
import { planSteps } from '../pipeline/plan.js';
import type { PipelineSource } from '../pipeline/source.js';
import { runManifest, runTag } from './run-layout.js';
import { signRunRecord, type RunRecord } from './run-record.js';
import type { StoreRef } from './step-command.js';
import { hashFiles, uploadFiles } from './store-blobs.js';

/**
 * `intoto pipeline publish`: the layout owner, on the owner's machine, opens a run in the
 * store. The layout is signed (or one signed elsewhere is used), the pipeline inputs hashed
 * and uploaded, and the run record (run id, layout digest, inputs, parameters) signed by the
 * owner; then the run's manifest is written under `<run-id>.pipeline`, once: a run id that is
 * already published is refused, so a run can never be re-opened to replace its layout or
 * inputs. Every machine that later runs a step checks the record against the owner's keys.
 */

export interface PublishOptions {
  readonly store: StoreRef;
  readonly runId: string;
  readonly source: PipelineSource;
  /** The owner's keys: they sign the run record, and the layout unless `signedLayout` is given. */
  readonly ownerKeys: readonly SigningKey[];
  /** A layout already signed by the owner (checked by the caller against the source), as its file's bytes. */
  readonly signedLayout?: Uint8Array;
  readonly params: ReadonlyMap<string, string>;
  readonly useDsse?: boolean;
  /** Default: now. */
  readonly now?: Date;
  readonly onEvent?: (line: string) => void;
}

export interface PublishResult {
  readonly runId: string;
  readonly tag: string;
  /** The run manifest's digest. */
  readonly digest: string;
  readonly layoutDigest: string;
  readonly inputs: number;
  readonly uploadedBlobs: number;
  readonly uploadedBytes: number;
}

/**
 * Publishes a run. Parameters are substituted first (a placeholder without a value fails
 * before anything is uploaded).
 * @throws RegistryError E_TAG_EXISTS (the run id is taken), and registry failures; FormatError
 *   E_PARAM; PipelineError E_PIPELINE_CYCLE; IoError (inputs, E_LIMIT)
 */
export async function publishRun(client: RegistryClient, options: PublishOptions): Promise<PublishResult> {
  const { store, runId, source } = options;
  const repository = store.repository;
  const say = options.onEvent ?? (() => undefined);
  planSteps(withParams(source, options.params).steps); // a missing value or a cycle fails here, not on a node
  const tag = runTag(runId);
  const taken = await client.resolveTag(repository, tag);
  if (taken !== undefined) {
    throw new RegistryError('E_TAG_EXISTS', `run '${runId}' is already published in ${store.url} (${tag} names ${taken}): a run id is used once; choose another`);
  }
  const layoutBytes = options.signedLayout ?? Buffer.from(options.useDsse === true ? dsseText(source.layoutJson, options.ownerKeys) : metablockText(source.layoutJson, options.ownerKeys), 'utf8');
  const inputs = await hashFiles(listInputFiles(source.inputs));
  say(`hashed ${inputs.length} input file(s)`);
  const publishedOn = `${(options.now ?? new Date()).toISOString().slice(0, 19)}Z`;
  const layoutDigest = sha256Digest(layoutBytes);
  const record: RunRecord = {
    runId,
    layoutSha256: layoutDigest.slice('sha256:'.length),
    inputs: new Map(inputs.map((i) => [i.name, i.digest.slice('sha256:'.length)])),
    params: options.params,
    publishedOn,
  };
  const recordBytes = Buffer.from(signRunRecord(record, options.ownerKeys), 'utf8');

  const sent = await uploadFiles(client, repository, inputs);
  const layout = await client.pushBytes(repository, layoutBytes);
  const recordBlob = await client.pushBytes(repository, recordBytes);
  const manifest = runManifest({
    runId,
    record: { mediaType: '', digest: recordBlob.digest, size: recordBlob.size },
    layout: { mediaType: '', digest: layout.digest, size: layout.size },
    inputs: inputs.map(({ name, digest, size }) => ({ name, digest, size })),
  });
  // Checked again just before the write: the distribution API has no conditional PUT, so two
  // publishers racing on one new run id can still both write (see the README's decisions).
  const raced = await client.resolveTag(repository, tag);
  if (raced !== undefined) throw new RegistryError('E_TAG_EXISTS', `run '${runId}' was published in ${store.url} meanwhile (${tag} names ${raced})`);
  const { digest } = await client.putManifest(repository, tag, manifest, OCI_MANIFEST);
  say(`published run ${runId}: ${store.url}:${tag}@${digest}`);
  return {
    runId,
    tag,
    digest,
    layoutDigest,
    inputs: inputs.length,
    uploadedBlobs: sent.blobs + Number(layout.uploaded) + Number(recordBlob.uploaded),
    uploadedBytes: sent.bytes + (layout.uploaded ? layout.size : 0) + (recordBlob.uploaded ? recordBlob.size : 0),
  };
}

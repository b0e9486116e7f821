import { getOwn, type JsonValue } from '../canonical/json.js';
import type { PublicKey } from '../crypto/keys.js';
import { CryptoError, EngineError, FormatError, RegistryError, UsageError, VerificationError } from '../errors.js';
import { LIMITS } from '../io/files.js';
import { parseEnvelope, verifiedPayload } from '../model/envelope.js';
import type { Layout, Step } from '../model/layout.js';
import { metadataFromJson } from '../model/metadata.js';
import type { Link } from '../model/link.js';
import type { RegistryClient } from '../oci/client.js';
import { checkLayoutIsSource } from '../pipeline/signed-layout.js';
import type { PipelineSource } from '../pipeline/source.js';
import { verifyExpiry } from '../verify/expiry.js';
import { verifyLayoutSignatures } from '../verify/layout-signatures.js';
import { readRunRecord, type RunRecord } from './run-record.js';
import { readRunManifest, readStepManifest, RUN_ID_ENVIRONMENT, runTag, stepRunTag, storeError } from './run-layout.js';
import type { Descriptor } from '../oci/manifest.js';
import type { StoreRef } from './step-command.js';

/**
 * Reading a run from the store, trusting nothing the store says until the owner's or a
 * functionary's signature covers it:
 *
 *  1. the run's manifest (`<run-id>.pipeline`) only points at the run record and the layout;
 *  2. the run record must be signed by every owner key given and name this run id;
 *  3. the layout must be the blob whose digest the record signs, signed by every owner key,
 *     unexpired, and exactly what the local YAML source compiles to (its expiry aside);
 *  4. the manifest must list exactly the inputs the record signs, digest for digest;
 *  5. a step's links are read from the tags of the functionaries the layout authorises, each
 *     signed by the key of its tag, naming that step and recording this run id, and each
 *     manifest must list exactly the products its link records.
 * Anything else is refused with the code of what failed; nothing is downloaded but metadata.
 */

export interface OpenedRun {
  readonly store: StoreRef;
  readonly runId: string;
  readonly record: RunRecord;
  /** The signed layout, as published (what in-toto-verify reads). */
  readonly layoutBytes: Uint8Array;
  /** The layout, decoded from its verified bytes (placeholders kept). */
  readonly layout: Layout;
  /** Input name -> the blob the record signs (digest) with the size the manifest gives. */
  readonly inputs: ReadonlyMap<string, Descriptor>;
  /** The parameters of the run: the published ones. */
  readonly params: ReadonlyMap<string, string>;
}

export interface OpenRunOptions {
  readonly store: StoreRef;
  readonly runId: string;
  readonly source: PipelineSource;
  readonly ownerKeys: readonly PublicKey[];
  /** `--param` values given on the command line; when given they must be the published ones. */
  readonly params: ReadonlyMap<string, string> | undefined;
  /** Default: now. */
  readonly now?: number;
}

/**
 * Opens a published run. See the module comment.
 * @throws RegistryError E_NOT_FOUND (no such run), and registry failures; CryptoError
 *   E_SIGNATURE (a record the owner did not sign); VerificationError E_LAYOUT_SIG,
 *   E_LAYOUT_EXPIRED; PipelineError E_LAYOUT_SOURCE; EngineError E_RUN_MISMATCH, E_STORE;
 *   FormatError E_PARAM (parameters other than the published ones)
 */
export async function openRun(client: RegistryClient, options: OpenRunOptions): Promise<OpenedRun> {
  const { store, runId } = options;
  const repository = store.repository;
  const tag = runTag(runId);
  const where = `${store.url}:${tag}`;
  let fetched;
  try {
    fetched = await client.getManifest(repository, tag);
  } catch (error) {
    if (error instanceof RegistryError && error.code === 'E_NOT_FOUND') {
      throw new RegistryError('E_NOT_FOUND', `no run '${runId}' in ${store.url} (no tag ${tag}): the layout owner publishes a run first (intoto pipeline publish)`, { cause: error });
    }
    throw error;
  }
  const stored = readRunManifest(fetched.bytes, where);
  const recordBytes = await client.fetchBlobBytes(repository, stored.record, LIMITS.metadataBytes);
  const record = readRunRecord(recordBytes, options.ownerKeys, runId, `${where} (run record)`);

  if (stored.layout.digest !== `sha256:${record.layoutSha256}`) {
    throw storeError(where, `its layout is ${stored.layout.digest}, but the owner signed sha256:${record.layoutSha256}`);
  }
  const layoutBytes = await client.fetchBlobBytes(repository, stored.layout, LIMITS.metadataBytes);
  const layout = readSignedLayout(layoutBytes, options, `${where} root.layout`);

  const inputs = new Map<string, Descriptor>();
  for (const [name, sha256] of record.inputs) {
    const blob = stored.inputs.get(name);
    if (blob === undefined || blob.digest !== `sha256:${sha256}`) {
      throw storeError(where, `the owner signed input ${name} as sha256:${sha256}, but the manifest lists ${blob?.digest ?? 'nothing'} for it`, { artifact: name });
    }
    inputs.set(name, blob);
  }
  for (const name of stored.inputs.keys()) if (!record.inputs.has(name)) throw storeError(where, `lists input ${name}, which the owner did not sign`, { artifact: name });
  return { store, runId, record, layoutBytes, layout, inputs, params: runParams(record, options.params) };
}

/** The signed layout: every owner key signed it, it is what the YAML compiles to, and it has not expired. */
function readSignedLayout(bytes: Uint8Array, options: OpenRunOptions, where: string): Layout {
  const envelope = parseEnvelope(bytes, where);
  const signers = verifyLayoutSignatures(envelope, options.ownerKeys, undefined, where);
  const payload = verifiedPayload(envelope, signers[0] as PublicKey) as JsonValue;
  const metadata = metadataFromJson(payload, where, { keepPlaceholders: true });
  if (metadata.type !== 'layout') throw new FormatError('E_METADATA_TYPE', `${where}: is a link, not a layout`, { context: { file: where } });
  checkLayoutIsSource(payload, options.source, where);
  verifyExpiry(metadata.layout, options.now ?? Date.now(), where);
  return metadata.layout;
}

/**
 * The run's parameters: the published ones; values given again must be exactly those.
 * @throws FormatError E_PARAM
 */
function runParams(record: RunRecord, given: ReadonlyMap<string, string> | undefined): ReadonlyMap<string, string> {
  if (given === undefined || given.size === 0) return record.params;
  const same = given.size === record.params.size && [...given].every(([k, v]) => record.params.get(k) === v);
  if (!same) {
    const published = [...record.params].map(([k, v]) => `${k}=${v}`).join(' ') || '(none)';
    throw new FormatError('E_PARAM', `the --param values differ from the ones the owner published for run '${record.runId}' (${published}); give the same, or none`);
  }
  return record.params;
}

/** One functionary's run of a step, as read from the store and checked. */
export interface StoredLink {
  readonly keyid: string;
  readonly key: PublicKey;
  readonly tag: string;
  readonly link: Link;
  /** The link file's bytes as signed (what a verifier reads). */
  readonly bytes: Uint8Array;
  /** Product name -> blob (digest equal to the link's sha256, size from the manifest). */
  readonly products: ReadonlyMap<string, Descriptor>;
}

/**
 * The links of `step` in the run: for each functionary key the layout authorises for it, the
 * link under its tag when there is one. A link there that is not signed by that key, names
 * another step, records another run, or whose manifest lists other products, is refused.
 * @throws CryptoError E_SIGNATURE; VerificationError E_LINK_NAME_MISMATCH; EngineError
 *   E_RUN_MISMATCH, E_STORE; RegistryError; the link reader's errors
 */
export async function loadStepLinks(client: RegistryClient, run: OpenedRun, step: Step): Promise<StoredLink[]> {
  const repository = run.store.repository;
  const found: StoredLink[] = [];
  for (const keyid of step.pubkeys) {
    const key = run.layout.keys.get(keyid) as PublicKey;
    const tag = stepRunTag(run.runId, step.name, keyid);
    const where = `${run.store.url}:${tag}`;
    let fetched;
    try {
      fetched = await client.getManifest(repository, tag);
    } catch (error) {
      if (error instanceof RegistryError && error.code === 'E_NOT_FOUND') continue;
      throw error;
    }
    const stored = readStepManifest(fetched.bytes, where);
    const bytes = await client.fetchBlobBytes(repository, stored.link, LIMITS.metadataBytes);
    const link = verifiedLink(bytes, key, step.name, run.runId, where);
    const products = new Map<string, Descriptor>();
    for (const [name, digests] of link.products) {
      const sha256 = digests.get('sha256');
      const blob = stored.products.get(name);
      if (sha256 === undefined) throw storeError(where, `the link records no sha256 for product ${name}`, { step: step.name, artifact: name });
      if (blob === undefined || blob.digest !== `sha256:${sha256}`) {
        throw storeError(where, `step '${step.name}''s signed link records product ${name} as sha256:${sha256}, but the store's manifest lists ${blob?.digest ?? 'nothing'}: the store was altered`, { step: step.name, artifact: name });
      }
      products.set(name, blob);
    }
    for (const name of stored.products.keys()) if (!link.products.has(name)) throw storeError(where, `lists ${name}, which the link does not record as a product`, { step: step.name, artifact: name });
    found.push({ keyid, key, tag, link, bytes, products });
  }
  return found;
}

/**
 * A link's bytes, signed by `key`, naming `step`, recording `runId`.
 * @throws CryptoError E_SIGNATURE; VerificationError E_LINK_NAME_MISMATCH; EngineError E_RUN_MISMATCH
 */
function verifiedLink(bytes: Uint8Array, key: PublicKey, step: string, runId: string, where: string): Link {
  const envelope = parseEnvelope(bytes, where);
  const payload = verifiedPayload(envelope, key);
  if (payload === undefined) {
    throw new CryptoError('E_SIGNATURE', `${where}: the link there is not signed by ${key.keyid.slice(0, 8)}, the functionary whose tag it is`, { context: { step, keyid: key.keyid } });
  }
  const metadata = metadataFromJson(payload, where);
  if (metadata.type !== 'link') throw new FormatError('E_METADATA_TYPE', `${where}: holds a layout, not a link`, { context: { step } });
  const { link } = metadata;
  if (link.name !== step) throw new VerificationError('E_LINK_NAME_MISMATCH', `${where}: the link is signed for step '${link.name}', not '${step}'`, { context: { step, keyid: key.keyid } });
  const recorded = getOwn(link.environment, RUN_ID_ENVIRONMENT);
  if (recorded !== runId) {
    throw new EngineError('E_RUN_MISMATCH', `${where}: the link of step '${step}' records run ${JSON.stringify(recorded ?? null)}, not '${runId}': a link copied from another run`, { context: { step, keyid: key.keyid } });
  }
  return link;
}

/**
 * The key the layout gives `functionary` (by its YAML name): its keyid in the layout.
 * @throws UsageError E_USAGE when the functionary is not in the layout
 */
export function functionaryKeyid(source: PipelineSource, functionary: string): string {
  const entry = source.functionaries.get(functionary);
  if (entry === undefined) throw new UsageError('E_USAGE', `--as ${functionary}: the layout has no functionary of that name (it has ${[...source.functionaries.keys()].join(', ')})`);
  return entry.key.keyid;
}

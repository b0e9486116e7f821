import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { PublicKey } from '../crypto/keys.js';
import { GateError, InTotoError, IoError, ModelError, UsageError } from '../errors.js';
import { scanModelPaths } from '../ml/model-scan.js';
import { DEFAULT_POLICY } from '../ml/policy.js';
import type { RegistryClient } from '../oci/client.js';
import { OCI_MANIFEST } from '../oci/media-types.js';
import { formatReference, isDigest, type Reference } from '../oci/reference.js';
import type { SandboxMode } from '../runner/sandbox.js';
import { verifySupplyChain } from '../verify/verify.js';
import { checkModelConfig, downloadLayers, fetchAttachments, readModelManifest, type Attachments, type ResolvedModel } from './fetch-model.js';
import { checkModelSignature, type SignatureResult, type SignerOption } from './signature.js';
import { checkDestination, createWorkspace, materialise, removeWorkspace, type Workspace } from './workspace.js';

/**
 * The deployment gate, `intoto pull`: nothing reaches the destination unless all of it verified.
 * The checks, in order (each named in events, timings and failures):
 *
 *  1. resolve     the reference to a manifest digest (by digest: the bytes must hash to it);
 *                 `expectDigest` must equal it
 *  2. manifest    a ModelPack manifest: raw one-file layers, safe and unique file paths; its
 *                 config lists exactly those layers
 *  3. download    every layer into a private work directory beside the destination, each
 *                 checked against its digest and size while it streams
 *  4. attachments the referrers: OMS signature bundles (and in-toto links and layouts when a
 *                 layout is asked for), each fetched by digest and naming this model as subject
 *  5. signature   the OMS signature by the required signer over exactly the downloaded files
 *                 [slot: src/oms's verifyModel; until it is merged, the key method only]
 *  6. layout      optional: the in-toto layout, signed by its owner keys, with the attached
 *                 links, the model's files being the final product (inspections run on them)
 *  7. scan        optional: the model scanner over the files [slot: the rewritten scanner of
 *                 branch `scanner`; until then the pickle scanner over *.pkl and *.pickle]
 *  8. materialise one rename of the work directory's model onto the destination
 *
 * Any failure: the work directory is removed, the destination is untouched, the error says which
 * check failed and why.
 */

export type GateCheck = 'resolve' | 'manifest' | 'download' | 'attachments' | 'signature' | 'layout' | 'scan' | 'materialise';

export interface PullOptions {
  readonly reference: Reference;
  readonly destination: string;
  readonly signer: SignerOption;
  readonly expectDigest?: string | undefined;
  /** A layout: the name of an attached layout, else a local file; with its owner keys. */
  readonly layout?: { readonly name: string; readonly keys: readonly PublicKey[]; readonly sandbox?: SandboxMode } | undefined;
  readonly scan?: boolean;
  readonly onEvent?: (event: GateEvent) => void;
  /** Told the work directory as soon as it exists (the CLI removes it on SIGINT). */
  readonly onWorkspace?: (workspace: Workspace | undefined) => void;
}

export type GateEvent =
  | { readonly kind: 'check'; readonly check: GateCheck; readonly ms: number }
  | { readonly kind: 'resolved'; readonly reference: string; readonly digest: string }
  | { readonly kind: 'note'; readonly message: string };

export interface PullResult {
  readonly repository: string;
  readonly digest: string;
  readonly destination: string;
  readonly files: readonly { readonly path: string; readonly digest: string; readonly size: number }[];
  readonly signature: SignatureResult;
  readonly layoutVerified: boolean;
  readonly scanned: number;
  readonly timings: readonly { readonly check: GateCheck; readonly ms: number }[];
}

/**
 * Pulls through the gate. See the module comment for the checks.
 * @throws GateError E_EXPECTED_DIGEST, E_MODEL_FILES, E_SIGNATURE_MISSING, E_DESTINATION
 * @throws RegistryError (every registry failure; E_DIGEST_MISMATCH, E_BLOB_SIZE, E_MANIFEST, ...)
 * @throws CryptoError E_SIGNATURE; the in-toto verifier's codes; ModelError E_MODEL_UNSAFE (and the scanner's other codes)
 * @throws UsageError E_USAGE for options that make no sense
 */
export async function pullModel(client: RegistryClient, options: PullOptions): Promise<PullResult> {
  const { reference } = options;
  const repository = reference.repository;
  const ref = reference.digest ?? reference.tag;
  if (ref === undefined) throw new UsageError('E_USAGE', `${formatReference(reference)}: name a tag or a digest to pull`);
  if (options.expectDigest !== undefined && !isDigest(options.expectDigest)) throw new UsageError('E_USAGE', `--expect-digest ${JSON.stringify(options.expectDigest)} is not sha256: and 64 lower-case hex digits`);
  const destination = checkDestination(options.destination);
  const say = options.onEvent ?? (() => undefined);
  const timings: { check: GateCheck; ms: number }[] = [];
  const check = async <T>(name: GateCheck, run: () => Promise<T> | T): Promise<T> => {
    const start = performance.now();
    try {
      return await run();
    } catch (error) {
      throw error instanceof InTotoError ? shownInModel(error, name, workspace) : error;
    } finally {
      const ms = Math.round(performance.now() - start);
      timings.push({ check: name, ms });
      say({ kind: 'check', check: name, ms });
    }
  };

  const workspace = createWorkspace(destination);
  options.onWorkspace?.(workspace);
  try {
    const model = await check('resolve', async () => {
      const fetched = await client.getManifest(repository, ref, [OCI_MANIFEST]);
      say({ kind: 'resolved', reference: formatReference(reference), digest: fetched.digest });
      if (options.expectDigest !== undefined && fetched.digest !== options.expectDigest) {
        throw new GateError('E_EXPECTED_DIGEST', `${formatReference(reference)} resolved to ${fetched.digest}, not the expected ${options.expectDigest}`);
      }
      return fetched;
    });
    const resolved = await check('manifest', async () => {
      const parsed = readModelManifest(model.bytes, model.digest, `${repository}@${model.digest}`);
      await checkModelConfig(client, repository, parsed);
      return parsed;
    });
    const files = await check('download', () => downloadLayers(client, repository, resolved.layers, workspace.model));
    const attachments = await check('attachments', () => fetchAttachments(client, repository, resolved.digest, workspace.meta, options.layout !== undefined));
    for (const line of attachments.ignored) say({ kind: 'note', message: `ignored referrer ${line}` });
    const signature = await check('signature', () =>
      checkModelSignature({ signer: options.signer, bundles: attachments.signatures, files, modelDir: workspace.model }),
    );
    if (options.layout !== undefined) {
      const layout = options.layout;
      await check('layout', () => verifyLayout(layout, attachments, workspace));
    }
    const scanned = options.scan === true ? await check('scan', () => scanModel(resolved, workspace.model)) : 0;
    await check('materialise', () => materialise(workspace));
    return {
      repository,
      digest: resolved.digest,
      destination,
      files: resolved.layers.map((l) => ({ path: l.path, digest: l.descriptor.digest, size: l.descriptor.size })),
      signature,
      layoutVerified: options.layout !== undefined,
      scanned,
      timings,
    };
  } finally {
    removeWorkspace(workspace);
    options.onWorkspace?.(undefined);
  }
}

/**
 * The error with the check's name in front, and paths inside the work directory shown as the
 * model's own paths (`weights/model.pkl`, `attached root.layout`), not as temporary ones.
 */
function shownInModel(error: InTotoError, check: GateCheck, workspace: Workspace): InTotoError {
  if (!error.message.includes(workspace.root)) return error.withContext(check, {});
  const message = error.message.split(`${workspace.model}/`).join('').split(`${workspace.meta}/links/`).join('attached ').split(`${workspace.meta}/`).join('attached ');
  return new InTotoError(error.code, `${check}: ${message}`, { cause: error, details: error.details, context: error.context });
}

/**
 * The in-toto verification with the attached links; the model's files are the final product
 * (the verifier's working directory is the model, so inspections see exactly those files).
 * @throws the verifier's failure as an InTotoError with its code
 */
async function verifyLayout(layout: NonNullable<PullOptions['layout']>, attachments: Attachments, workspace: Workspace): Promise<void> {
  const attached = attachments.layouts.get(layout.name);
  const path = attached ?? (existsSync(layout.name) ? layout.name : undefined);
  if (path === undefined) throw new IoError('E_IO', `${layout.name}: no layout of that name is attached to the model, and there is no such local file`, { context: { file: layout.name } });
  const report = await verifySupplyChain({
    layoutPath: path,
    layoutKeys: layout.keys,
    linkDir: join(workspace.meta, 'links'),
    cwd: workspace.model,
    sandbox: layout.sandbox ?? 'auto',
  });
  if (!report.passed && report.failure !== undefined) {
    const f = report.failure;
    throw new InTotoError(f.code, `in-toto layout ${attached === undefined ? path : `${layout.name} (attached)`}: ${f.message}`, { details: f.details, context: f.context });
  }
}

/**
 * The scan slot: every file of the model through `scan-model`'s default policy, recognised by
 * content (a pickle named `.bin` is judged as a pickle). Returns how many files were scanned.
 * @throws ModelError with the first file's code (E_MODEL_UNSAFE, ...) naming the file and reason
 */
function scanModel(model: ResolvedModel, dir: string): number {
  const files = model.layers.map((layer) => join(dir, ...layer.path.split('/')));
  const results = scanModelPaths(files, { policy: DEFAULT_POLICY });
  const bad = results.find((r) => r.code !== undefined);
  if (bad !== undefined && bad.code !== undefined) {
    const finding = bad.findings.find((f) => f.code === bad.code) ?? bad.findings[0];
    const name = relative(dir, bad.file);
    throw new ModelError(bad.code === 'E_IO' ? 'E_MODEL_MALFORMED' : bad.code, `${name}: ${finding?.reason ?? 'not safe to load'}`, { context: { file: name } });
  }
  return results.length;
}

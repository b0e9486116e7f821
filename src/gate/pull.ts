import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { PublicKey } from '../crypto/keys.js';
import { GateError, InTotoError, IoError, ModelError, UsageError } from '../errors.js';
import { onInterrupt } from '../io/interrupt.js';
import { scanModelPaths, type FileScan } from '../ml/model-scan.js';
import type { ModelPolicy } from '../ml/policy.js';
import type { RegistryClient } from '../oci/client.js';
import { OCI_MANIFEST } from '../oci/media-types.js';
import { formatReference, isDigest, type Reference } from '../oci/reference.js';
import type { SandboxMode } from '../runner/sandbox.js';
import { verifySupplyChain } from '../verify/verify.js';
import type { ModelTrust } from '../oms/verify.js';
import { ATTACHMENT_DIRS, checkModelConfig, downloadLayers, fetchAttachments, readModelManifest, type Attachments, type ResolvedModel } from './fetch-model.js';
import { checkModelSignature, type SignatureResult } from './signature.js';
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
 *  5. signature   the OpenSSF Model Signing signature by the required signer (key, certificate
 *                 chain or Sigstore identity: src/oms's verifier) over exactly the downloaded
 *                 files, with the digests computed while they streamed (nothing is read twice)
 *  6. layout      optional: the in-toto layout, signed by its owner keys, with the attached
 *                 links, the model's files being the final product (inspections run on them)
 *  7. scan        optional: the model scanner (scan-model) over every file, with a policy
 *  8. materialise one rename of the work directory's model onto the destination
 *
 * Any failure, or an interruption (SIGINT, SIGTERM, SIGHUP: through io/interrupt.ts): the work
 * directory is removed, the destination is untouched, the error says which check failed and why.
 */

export type GateCheck = 'resolve' | 'manifest' | 'download' | 'attachments' | 'signature' | 'layout' | 'scan' | 'materialise';

export interface PullOptions {
  readonly reference: Reference;
  readonly destination: string;
  /** Who must have signed the model (exactly one kind of trust; there is no unsigned pull). */
  readonly trust: ModelTrust;
  readonly expectDigest?: string | undefined;
  /** A layout: the name of an attached layout, else a local file; with its owner keys. */
  readonly layout?: { readonly name: string; readonly keys: readonly PublicKey[]; readonly sandbox?: SandboxMode } | undefined;
  /** Scan every file with scan-model's scanner under this policy (absent: no scan). */
  readonly scan?: { readonly policy: ModelPolicy } | undefined;
  readonly onEvent?: (event: GateEvent) => void;
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
  /** The scan, when asked for: how many files, under which policy. */
  readonly scanned: { readonly files: number; readonly policy: string } | undefined;
  readonly timings: readonly { readonly check: GateCheck; readonly ms: number }[];
}

/**
 * Pulls through the gate. See the module comment for the checks.
 * @throws GateError E_EXPECTED_DIGEST, E_MODEL_FILES (an unsafe or duplicate path in the manifest), E_SIGNATURE_MISSING, E_DESTINATION
 * @throws RegistryError (every registry failure; E_DIGEST_MISMATCH, E_BLOB_SIZE, E_MANIFEST, ...)
 * @throws ModelError E_MODEL_SIGNATURE, E_MODEL_MISMATCH (and the OMS verifier's other codes);
 *   the in-toto verifier's codes; E_MODEL_UNSAFE, E_MODEL_MALFORMED, E_MODEL_FORMAT, E_LIMIT from the scan
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
  const release = onInterrupt(() => {
    removeWorkspace(workspace);
    return `${options.destination} left untouched; temporary files removed`;
  });
  // The hashing thread of large downloads boots while the manifest is fetched.
  client.prepareBlobDownloads();
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
    // The referrers are fetched while the layers download (their own connections); nothing
    // reads them before the download has finished and checked every blob.
    const attaching = fetchAttachments(client, repository, resolved.digest, workspace.meta, options.layout !== undefined);
    attaching.catch(() => undefined); // awaited below; a failure there must not surface as unhandled meanwhile
    const files = await check('download', () => downloadLayers(client, repository, resolved.layers, workspace.model));
    const attachments = await check('attachments', () => attaching);
    for (const line of attachments.ignored) say({ kind: 'note', message: `ignored referrer ${line}` });
    const signature = await check('signature', () => checkModelSignature({ trust: options.trust, bundles: attachments.signatures, digests: files, modelDir: workspace.model }));
    for (const warning of signature.warnings) say({ kind: 'note', message: `signature ${signature.bundle}: ${warning}` });
    if (options.layout !== undefined) {
      const layout = options.layout;
      await check('layout', () => verifyLayout(layout, attachments, workspace));
    }
    const scan = options.scan;
    const scanned = scan === undefined ? undefined : await check('scan', () => ({ files: scanModel(resolved, workspace.model, scan.policy), policy: scan.policy.label }));
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
    release();
  }
}

/**
 * The error with the check's name in front, and paths inside the work directory shown as the
 * model's own paths (`weights/model.pkl`, `attached root.layout`), not as temporary ones.
 */
function shownInModel(error: InTotoError, check: GateCheck, workspace: Workspace): InTotoError {
  if (!error.message.includes(workspace.root)) return error.withContext(check, {});
  let message = error.message.split(`${workspace.model}/`).join('');
  for (const dir of ATTACHMENT_DIRS) message = message.split(`${workspace.meta}/${dir}/`).join('attached ');
  message = message.split(`${workspace.meta}/`).join('attached ');
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
 * The scan: every file of the model through scan-model's scanner, recognised by content (a
 * pickle named `.bin` is judged as a pickle), under `policy`; as `intoto scan-model`, a file of
 * a format it cannot vouch for, or one it could not scan whole, fails too. Returns how many
 * files were scanned.
 * @throws ModelError with the first failing file's code (E_MODEL_UNSAFE, E_MODEL_MALFORMED,
 *   E_MODEL_FORMAT, E_LIMIT), naming the file and the reason, every failing file in the details;
 *   IoError E_IO for a file of ours that cannot be read
 */
function scanModel(model: ResolvedModel, dir: string, policy: ModelPolicy): number {
  const files = model.layers.map((layer) => join(dir, ...layer.path.split('/')));
  const results = scanModelPaths(files, { policy });
  const failed = results.filter((r) => r.code !== undefined);
  const first = failed[0];
  if (first === undefined || first.code === undefined) return results.length;
  const line = (r: FileScan): string => {
    const finding = r.findings.find((f) => f.code === r.code && f.never === true) ?? r.findings.find((f) => f.code === r.code) ?? r.findings[0];
    return `${relative(dir, r.file)}: ${finding?.reason ?? 'not safe to load'}`;
  };
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more file${failed.length === 2 ? '' : 's'})` : '';
  const name = relative(dir, first.file);
  if (first.code === 'E_IO') throw new IoError('E_IO', `${line(first)}${more}`, { details: failed.map(line), context: { file: name } });
  throw new ModelError(first.code, `${line(first)}${more} (scan policy: ${policy.label})`, { details: failed.map(line), context: { file: name } });
}

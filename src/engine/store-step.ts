import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PublicKey } from '../crypto/keys.js';
import { loadSigningKeyFile } from '../crypto/keyfiles.js';
import { CryptoError, InTotoError, IoError, ioError, RegistryError, RunError, UsageError, VerificationError } from '../errors.js';
import { makeDirectorySync } from '../io/files.js';
import type { Link } from '../model/link.js';
import type { RegistryClient } from '../oci/client.js';
import { OCI_MANIFEST } from '../oci/media-types.js';
import { linkDifferences } from '../pipeline/outcomes.js';
import { withParams } from '../pipeline/params.js';
import { dependenciesOf, planSteps } from '../pipeline/plan.js';
import { runOnce, runSucceeded, stepFailure } from '../pipeline/run-once.js';
import { performedByPipeline, type PipelineSource, type PipelineStep } from '../pipeline/source.js';
import { selectMaterials, type MaterialSource } from '../pipeline/stage.js';
import { checkGrants, type SandboxMode } from '../runner/sandbox.js';
import { failureOf, type Failure } from '../verify/report.js';
import { functionaryKeyid, loadStepLinks, openRun, type OpenedRun, type StoredLink } from './run-open.js';
import { RUN_ID_ENVIRONMENT, stepManifest, stepRunTag, storeError } from './run-layout.js';
import type { StoreRef } from './step-command.js';
import { downloadArtifacts, fileSize, knownSizes, sizesOf, uploadFiles, type WantedArtifact } from './store-blobs.js';

/**
 * `intoto pipeline step LAYOUT STEP --as FUNCTIONARY -k KEY --store oci://... --run-id ID`:
 * the primitive every engine runs on a functionary's machine. In order:
 *
 *  1. the functionary is one the layout authorises for the step, and KEY is its key (loaded
 *     and compared now, so a wrong key fails before anything else);
 *  2. the run is opened from the store (run-open.ts: the owner's signed record and layout,
 *     which must be what the local YAML compiles to);
 *  3. the links of the steps this step reads from (its MATCH ... FROM rules): as many as each
 *     step's threshold, signed by the functionaries of their tags, recording this run, and in
 *     agreement;
 *  4. the step's own tag must be free (a step run is pushed once);
 *  5. the materials are chosen exactly as `pipeline run` chooses them (stage.ts), and each is
 *     downloaded by the digest the owner's record or an earlier signed link gives it, checked
 *     while it streams: bytes that differ are refused here, before the command starts;
 *  6. the step runs exactly as in `pipeline run` (pipeline/run-once.ts: sandbox, grants,
 *     timeout, the link signed with KEY under the layout's keyid), its link recording the
 *     run id in its environment;
 *  7. the recorded materials must be the fetched ones; then the products, the link and the
 *     manifest listing them are pushed under `<run-id>.<step>.<keyid16>`.
 * A failing command pushes nothing (its signed link stays in the workspace as evidence).
 */

export interface StoredStepOptions {
  readonly store: StoreRef;
  readonly runId: string;
  readonly source: PipelineSource;
  readonly step: string;
  readonly functionary: string;
  /** The functionary's private key on this machine. */
  readonly keyPath: string;
  readonly password?: string;
  /** The layout owner's public keys: the run record and the layout must be signed by each. */
  readonly ownerKeys: readonly PublicKey[];
  /** `--param` values given; when given they must be the published ones. */
  readonly params: ReadonlyMap<string, string> | undefined;
  /** A new or empty directory: the step's workspace goes in `run/`, its link in `links/`. */
  readonly workspace: string;
  readonly sandbox: SandboxMode;
  readonly timeoutSeconds: number | undefined;
  readonly useDsse: boolean;
  readonly echo: boolean;
  readonly now?: number;
  readonly warn: (message: string) => void;
  readonly onEvent?: (event: StoredStepEvent) => void;
}

export type StoredStepEvent =
  | { readonly kind: 'opened'; readonly runId: string; readonly inputs: number; readonly ms: number }
  | { readonly kind: 'links'; readonly step: string; readonly links: number }
  | { readonly kind: 'fetched'; readonly files: number; readonly bytes: number; readonly ms: number }
  | { readonly kind: 'running'; readonly step: string; readonly functionary: string }
  | { readonly kind: 'ran'; readonly ok: boolean; readonly ms: number }
  | { readonly kind: 'pushed'; readonly tag: string; readonly digest: string; readonly blobs: number; readonly bytes: number; readonly ms: number };

export interface StoredStepResult {
  readonly passed: boolean;
  /** Why the step failed (its command), when it did; other failures are thrown. */
  readonly failure: Failure | undefined;
  readonly step: string;
  readonly functionary: string;
  readonly runId: string;
  /** The step run's tag, and its manifest's digest once pushed. */
  readonly tag: string;
  readonly digest: string | undefined;
  /** Undefined for a built-in step that failed before writing a link. */
  readonly returnValue: number | undefined;
  readonly linkPath: string | undefined;
  readonly materials: number;
  readonly products: number;
  readonly timings: { readonly openMs: number; readonly fetchMs: number; readonly runMs: number; readonly pushMs: number };
}

/**
 * Runs one step of a published run. A failing command is a result (`passed: false`, nothing
 * pushed); everything that stops the step before or after its command is thrown.
 * @throws UsageError E_USAGE (an unknown step or functionary, a step without run); CryptoError
 *   (the key: E_KEYID_MISMATCH, E_KEY_PASSWORD, ...; E_SIGNATURE on stored metadata); the
 *   run's errors (see openRun); VerificationError E_LINK_MISSING, E_LINKS_DISAGREE,
 *   E_LINK_NAME_MISMATCH; EngineError E_STORE, E_RUN_MISMATCH; RegistryError E_TAG_EXISTS (this
 *   step run was pushed already), E_DIGEST_MISMATCH / E_BLOB_SIZE (a material whose bytes
 *   differ from the signed digest: refused before the command runs), and any registry
 *   failure; RunError E_STEP_ENVIRONMENT, E_ARTIFACTS_DIFFER; IoError
 */
export async function runStoredStep(client: RegistryClient, options: StoredStepOptions): Promise<StoredStepResult> {
  const { source, functionary, runId } = options;
  const emit = options.onEvent ?? ((): void => {});
  const declared = checkStepAndKey(options);
  let t0 = performance.now();
  const run = await openRun(client, { store: options.store, runId, source, ownerKeys: options.ownerKeys, params: options.params, ...(options.now === undefined ? {} : { now: options.now }) });
  const openMs = Math.round(performance.now() - t0);
  emit({ kind: 'opened', runId, inputs: run.inputs.size, ms: openMs });

  const { steps } = withParams(source, run.params);
  const order = planSteps(steps);
  const step = order.find((s) => s.name === declared.name) as PipelineStep;
  const keyid = functionaryKeyid(source, functionary);
  const tag = stepRunTag(runId, step.name, keyid);
  const where = `${options.store.url}:${tag}`;
  const repository = options.store.repository;

  t0 = performance.now();
  // Independent lookups, side by side: the upstream links, and whether this run was pushed already.
  const [upstream, existing] = await Promise.all([upstreamLinks(client, run, order, step, emit), client.resolveTag(repository, tag)]);
  if (existing !== undefined) {
    throw new RegistryError('E_TAG_EXISTS', `step '${step.name}' was already run by ${functionary} in run '${runId}' (${where} exists): a step run is pushed once`, { context: { step: step.name } });
  }
  const wanted = await materialsToFetch(client, run, step, upstream);
  const dir = join(options.workspace, 'run');
  const linkDir = join(options.workspace, 'links');
  try {
    // Not Node's recursive mkdirSync, which spins for ever under a parent that takes no children (/proc/nope).
    makeDirectorySync(dir);
    makeDirectorySync(linkDir);
  } catch (error) {
    // Named against the workspace as before, with the system error makeDirectorySync carries.
    throw ioError(options.workspace, error instanceof IoError && error.cause !== undefined ? error.cause : error, 'cannot create the step workspace in');
  }
  await fetchMaterials(client, repository, step, wanted, dir);
  const fetchMs = Math.round(performance.now() - t0);
  emit({ kind: 'fetched', files: wanted.length, bytes: wanted.reduce((n, w) => n + w.size, 0), ms: fetchMs });

  t0 = performance.now();
  emit({ kind: 'running', step: step.name, functionary });
  const ran = await runOnce(
    { source, sandbox: options.sandbox, timeoutSeconds: options.timeoutSeconds, useDsse: options.useDsse, echo: options.echo, attest: false, warn: options.warn },
    step,
    functionary,
    { dir, linkDir, attestationDir: undefined, keyPath: declared.keyPath, ...(options.password === undefined ? {} : { password: options.password }), hide: [], environment: { [RUN_ID_ENVIRONMENT]: runId } },
  );
  const runMs = Math.round(performance.now() - t0);
  const failed = 'failure' in ran ? ran.failure : runSucceeded(ran.result) ? undefined : stepFailure(step, functionary, ran.result, dir);
  emit({ kind: 'ran', ok: failed === undefined, ms: runMs });
  const result = 'result' in ran ? ran.result : undefined;
  const base = { step: step.name, functionary, runId, tag, returnValue: result?.returnValue, linkPath: result?.linkPath, materials: wanted.length, products: result?.link.products.size ?? 0 };
  if (failed !== undefined || result === undefined) {
    return { ...base, passed: false, failure: failureOf(failed), digest: undefined, timings: { openMs, fetchMs, runMs, pushMs: 0 } };
  }
  checkRecordedMaterials(step.name, result.link, wanted);

  t0 = performance.now();
  const pushed = await pushStepRun(client, options, { step: step.name, keyid, tag, where, link: result.link, linkPath: result.linkPath, dir });
  const pushMs = Math.round(performance.now() - t0);
  emit({ kind: 'pushed', tag, digest: pushed.digest, blobs: pushed.blobs, bytes: pushed.bytes, ms: pushMs });
  return { ...base, passed: true, failure: undefined, digest: pushed.digest, timings: { openMs, fetchMs, runMs, pushMs } };
}

/**
 * The step and functionary exist and fit, and the key file holds the functionary's key.
 * @throws UsageError E_USAGE; CryptoError E_KEYID_MISMATCH and the key file's errors; RunError E_STEP_ENVIRONMENT
 */
function checkStepAndKey(options: StoredStepOptions): { name: string; keyPath: string } {
  const { source, functionary } = options;
  const step = source.steps.find((s) => s.name === options.step);
  if (step === undefined) throw new UsageError('E_USAGE', `the layout ${source.file} has no step '${options.step}' (it has ${source.steps.map((s) => s.name).join(', ')})`);
  if (!performedByPipeline(step)) throw new UsageError('E_USAGE', `step '${step.name}' has no run: it is performed outside the pipeline, not by intoto pipeline step`, { context: { step: step.name } });
  if (!step.functionaries.includes(functionary)) {
    throw new UsageError('E_USAGE', `--as ${functionary}: step '${step.name}' may be run by ${step.functionaries.join(', ')} only`, { context: { step: step.name } });
  }
  checkGrants(step.grants, process.env, `step '${step.name}'`);
  const keyPath = resolve(options.keyPath); // the step runs in its own workspace: never relative
  const key = loadSigningKeyFile(keyPath, options.password === undefined ? {} : { password: options.password });
  const expected = source.functionaries.get(functionary);
  if (expected !== undefined && key.public.identity !== expected.key.identity) {
    throw new CryptoError('E_KEYID_MISMATCH', `${options.keyPath} holds key ${key.keyid}, but the layout names ${expected.keyFile} (${expected.key.keyid}) for functionary '${functionary}'`, {
      context: { file: options.keyPath, keyid: key.keyid, step: step.name },
    });
  }
  return { name: step.name, keyPath };
}

/**
 * The agreed link of each step `step` reads from (that the pipeline performs), with its store
 * entries.
 * @throws VerificationError E_LINK_MISSING, E_LINKS_DISAGREE; what loadStepLinks throws
 */
async function upstreamLinks(client: RegistryClient, run: OpenedRun, order: readonly PipelineStep[], step: PipelineStep, emit: (e: StoredStepEvent) => void): Promise<Map<string, StoredLink>> {
  const names = new Set(order.filter(performedByPipeline).map((s) => s.name));
  const links = new Map<string, StoredLink>();
  for (const name of dependenciesOf(step, names)) {
    const model = run.layout.steps.find((s) => s.name === name);
    if (model === undefined) continue; // the layout is the source's: cannot happen
    const found = await loadStepLinks(client, run, model);
    emit({ kind: 'links', step: name, links: found.length });
    if (found.length < model.threshold) {
      throw new VerificationError(
        'E_LINK_MISSING',
        `step '${step.name}' reads from step '${name}', which has ${found.length} of the ${model.threshold} signed link(s) it needs in run '${run.runId}': it has not run yet, or it failed`,
        { context: { step: name } },
      );
    }
    const first = found[0] as StoredLink;
    for (const other of found.slice(1)) {
      const differences = linkDifferences(first.link, other.link, [first.keyid.slice(0, 8), other.keyid.slice(0, 8)]);
      if (differences.length > 0) {
        throw new VerificationError('E_LINKS_DISAGREE', `step '${name}': its runs by ${first.keyid.slice(0, 8)} and ${other.keyid.slice(0, 8)} disagree (${differences[0]})`, { details: differences, context: { step: name } });
      }
    }
    links.set(name, first);
  }
  return links;
}

interface Wanted extends WantedArtifact {
  /** Where it comes from, for messages. */
  readonly from: string;
}

/**
 * What the step's material rules stage (the same selection as `pipeline run`), each with the
 * digest the signed metadata gives it.
 * @throws EngineError E_STORE (a material without a sha256); RegistryError (sizes)
 */
async function materialsToFetch(client: RegistryClient, run: OpenedRun, step: PipelineStep, upstream: ReadonlyMap<string, StoredLink>): Promise<Wanted[]> {
  const links = new Map<string, Link>([...upstream].map(([name, stored]) => [name, stored.link]));
  const selection = selectMaterials(step.materials, run.inputs.keys(), links);
  const known = knownSizes([...run.inputs.values(), ...[...upstream.values()].flatMap((s) => [...s.products.values()])]);
  const chosen: { name: string; digest: string; from: string }[] = [];
  for (const [name, source] of selection.sources) chosen.push({ name, digest: digestOf(run, upstream, source, step.name), from: describeSource(source) });
  const sizes = await sizesOf(client, run.store.repository, chosen.map((c) => c.digest), known);
  return chosen.map((c) => ({ ...c, size: sizes.get(c.digest) as number }));
}

function digestOf(run: OpenedRun, upstream: ReadonlyMap<string, StoredLink>, source: MaterialSource, step: string): string {
  if (source.from === 'input') return (run.inputs.get(source.name) as { digest: string }).digest;
  const link = (upstream.get(source.step) as StoredLink).link;
  const sha256 = (source.type === 'products' ? link.products : link.materials).get(source.artifact)?.get('sha256');
  if (sha256 === undefined) throw storeError(`step '${source.step}''s link`, `records no sha256 for ${source.artifact}, so step '${step}' cannot fetch it by digest`, { step, artifact: source.artifact });
  return `sha256:${sha256}`;
}

function describeSource(source: MaterialSource): string {
  return source.from === 'input' ? 'a pipeline input the owner signed' : `step '${source.step}''s signed ${source.type}`;
}

/**
 * Downloads the materials into the workspace, each checked against its signed digest.
 * @throws RegistryError E_DIGEST_MISMATCH, E_BLOB_SIZE, ... naming the material and saying the command did not run
 */
async function fetchMaterials(client: RegistryClient, repository: string, step: PipelineStep, wanted: readonly Wanted[], dir: string): Promise<void> {
  try {
    await downloadArtifacts(client, repository, wanted, dir);
  } catch (error) {
    if (!(error instanceof InTotoError)) throw error;
    const name = error.context.artifact;
    const item = wanted.find((w) => w.name === name);
    const what = item === undefined ? 'a material' : `material ${item.name} (${item.from}, ${item.digest})`;
    throw error.withContext(`step '${step.name}': refused before its command ran: ${what}`, { step: step.name });
  }
}

/**
 * The link's materials are exactly what was fetched (nothing changed on disk between the
 * download and the recording).
 * @throws RunError E_ARTIFACTS_DIFFER
 */
function checkRecordedMaterials(step: string, link: Link, wanted: readonly WantedArtifact[]): void {
  const expected = new Map(wanted.map((w) => [w.name, w.digest]));
  const problems: string[] = [];
  for (const [name, digests] of link.materials) {
    const want = expected.get(name);
    if (want === undefined) problems.push(`${name}: recorded, never fetched`);
    else if (`sha256:${digests.get('sha256') ?? ''}` !== want) problems.push(`${name}: recorded sha256:${digests.get('sha256') ?? '?'}, fetched ${want}`);
  }
  for (const name of expected.keys()) if (!link.materials.has(name)) problems.push(`${name}: fetched, not recorded`);
  if (problems.length > 0) {
    throw new RunError('E_ARTIFACTS_DIFFER', `step '${step}': its recorded materials are not the ones fetched from the store (${problems[0]}); nothing was pushed`, { details: problems, context: { step } });
  }
}

/**
 * Pushes the products (blobs the registry lacks), the link, and the manifest under the tag.
 * @throws RegistryError E_TAG_EXISTS (pushed meanwhile), registry failures; IoError
 */
async function pushStepRun(
  client: RegistryClient,
  options: StoredStepOptions,
  run: { readonly step: string; readonly keyid: string; readonly tag: string; readonly where: string; readonly link: Link; readonly linkPath: string; readonly dir: string },
): Promise<{ digest: string; blobs: number; bytes: number }> {
  const repository = options.store.repository;
  const products = [...run.link.products].map(([name, digests]) => {
    const path = join(run.dir, name);
    return { name, path, digest: `sha256:${digests.get('sha256') ?? ''}`, size: fileSize(path) };
  });
  let linkBytes: Uint8Array;
  try {
    linkBytes = readFileSync(run.linkPath);
  } catch (error) {
    throw ioError(run.linkPath, error);
  }
  const [sent, link] = await Promise.all([uploadFiles(client, repository, products), client.pushBytes(repository, linkBytes)]);
  const manifest = stepManifest({
    runId: options.runId,
    step: run.step,
    functionary: options.functionary,
    keyid: run.keyid,
    link: { mediaType: '', digest: link.digest, size: link.size },
    products: products.map(({ name, digest, size }) => ({ name, digest, size })),
  });
  // Checked again just before the write (no conditional PUT in the distribution API).
  const raced = await client.resolveTag(repository, run.tag);
  if (raced !== undefined) throw new RegistryError('E_TAG_EXISTS', `${run.where} was pushed meanwhile (it names ${raced}); this run's link was not pushed`, { context: { step: run.step } });
  const { digest } = await client.putManifest(repository, run.tag, manifest, OCI_MANIFEST);
  return { digest, blobs: sent.blobs + Number(link.uploaded), bytes: sent.bytes + (link.uploaded ? link.size : 0) };
}


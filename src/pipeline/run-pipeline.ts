import { constants, copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { PublicKey } from '../crypto/keys.js';
import type { SigningKey } from '../crypto/signatures.js';
import { asInTotoError, ioError, UsageError, VerificationError } from '../errors.js';
import { makeDirectorySync, writeFileAtomicSync } from '../io/files.js';
import { onInterrupt } from '../io/interrupt.js';
import { dsseText, metablockText, verifiedPayload } from '../model/envelope.js';
import { readEnvelopeFile } from '../model/metadata.js';
import { checkGrants, type SandboxMode } from '../runner/sandbox.js';
import { failureOf, type Failure } from '../verify/report.js';
import { verifySupplyChain, type VerifyReport } from '../verify/verify.js';
import { writePipelineProvenance, type PipelineProvenance } from './attestations.js';
import { listInputFiles } from './inputs.js';
import { finalProducts, linkDifferences } from './outcomes.js';
import { runOnce, runSucceeded, stepFailure, type StepRunSettings } from './run-once.js';
import { checkFunctionaryKeys, chooseRunners, passwordFor } from './functionaries.js';
import { withParams } from './params.js';
import { planSteps } from './plan.js';
import { checkLayoutIsSource } from './signed-layout.js';
import { performedByPipeline, type PipelineSource, type PipelineStep } from './source.js';
import { stageOutput, type StagedOutput } from './output.js';
import { planMaterials, populateWorkspace, type StepOutcome } from './stage.js';

/**
 * `intoto pipeline run`: every step with a `run`, in data-flow order, each run in its own
 * fresh workspace holding only what its material rules let in, under the runner's sandbox,
 * signed by its functionary's own key; a threshold-N step runs N times, once per functionary,
 * and the N links must agree. A built-in step (`uses: model-sign`) runs no command: the runner
 * signs the model in its workspace itself (model-sign-step.ts). Every functionary's key is
 * hidden from every command, the inspections of the final verification included. Then the
 * layout is signed (or a signed one is used), and the whole chain verified exactly as
 * `intoto verify` would.
 */

export interface PipelineRunOptions {
  readonly source: PipelineSource;
  /** Holds each functionary's private key as `DIR/<functionary>`. */
  readonly keyDir: string;
  /** Where per-run workspaces and links are made; must be empty or absent. */
  readonly workspace: string;
  /**
   * Receives the final products, `root.layout` and the links; must be empty or absent unless
   * `force`. Left untouched until everything is there, then replaced in one step.
   */
  readonly outDir: string;
  /** Replace a non-empty `outDir`. */
  readonly force?: boolean;
  /** How the layout is obtained: signed here with the owner's key, or one signed elsewhere. */
  readonly layout: { readonly kind: 'sign'; readonly keys: readonly SigningKey[] } | { readonly kind: 'signed'; readonly path: string; readonly keys: readonly PublicKey[] };
  readonly sandbox?: SandboxMode;
  /** The time limit of steps that set none; no limit when undefined. */
  readonly timeoutSeconds?: number;
  readonly useDsse?: boolean;
  /**
   * `--param` values, substituted into each step's `run` and rules and passed to the
   * verification; the signed layout keeps its placeholders.
   */
  readonly params?: ReadonlyMap<string, string>;
  /** Passwords of encrypted functionary keys, by functionary name. */
  readonly passwords?: ReadonlyMap<string, string>;
  /** Show each command's output as it runs. */
  readonly echo?: boolean;
  /** Also write each link as an in-toto attestation (Statement v1, link predicate), `--attest`. */
  readonly attest?: boolean;
  /** Sign SLSA Provenance v1 of the final products with this key once the chain verified. */
  readonly provenance?: PipelineProvenance;
  /**
   * Where the attestations go (link Statements, provenance); must be empty or absent. Not the
   * output directory: in-toto-verify 1.3.1 would see them there as part of the final product.
   */
  readonly attestationDir?: string;
  /** Files no step may read (the owner's and the provenance key), hidden as the step's own key. */
  readonly hide?: readonly string[];
  readonly onEvent?: (event: PipelineEvent) => void;
  readonly warn: (message: string) => void;
}

export type PipelineEvent =
  | { readonly kind: 'plan'; readonly steps: readonly { readonly name: string; readonly runs: readonly string[] }[] }
  | { readonly kind: 'run-start'; readonly step: string; readonly functionary: string; readonly staged: number }
  | { readonly kind: 'run-end'; readonly step: string; readonly functionary: string; readonly ms: number; readonly ok: boolean }
  | { readonly kind: 'skipped'; readonly step: string; readonly reason: string }
  | { readonly kind: 'verify-start' }
  | { readonly kind: 'note'; readonly message: string };

export interface RunSummary {
  readonly step: string;
  readonly functionary: string;
  readonly ms: number;
  readonly returnValue: number | undefined;
  readonly linkPath: string;
  readonly workspace: string;
  readonly sandboxed: boolean;
  /** A built-in step's kind (no command ran, so nothing was sandboxed). */
  readonly builtin: 'model-sign' | undefined;
}

export interface PipelineRunResult {
  readonly passed: boolean;
  /** Why the pipeline stopped or verification failed. */
  readonly failure: Failure | undefined;
  readonly runs: readonly RunSummary[];
  readonly layoutPath: string | undefined;
  readonly finalProducts: readonly string[];
  readonly verification: VerifyReport | undefined;
  readonly totalMs: number;
  /** The signed SLSA provenance, when one was asked for and the chain verified. */
  readonly provenancePath?: string;
}

/**
 * Runs the pipeline. A step that fails, runs that disagree, or a failed verification are
 * reported in the result (`passed: false`, `failure`), with everything done until then.
 * @throws UsageError E_USAGE (a non-empty workspace, or output directory without `force`),
 *   IoError E_IO (missing keys for a threshold), CryptoError (a key that does not load or is not the functionary's),
 *   FormatError E_PARAM (a placeholder without a value, before anything runs),
 *   PipelineError E_PIPELINE_CYCLE / E_LAYOUT_SOURCE (a signed layout not made from this
 *   source), RunError E_STEP_ENVIRONMENT (a step's variable not set, or device missing),
 *   IoError (inputs, staging, an output directory that cannot be written: all checked
 *   before any step runs)
 */
export async function runPipeline(options: PipelineRunOptions): Promise<PipelineRunResult> {
  const start = performance.now();
  const startedOn = new Date();
  const { source } = options;
  const params = options.params ?? new Map<string, string>();
  const { steps, outputs } = withParams(source, params);
  const order = planSteps(steps);
  const runners = chooseRunners(order, options.keyDir);
  const layoutKeys = prepareLayout(options, runners);
  // A variable or device a step asks for must be here before any step runs, not at step five.
  for (const step of order) if (performedByPipeline(step)) checkGrants(step.grants, process.env, `step '${step.name}'`);
  const inputs = listInputFiles(source.inputs);
  const workspace = resolve(options.workspace);
  freshDirectory(workspace);
  const keep = [source.file, options.keyDir, workspace, ...source.inputs.values(), ...(options.layout.kind === 'signed' ? [options.layout.path] : [])];
  const output = stageOutput(options.outDir, options.force ?? false, keep);
  let attestations: StagedOutput | undefined;
  try {
    // The attestations go beside --out (so that in-toto-verify there sees only what it reads),
    // staged the same way: untouched or complete.
    if (options.attest === true || options.provenance !== undefined) {
      attestations = stageOutput(attestationDirOf(options), options.force ?? false, keep, 'attestations');
    }
    return await runAndVerify(options, { order, outputs, params, runners, layoutKeys, inputs, workspace, output, attestations, start, startedOn });
  } finally {
    output.discard();
    attestations?.discard();
  }
}

interface Prepared {
  readonly order: readonly PipelineStep[];
  /** The `outputs` patterns with the params substituted (withParams). */
  readonly outputs: readonly string[] | undefined;
  readonly params: ReadonlyMap<string, string>;
  readonly runners: ReadonlyMap<string, readonly string[]>;
  readonly layoutKeys: readonly PublicKey[];
  readonly inputs: ReturnType<typeof listInputFiles>;
  readonly workspace: string;
  readonly output: StagedOutput;
  readonly attestations: StagedOutput | undefined;
  readonly start: number;
  readonly startedOn: Date;
}

async function runAndVerify(options: PipelineRunOptions, prepared: Prepared): Promise<PipelineRunResult> {
  const { order, outputs, params, runners, layoutKeys, inputs, workspace, output, attestations, start, startedOn } = prepared;
  const attestationDir = attestations?.staging;
  const emit = options.onEvent ?? ((): void => {});
  // Every key a run will use, hidden from every command (each run's own key is hidden anyway):
  // with the workspace inside the key directory, only the key files themselves can be covered.
  const keyFiles = [...new Set([...runners.values()].flat())].map((name) => resolve(options.keyDir, name));
  const hide = [...keyFiles, ...(options.hide ?? [])];
  const linkDir = join(workspace, 'links');
  mkdirSync(linkDir);
  const settings: StepRunSettings = {
    source: options.source,
    sandbox: options.sandbox ?? 'auto',
    timeoutSeconds: options.timeoutSeconds,
    useDsse: options.useDsse ?? false,
    echo: options.echo ?? false,
    attest: options.attest ?? false,
    warn: options.warn,
  };
  emit({ kind: 'plan', steps: order.map((s) => ({ name: s.name, runs: runners.get(s.name) ?? [] })) });

  const outcomes = new Map<string, StepOutcome>();
  const runs: RunSummary[] = [];
  const stopped = (failure: Failure): PipelineRunResult => ({
    passed: false,
    failure,
    runs,
    layoutPath: undefined,
    finalProducts: [],
    verification: undefined,
    totalMs: Math.round(performance.now() - start),
  });
  for (const step of order) {
    if (!performedByPipeline(step)) {
      emit({ kind: 'skipped', step: step.name, reason: 'no run: performed outside this pipeline' });
      continue;
    }
    const plan = planMaterials(step.materials, inputs, outcomes);
    for (const note of plan.notes) emit({ kind: 'note', message: `step '${step.name}': ${note}` });
    const mine: RunSummary[] = [];
    const links: StepOutcome['link'][] = [];
    for (const functionary of runners.get(step.name) ?? []) {
      const dir = join(workspace, 'runs', step.name, functionary);
      makeDirectorySync(dir);
      const staged = populateWorkspace(dir, plan, workspace);
      emit({ kind: 'run-start', step: step.name, functionary, staged });
      const t0 = performance.now();
      const ran = await runOnce(settings, step, functionary, {
        dir,
        linkDir,
        attestationDir,
        keyPath: resolve(options.keyDir, functionary), // the step runs elsewhere: never relative
        ...passwordFor(options.passwords, functionary),
        hide,
      });
      if ('failure' in ran) {
        emit({ kind: 'run-end', step: step.name, functionary, ms: Math.round(performance.now() - t0), ok: false });
        return stopped(failureOf(ran.failure));
      }
      const { result } = ran;
      const ms = Math.round(performance.now() - t0);
      const ok = runSucceeded(result);
      const summary = { step: step.name, functionary, ms, returnValue: result.returnValue, linkPath: result.linkPath, workspace: dir, sandboxed: result.sandboxed, builtin: step.uses?.kind };
      runs.push(summary);
      mine.push(summary);
      links.push(result.link);
      emit({ kind: 'run-end', step: step.name, functionary, ms, ok });
      if (!ok) return stopped(failureOf(stepFailure(step, functionary, result, dir)));
    }
    const first = links[0];
    for (let i = 1; i < links.length && first !== undefined; i++) {
      const names = [mine[0]?.functionary ?? '', mine[i]?.functionary ?? ''] as const;
      const differences = linkDifferences(first, links[i] as StepOutcome['link'], names);
      if (differences.length > 0) {
        return stopped(failureOf(new VerificationError('E_LINKS_DISAGREE', `step '${step.name}': the runs of ${names[0]} and ${names[1]} disagree (${differences[0]}): the step is not reproducible, or one run was tampered with`, { details: differences, context: { step: step.name } })));
      }
    }
    if (first !== undefined) {
      outcomes.set(step.name, { name: step.name, link: first, workspace: mine[0]?.workspace ?? '', materialFiles: plan.files });
    }
  }

  const finals = finalProducts(order, outcomes, outputs);
  for (const [name, file] of finals) copyInto(output.staging, name, file);
  for (const entry of readdirSync(linkDir)) copyInto(output.staging, entry, join(linkDir, entry));
  writeLayout(options, join(output.staging, 'root.layout'));
  output.publish();
  const outDir = resolve(options.outDir);
  const layoutPath = join(outDir, 'root.layout');
  // From here on --out is complete; an interruption only stops the verification.
  const removeNote = onInterrupt(() => `${options.outDir} is complete, but its verification did not finish`);

  emit({ kind: 'verify-start' });
  const verification = await verifySupplyChain({
    layoutPath,
    layoutKeys,
    linkDir: outDir,
    cwd: outDir,
    finalProducts: [...finals.keys()],
    sandbox: options.sandbox ?? 'auto',
    params,
    hide,
    onEvent: (event) => {
      if (event.kind === 'warning') options.warn(event.message);
    },
  });
  removeNote();
  const staged =
    verification.passed && options.provenance !== undefined && attestations !== undefined
      ? await writePipelineProvenance({ provenance: options.provenance, outDir, attestationDir: attestations.staging, finalProducts: [...finals.keys()], inputs, params, startedOn })
      : undefined;
  attestations?.publish();
  const provenancePath = staged === undefined ? undefined : join(attestationDirOf(options), basename(staged));
  return {
    passed: verification.passed,
    failure: verification.failure,
    runs,
    layoutPath,
    finalProducts: [...finals.keys()],
    verification,
    totalMs: Math.round(performance.now() - start),
    ...(provenancePath === undefined ? {} : { provenancePath }),
  };
}

/** Where the attestations go: `--attestations`, or `<out>.attestations` beside `--out`. */
function attestationDirOf(options: PipelineRunOptions): string {
  return resolve(options.attestationDir ?? `${resolve(options.outDir)}.attestations`);
}

/**
 * Checks the keys before any step runs: the private key of each functionary who will run a
 * step must be the one the layout names (a wrong key would only show at verification, after
 * all the work), and a signed layout must verify and be the one this source compiles to.
 */
function prepareLayout(options: PipelineRunOptions, runners: ReadonlyMap<string, readonly string[]>): readonly PublicKey[] {
  const { source } = options;
  checkFunctionaryKeys(source, options.keyDir, runners, options.passwords);
  if (options.layout.kind === 'sign') return options.layout.keys.map((k) => k.public);
  const { path, keys } = options.layout;
  const envelope = readEnvelopeFile(path, { what: 'layout' });
  const signer = keys[0];
  const payload = signer === undefined ? undefined : verifiedPayload(envelope, signer);
  if (payload === undefined) throw new VerificationError('E_LAYOUT_SIG', `${path}: not signed by the layout key given`, { context: { file: path } });
  checkLayoutIsSource(payload, source, path);
  return keys;
}

function writeLayout(options: PipelineRunOptions, target: string): void {
  if (options.layout.kind === 'signed') {
    copyInto(dirname(target), 'root.layout', options.layout.path);
    return;
  }
  const { layoutJson } = options.source;
  const keys = options.layout.keys;
  writeFileAtomicSync(target, options.useDsse ? dsseText(layoutJson, keys) : metablockText(layoutJson, keys));
}

/** Makes `dir` if absent; refuses one with entries (stale links or products would mislead). */
function freshDirectory(dir: string): void {
  try {
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      throw new UsageError('E_USAGE', `${dir} is not empty: give a new or empty directory (old links or products there would mislead verification)`);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw ioError(dir, error, 'cannot use as the workspace');
  }
  makeDirectorySync(dir);
}

function copyInto(dir: string, name: string, file: string): void {
  const target = join(dir, name);
  try {
    makeDirectorySync(dirname(target));
    copyFileSync(file, target, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL);
  } catch (error) {
    throw asInTotoError(ioError(target, error, 'cannot write'));
  }
}

import type { JsonObject } from '../canonical/json.js';
import type { PublicKey } from '../crypto/keys.js';
import { InTotoError, PipelineError } from '../errors.js';
import { runStep, type RunStepResult } from '../runner/run-step.js';
import type { SandboxMode } from '../runner/sandbox.js';
import { modelSignAction } from './model-sign-step.js';
import { outputTail } from './outcomes.js';
import type { PipelineSource, PipelineStep } from './source.js';

/**
 * One run of one step, in a workspace already staged with its materials: the one place where
 * a pipeline step is executed, whoever stages it. `intoto pipeline run` calls it for every run
 * of every step on this machine; `intoto pipeline step` (the primitive the engines run on
 * their machines) calls it for the one run it was given, after fetching and checking the
 * materials from the store. Whatever a step kind adds (the built-in `uses: model-sign`, the
 * runner signing the model itself) is added here, and both get it.
 *
 * The run goes through the runner (runner/run-step.ts): materials recorded, the command run
 * under the sandbox with only the step's grants, products recorded, then the functionary's key
 * read and the link signed, named under the keyid the layout gives that key.
 */

/** What is the same for every run of a pipeline. */
export interface StepRunSettings {
  readonly source: PipelineSource;
  readonly sandbox: SandboxMode;
  /** The time limit of steps that set none; no limit when undefined. */
  readonly timeoutSeconds: number | undefined;
  readonly useDsse: boolean;
  /** Show the command's output as it runs. */
  readonly echo: boolean;
  /** Also write the link as an in-toto attestation. */
  readonly attest: boolean;
  readonly warn: (message: string) => void;
}

/** Where one run happens and with which key. */
export interface StepRunPlaces {
  /** The run's workspace: base path and working directory, the only writable place. */
  readonly dir: string;
  /** Where the link is written. */
  readonly linkDir: string;
  readonly attestationDir: string | undefined;
  /** The functionary's private key, an absolute path (the command runs elsewhere). */
  readonly keyPath: string;
  readonly password?: string;
  /** Further files no command may read (other keys on this machine). */
  readonly hide: readonly string[];
  /** Recorded in the link's `environment` beside the step's grants (the engines' run id). */
  readonly environment?: JsonObject;
}

/**
 * Runs `step` once as `functionary`: its command under the sandbox, or a built-in step (YAML
 * `uses: model-sign`) the runner performs itself with the functionary's key, no command
 * running at all (model-sign-step.ts). A failing or timed-out command is not thrown: the link
 * is written (the evidence) and the result says so ({@link runSucceeded}). A built-in step
 * that could not do its work (no model among its materials, an empty or irregular model) is
 * returned as its failure (E_STEP_FAILED): no link was written, its workspace is the evidence.
 * @throws what runStep throws (key, sandbox, I/O problems, a variable or device missing)
 */
export async function runOnce(settings: StepRunSettings, step: PipelineStep, functionary: string, places: StepRunPlaces): Promise<{ readonly result: RunStepResult } | { readonly failure: InTotoError }> {
  const timeout = step.timeoutSeconds ?? settings.timeoutSeconds;
  const action = step.uses === undefined ? undefined : modelSignAction({ step: step.name, functionary, use: step.uses, workspace: places.dir });
  try {
    const result = await runStep({
      name: step.name,
      keyPath: places.keyPath,
      ...(places.password === undefined ? {} : { password: places.password }),
      materials: ['.'],
      products: ['.'],
      command: step.run ?? [],
      ...(action === undefined ? {} : { action }),
      basePath: places.dir,
      cwd: places.dir,
      metadataDirectory: places.linkDir,
      recordStreams: true,
      echo: settings.echo,
      sandbox: settings.sandbox,
      passEnv: step.grants.env,
      shareNet: step.grants.network,
      devices: step.grants.devices,
      useDsse: settings.useDsse,
      ...(timeout === undefined ? {} : { timeoutSeconds: timeout }),
      warn: settings.warn,
      // Named and signed under the keyid the layout gives this functionary's key.
      ...layoutKeyOf(settings.source, functionary),
      attest: settings.attest,
      ...(places.attestationDir === undefined ? {} : { attestationDirectory: places.attestationDir }),
      hide: places.hide,
      ...(places.environment === undefined ? {} : { environment: places.environment }),
    });
    return { result };
  } catch (error) {
    if (action === undefined || !(error instanceof InTotoError) || error.code !== 'E_STEP_FAILED') throw error;
    return { failure: error };
  }
}

/** The command exited 0 within its time. Never throws. */
export function runSucceeded(result: RunStepResult): boolean {
  return result.returnValue === 0 && !result.timedOut;
}

/**
 * The failure of a run that did not succeed: the step, the functionary, how it ended and the
 * last line of its output; with -v the output's tail, the signed link (the evidence) and the
 * kept workspace. Never throws.
 */
export function stepFailure(step: PipelineStep, functionary: string, result: RunStepResult, dir: string): PipelineError {
  const how = result.timedOut ? 'timed out' : `exited with ${String(result.returnValue)}`;
  const tail = outputTail(result.link);
  return new PipelineError(
    'E_STEP_FAILED',
    `step '${step.name}' (functionary ${functionary}) ${how}: '${step.run?.join(' ') ?? ''}'${tail.length > 0 ? `: ${tail[tail.length - 1] ?? ''}` : ''}`,
    {
      details: [...tail.map((l) => `output: ${l}`), `link (signed, the evidence of the failure): ${result.linkPath}`, `workspace (kept): ${dir}`],
      context: { step: step.name },
    },
  );
}

/** The layout's key for a functionary, so the link carries the keyid the layout lists. */
function layoutKeyOf(source: PipelineSource, functionary: string): { layoutKey?: PublicKey } {
  const key = source.functionaries.get(functionary)?.key;
  return key === undefined ? {} : { layoutKey: key };
}

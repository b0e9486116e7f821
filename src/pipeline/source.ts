import type { JsonObject } from '../canonical/json.js';
import type { PublicKey } from '../crypto/keys.js';
import type { Layout } from '../model/layout.js';
import type { ArtifactRule } from '../model/rules.js';
import type { StepGrants } from '../runner/sandbox.js';

/**
 * A YAML layout source, compiled: the standard in-toto layout it stands for, plus what only
 * `intoto pipeline run` needs (how to run each step, which files enter the pipeline, which
 * leave it). Only {@link PipelineSource.layoutJson} is ever signed.
 */

export interface Functionary {
  readonly name: string;
  /** The public key file it was read from. */
  readonly keyFile: string;
  readonly key: PublicKey;
}

/**
 * A built-in step (YAML `uses: model-sign`): `pipeline run` itself signs `model`, a file or
 * directory among the step's staged materials, with the functionary's ECDSA key, outside any
 * sandbox and with no command at all; the OpenSSF Model Signing signature becomes a product.
 */
export interface ModelSignUse {
  readonly kind: 'model-sign';
  /** The model: an artifact name (a file, or a directory prefix) in the step's workspace. */
  readonly model: string;
  /** Where the signature goes (an artifact name): YAML `signature`, default `MODEL.sig`. */
  readonly signature: string;
}

export interface PipelineStep {
  readonly name: string;
  /** Functionary names, in the order the YAML lists them, without repeats. */
  readonly functionaries: readonly string[];
  readonly threshold: number;
  /** The command `pipeline run` executes; undefined for a built-in step or one performed elsewhere. */
  readonly run: readonly string[] | undefined;
  /** A built-in step `pipeline run` performs itself instead of a command (YAML `uses:`). */
  readonly uses: ModelSignUse | undefined;
  readonly expectedCommand: readonly string[];
  readonly materials: readonly ArtifactRule[];
  readonly products: readonly ArtifactRule[];
  /** A per-step time limit for `pipeline run`, in seconds. */
  readonly timeoutSeconds: number | undefined;
  /**
   * What `pipeline run` grants the step beyond the sandbox's defaults (YAML `env:`, `network:`,
   * `devices:`); written into the signed layout's readme (see compile.ts) and into its links.
   */
  readonly grants: StepGrants;
  /** Position of the step in the YAML `steps` list (for messages and warnings). */
  readonly index: number;
}

/** A built-in inspection (YAML `uses: model-verify`): `intoto model verify` with the signer's public key. */
export interface ModelVerifyUse {
  readonly kind: 'model-verify';
  readonly model: string;
  readonly signature: string;
  /** The functionary whose key the model must be signed with. */
  readonly signer: string;
}

export interface PipelineInspection {
  readonly name: string;
  /** The command; for `uses: model-verify`, the `intoto model verify` command it compiles to. */
  readonly run: readonly string[];
  readonly uses: ModelVerifyUse | undefined;
  readonly materials: readonly ArtifactRule[];
  readonly products: readonly ArtifactRule[];
  readonly index: number;
}

export interface PipelineSource {
  /** The YAML file, as given. */
  readonly file: string;
  /** The directory relative paths in the YAML are resolved against. */
  readonly baseDir: string;
  readonly expires: string;
  readonly expiresAt: number;
  readonly readme: string;
  readonly functionaries: ReadonlyMap<string, Functionary>;
  readonly steps: readonly PipelineStep[];
  readonly inspections: readonly PipelineInspection[];
  /** Artifact name (a file, or a directory prefix) -> absolute path of what enters the pipeline. */
  readonly inputs: ReadonlyMap<string, string>;
  /** Patterns naming the final products; undefined: the products of the last steps. */
  readonly outputs: readonly string[] | undefined;
  /** The layout model, checked by the same reader the verifier uses. */
  readonly layout: Layout;
  /** The layout's `signed` object, in the form in-toto 1.3.1 writes: what gets signed. */
  readonly layoutJson: JsonObject;
}

/** True when `pipeline run` (and the engines' `pipeline step`) performs the step: it has `run` or is built in. Never throws. */
export function performedByPipeline(step: PipelineStep): boolean {
  return step.run !== undefined || step.uses !== undefined;
}

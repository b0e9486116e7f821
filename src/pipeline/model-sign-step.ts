import { lstatSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PipelineError, asInTotoError } from '../errors.js';
import { makeDirectorySync } from '../io/files.js';
import type { ArtifactMap } from '../model/artifacts.js';
import { ModelSigner } from '../oms/keys.js';
import { isUnder } from '../oms/paths.js';
import { signModel, type SignedModel } from '../oms/sign.js';
import type { BuiltinAction } from '../runner/run-step.js';
import { modelSignCommand } from './builtins.js';
import type { ModelSignUse } from './source.js';

/**
 * The model-sign step as the runner performs it (YAML `uses: model-sign`): in the step's
 * workspace, after its materials are recorded, the runner signs `model` with the functionary's
 * key (the key the link is signed with) in the OpenSSF Model Signing format, in this process:
 * no command runs, so no command can ever see the key. Then the products are recorded (the
 * signature is the new one) and the link signed as for any step.
 *
 * What is signed is exactly what was staged: the signature's resources are compared with the
 * link's materials (every signed file is a material with the same digest, and every material
 * under the model is signed or one of the ignored paths), so the link and the signature can
 * never tell two stories about the model.
 */

export interface ModelSignActionOptions {
  readonly step: string;
  readonly functionary: string;
  /** With the parameters substituted. */
  readonly use: ModelSignUse;
  /** The step's workspace: the model and the signature are artifact names in it. */
  readonly workspace: string;
}

/** The action for `runStep({ action })`. Never throws itself; `perform` throws PipelineError E_STEP_FAILED. */
export function modelSignAction(options: ModelSignActionOptions): BuiltinAction {
  const { use, workspace } = options;
  const who = `step '${options.step}' (functionary ${options.functionary})`;
  const fail = (message: string, cause?: unknown): PipelineError =>
    new PipelineError('E_STEP_FAILED', `${who} could not sign ${use.model}: ${message}`, {
      ...(cause === undefined ? {} : { cause }),
      context: { step: options.step, file: use.model },
      details: [`workspace (kept): ${workspace}`],
    });
  return {
    command: modelSignCommand(use),
    async perform(key, materials) {
      const single = materials.has(use.model);
      const held = single ? [use.model] : [...materials.keys()].filter((name) => isUnder(name, use.model));
      if (held.length === 0) {
        const staged = [...materials.keys()];
        const shown = staged.length === 0 ? 'nothing' : `${staged.length} file(s): ${staged.slice(0, 5).join(', ')}${staged.length > 5 ? ', ...' : ''}`;
        throw fail(`it is not among the step's materials (its rules staged ${shown}); a model-sign step signs only what its material rules bring in, such as "MATCH ${use.model} WITH PRODUCTS FROM train"`);
      }
      const { signature } = use;
      if (exists(join(workspace, signature))) {
        throw fail(`${signature} is already in the workspace (staged by the step's material rules): a model-sign step writes a new signature, never over a material`);
      }
      let signed: SignedModel;
      let signer: ModelSigner;
      try {
        signer = ModelSigner.fromSigningKey(key, `functionary '${options.functionary}''s key ${key.keyid.slice(0, 8)}`);
        makeDirectorySync(dirname(join(workspace, signature)));
        signed = await signModel({ dir: join(workspace, use.model), key: signer, output: join(workspace, signature) });
      } catch (error) {
        const e = asInTotoError(error);
        throw fail(`${e.message} [${e.code}]`, e);
      }
      const disagreement = signedAgainstMaterials(use.model, single, signed, materials);
      if (disagreement !== undefined) throw fail(`the signature and the step's materials disagree: ${disagreement}`);
      const hint = signer.toJSON().publicKeyHint;
      return `signed ${use.model}: ${signed.resources.length} file(s), root digest sha256:${signed.rootDigest}, key hint ${hint} -> ${signature} (OpenSSF Model Signing v1.0)\n`;
    },
  };
}

/** lstat succeeds: the path is there (a dangling symlink counts). */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the signed resources are not exactly the recorded materials of the model, or undefined.
 * Every resource must be a material with the same sha256; every material under the model must
 * be a resource or lie under one of the recorded ignore paths. Never throws.
 */
export function signedAgainstMaterials(model: string, single: boolean, signed: Pick<SignedModel, 'resources' | 'serialization'>, materials: ArtifactMap): string | undefined {
  const nameOf = (resource: string): string => (single ? model : `${model}/${resource}`);
  const signedNames = new Set<string>();
  for (const resource of signed.resources) {
    const name = nameOf(resource.name);
    signedNames.add(name);
    const recorded = materials.get(name)?.get('sha256');
    if (recorded === undefined) return `${name} is signed but is not a material`;
    if (recorded !== resource.digest) return `${name}: sha256 ${resource.digest} signed, ${recorded} recorded`;
  }
  const ignored = (signed.serialization.ignorePaths ?? []).map((p) => `${model}/${p}`);
  for (const name of materials.keys()) {
    if (!isUnder(name, model) || signedNames.has(name)) continue;
    if (!ignored.some((p) => isUnder(name, p))) return `${name} is a material but is not signed`;
  }
  return undefined;
}

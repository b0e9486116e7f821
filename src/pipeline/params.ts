import { InternalError } from '../errors.js';
import { layoutFromJson } from '../model/layout.js';
import { substituteParams } from '../model/params.js';
import type { PipelineSource, PipelineStep } from './source.js';

/**
 * `intoto pipeline run --param KEY=VALUE`: the steps as they run, with the values substituted
 * exactly where the verifier substitutes them into the signed layout (its artifact rules,
 * expected commands and inspections), and into each step's `run` (or built-in `model` and
 * `signature`) and the `outputs` patterns. The layout that is signed
 * keeps its `{NAME}` placeholders: the values are given again at every verification.
 *
 * The substituted layout is read whole by the verifier's own reader, so a placeholder without
 * a value, or a malformed brace, anywhere in it (an inspection too) stops the pipeline before
 * any step runs, instead of after every step has run.
 * @throws FormatError E_PARAM naming the step and field; the layout reader's errors for a
 *   value that makes a rule malformed (E_RULE_SYNTAX, E_RULE_UNKNOWN_STEP)
 */
export function withParams(source: PipelineSource, params: ReadonlyMap<string, string>): { readonly steps: readonly PipelineStep[]; readonly outputs: readonly string[] | undefined } {
  const layout = layoutFromJson(source.layoutJson, source.file, { params });
  const steps = source.steps.map((step) => {
    const model = layout.steps.find((s) => s.name === step.name);
    // compileSource made one layout step per source step, with the same name.
    if (model === undefined) throw new InternalError('E_INTERNAL', `the compiled layout has no step '${step.name}'`);
    const where = `${source.file}: step '${step.name}'`;
    const run = step.run?.map((arg, i) => substituteParams(arg, params, `${where} run[${i}]`));
    const uses =
      step.uses === undefined
        ? undefined
        : Object.freeze({
            ...step.uses,
            model: substituteParams(step.uses.model, params, `${where} model`),
            signature: substituteParams(step.uses.signature, params, `${where} signature`),
          });
    return Object.freeze({ ...step, run, uses, materials: model.expectedMaterials, products: model.expectedProducts });
  });
  const outputs = source.outputs?.map((pattern, i) => substituteParams(pattern, params, `${source.file}: outputs[${i}]`));
  return { steps, outputs };
}

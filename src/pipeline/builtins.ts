import type { JsonValue } from '../canonical/json.js';
import { keyMaterial, type PublicKey } from '../crypto/keys.js';
import { InternalError, type ErrorCode } from '../errors.js';
import { artifactNameProblem } from '../model/names.js';
import type { DiagnosticId } from './diagnostics.js';
import type { Functionary, ModelSignUse, ModelVerifyUse, PipelineStep } from './source.js';

/**
 * The built-in step and inspection of a YAML layout (layouts/README.md, "Signing models in a
 * pipeline"), as the compiler sees them:
 *
 * - a step `uses: model-sign` with `model: PATH` [`signature: PATH`, default `PATH.sig`] runs no command:
 *   `pipeline run` signs the model among the step's staged materials itself, with the
 *   functionary's ECDSA key, so no command ever holds that key. In the standard layout it is an
 *   ordinary step whose `expected_command` is `intoto model sign MODEL -o SIGNATURE` (what its
 *   links record as their command: never a key path, never key material), plus a line in the
 *   signed readme saying the runner performs it;
 * - an inspection `uses: model-verify` with `model: PATH`, `signer: FUNCTIONARY`
 *   [`signature: PATH`] compiles to `intoto model verify MODEL --signature SIG
 *   --public-key-pem PEM`, the signer's public key written into the command itself: the key
 *   the owner signs with the layout, so nothing the verifier is handed with the product (and
 *   no `--param`) decides which key a model must be signed with.
 */

export const MODEL_SIGN = 'model-sign';
export const MODEL_VERIFY = 'model-verify';

/** What a model-sign step runs instead: no command, so none of a command's settings apply. */
const COMMAND_FIELDS: readonly string[] = ['run', 'expected_command', 'timeout', 'env', 'network', 'devices'];

/**
 * The heading of the signed readme's list of built-in steps (as the grants have theirs: the
 * in-toto layout format has no field for it, and in-toto 1.3.1 refuses unknown fields).
 */
export const BUILTINS_HEADING = "Built-in steps (pipeline run performs these itself with the functionary's key; no command runs):";

type Raw = Readonly<Record<string, JsonValue>>;
type Report = (id: DiagnosticId, code: ErrorCode, message: string, pointer: string, part?: 'key' | 'value') => void;

/**
 * The signature's default place: `MODEL.sig` beside the model, for a file or a directory alike
 * (the compiler cannot know which the model will be, and the signed layout should name the
 * file exactly). Never throws.
 */
export function defaultSignature(model: string): string {
  return `${model}.sig`;
}

/** The command a model-sign step's links record and its layout step expects. Never throws. */
export function modelSignCommand(use: { readonly model: string; readonly signature: string }): string[] {
  return ['intoto', 'model', 'sign', use.model, '-o', use.signature];
}

/** The command a model-verify inspection runs. Never throws. */
export function modelVerifyCommand(model: string, signature: string, publicKeyPem: string): string[] {
  return ['intoto', 'model', 'verify', model, '--signature', signature, '--public-key-pem', publicKeyPem];
}

/** Why `key` cannot make or check an OMS signature, or undefined when it can (ECDSA on P-256/384/521). Never throws. */
export function modelKeyProblem(key: PublicKey): string | undefined {
  // The key loaders accept ECDSA only on P-256, P-384 and P-521, exactly the curves OMS allows.
  return key.keytype === 'ecdsa' ? undefined : `an ${key.keytype} key`;
}

/** The SPKI PEM of an ECDSA public key. @throws CryptoError E_KEY_FORMAT for a key not made by the loader; InternalError for an ed25519 key */
export function publicKeyPem(key: PublicKey): string {
  const material = keyMaterial(key);
  if (material.kind !== 'node') throw new InternalError('E_INTERNAL', `key ${key.keyid}: an ed25519 key has no SPKI PEM here`);
  return material.key.export({ type: 'spki', format: 'pem' }).toString();
}

/** A model or signature path: an artifact name that cannot read as an option. */
function pathProblem(path: string): string | undefined {
  return artifactNameProblem(path) ?? (path.startsWith('-') ? "starts with '-' (it would read as an option of intoto model)" : undefined);
}

/**
 * The `uses:` of a raw YAML step (schema-valid), checked: a model-sign step has a model, no
 * command fields, threshold 1 and ECDSA functionaries; `model` and `signature` belong to it only.
 * Problems are reported; the result is undefined for a command step (or a broken built-in one).
 * Never throws.
 */
export function compileStepUse(raw: Raw, at: string, functionaries: ReadonlyMap<string, Functionary>, report: Report): ModelSignUse | undefined {
  const name = String(raw['name']);
  if (raw['uses'] === undefined) {
    for (const field of ['model', 'signature']) {
      if (raw[field] !== undefined) report('schema', 'E_SCHEMA', `${at}/${field}: "${field}" belongs to a built-in step: add uses: ${MODEL_SIGN}, or remove it`, `${at}/${field}`, 'key');
    }
    return undefined;
  }
  let ok = true;
  for (const field of COMMAND_FIELDS) {
    if (raw[field] === undefined) continue;
    report('schema', 'E_SCHEMA', `${at}/${field}: step '${name}' uses ${MODEL_SIGN}, which runs no command (pipeline run signs the model itself), so "${field}" does not apply: remove it`, `${at}/${field}`, 'key');
    ok = false;
  }
  const model = raw['model'] as string | undefined;
  const given = raw['signature'] as string | undefined;
  if (model === undefined) {
    report('schema', 'E_SCHEMA', `${at}: missing field "model" (what step '${name}' signs: a file or directory among its materials, such as model.pkl)`, at);
    return undefined;
  }
  for (const [field, value] of [['model', model], ['signature', given]] as const) {
    const problem = value === undefined ? undefined : pathProblem(value);
    if (problem !== undefined) {
      report('schema', 'E_ARTIFACT_NAME', `${at}/${field}: ${field} ${JSON.stringify(value)} ${problem}`, `${at}/${field}`);
      ok = false;
    }
  }
  const signature = given ?? defaultSignature(model);
  if (signature === model) {
    report('schema', 'E_SCHEMA', `${at}/signature: the signature cannot be the model itself`, `${at}/signature`);
    ok = false;
  }
  const threshold = raw['threshold'] === undefined ? 1 : Number(raw['threshold']);
  if (threshold > 1) {
    report(
      'model-sign-threshold',
      'E_THRESHOLD',
      `step '${name}' uses ${MODEL_SIGN} with threshold ${threshold}: N signers make N different signatures (ECDSA is randomised, and the keys differ), so their links could never agree on the signature; keep threshold 1 here (put the threshold on the steps before it), or add one ${MODEL_SIGN} step per signer, each with its own signature`,
      `${at}/threshold`,
    );
    ok = false;
  }
  ((raw['functionaries'] ?? []) as readonly string[]).forEach((functionary, j) => {
    const f = functionaries.get(functionary);
    const problem = f === undefined ? undefined : modelKeyProblem(f.key);
    if (f === undefined || problem === undefined) return;
    report(
      'model-sign-key',
      'E_KEY_UNSUPPORTED',
      `step '${name}' signs a model (uses: ${MODEL_SIGN}), which needs an ECDSA key on P-256, P-384 or P-521 (OpenSSF Model Signing allows nothing else; intoto keygen -t ecdsa makes one), but functionary '${functionary}' has ${problem} (${f.keyFile})`,
      `${at}/functionaries/${j}`,
    );
    ok = false;
  });
  return ok ? Object.freeze({ kind: 'model-sign', model, signature }) : undefined;
}

/**
 * The command of a raw YAML inspection (schema-valid): its `run`, or the `intoto model verify`
 * command a model-verify inspection compiles to (`run` undefined, with a report, when neither works).
 * Never throws for keys the key loaders made (the only kind a compiled source holds).
 */
export function compileInspectionRun(
  raw: Raw,
  at: string,
  functionaries: ReadonlyMap<string, Functionary>,
  declared: (name: string) => boolean,
  report: Report,
): { run: JsonValue | undefined; uses: ModelVerifyUse | undefined } {
  const name = String(raw['name']);
  if (raw['uses'] === undefined) {
    for (const field of ['model', 'signature', 'signer']) {
      if (raw[field] !== undefined) report('schema', 'E_SCHEMA', `${at}/${field}: "${field}" belongs to a built-in inspection: add uses: ${MODEL_VERIFY}, or remove it`, `${at}/${field}`, 'key');
    }
    if (raw['run'] === undefined) report('schema', 'E_SCHEMA', `${at}: missing field "run" (the command the verifier runs; or uses: ${MODEL_VERIFY} with model and signer)`, at);
    return { run: raw['run'], uses: undefined };
  }
  const none = { run: undefined, uses: undefined };
  let ok = true;
  if (raw['run'] !== undefined) {
    report('schema', 'E_SCHEMA', `${at}/run: inspection '${name}' uses ${MODEL_VERIFY}, whose command is written from model, signer and signature: remove "run"`, `${at}/run`, 'key');
    ok = false;
  }
  for (const field of ['model', 'signer']) {
    if (raw[field] === undefined) {
      const what = field === 'model' ? 'the model to verify, a file or directory of the final product' : 'the functionary whose key must have signed it';
      report('schema', 'E_SCHEMA', `${at}: missing field "${field}" (${what})`, at);
      ok = false;
    }
  }
  const model = raw['model'] as string | undefined;
  const given = raw['signature'] as string | undefined;
  for (const [field, value] of [['model', model], ['signature', given]] as const) {
    const problem = value === undefined ? undefined : pathProblem(value);
    if (problem !== undefined) {
      report('schema', 'E_ARTIFACT_NAME', `${at}/${field}: ${field} ${JSON.stringify(value)} ${problem}`, `${at}/${field}`);
      ok = false;
    }
  }
  const signer = raw['signer'] as string | undefined;
  if (signer === undefined) return none;
  const f = functionaries.get(signer);
  if (f === undefined) {
    if (!declared(signer)) report('functionary-unknown', 'E_LAYOUT_KEYS', `functionary '${signer}' is not declared under functionaries`, `${at}/signer`);
    return none;
  }
  const problem = modelKeyProblem(f.key);
  if (problem !== undefined) {
    report(
      'model-sign-key',
      'E_KEY_UNSUPPORTED',
      `inspection '${name}' verifies a model signature by '${signer}' (uses: ${MODEL_VERIFY}), which needs an ECDSA key on P-256, P-384 or P-521, but '${signer}' has ${problem} (${f.keyFile})`,
      `${at}/signer`,
    );
    return none;
  }
  if (!ok || model === undefined) return none;
  const signature = given ?? defaultSignature(model);
  return { run: modelVerifyCommand(model, signature, publicKeyPem(f.key)), uses: Object.freeze({ kind: 'model-verify', model, signature, signer }) };
}

/** The readme with one line per built-in step, under {@link BUILTINS_HEADING}; unchanged when there is none. Never throws. */
export function withBuiltins(readme: string, steps: readonly PipelineStep[]): string {
  const lines = steps.flatMap((step) => {
    if (step.uses === undefined) return [];
    return [`  ${step.name}: ${MODEL_SIGN} ${step.uses.model} -> ${step.uses.signature} (OpenSSF Model Signing v1.0)`];
  });
  if (lines.length === 0) return readme;
  return `${readme}${readme === '' ? '' : '\n\n'}${BUILTINS_HEADING}\n${lines.join('\n')}`;
}

import { join, resolve } from 'node:path';
import { asInTotoError, type ErrorCode } from '../errors.js';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { loadPublicKeyFile } from '../crypto/keyfiles.js';
import { publicKeyToObject } from '../crypto/keys.js';
import { layoutFromJson, layoutToJson, parseExpires } from '../model/layout.js';
import { artifactNameProblem, stepNameProblem } from '../model/names.js';
import { parseTimeoutSeconds, TIMEOUT_RULE } from '../runner/step-files.js';
import { parseRuleString, patternProblem, ruleToTokens, shlexSplit, type ArtifactRule } from '../model/rules.js';
import { diagnostic, type Diagnostic, type DiagnosticId } from './diagnostics.js';
import { BUILTINS_HEADING, compileInspectionRun, compileStepUse, modelSignCommand, withBuiltins } from './builtins.js';
import type { Functionary, PipelineInspection, PipelineSource, PipelineStep } from './source.js';
import { pointerSegment, type SourceTree } from './yaml-source.js';

/**
 * YAML source tree (already checked against the source schema) -> {@link PipelineSource}.
 * Collects every problem as a diagnostic with its place; the compiled layout is only built
 * when there is none, and is then read back by the verifier's own layout reader.
 */

export interface CompileOptions {
  readonly file: string;
  readonly baseDir: string;
  /** Read functionary NAME's public key from `DIR/NAME.pub` instead of the path in the YAML. */
  readonly pubkeyDir?: string;
  /** The current time (ms since the epoch), for `expires_in` and the expiry checks. */
  readonly now: number;
}

type Raw = Readonly<Record<string, JsonValue>>;
const UNITS: Readonly<Record<string, number>> = { h: 3600_000, d: 86_400_000, w: 7 * 86_400_000 };
/** The longest `expires_in`: 100 years (the in-toto date format ends at year 9999 anyway). */
const MAX_EXPIRES_IN_MS = 36_500 * 86_400_000;

/** Compiles a schema-valid tree. Never throws: problems are returned as diagnostics. */
export function compileSource(tree: SourceTree, options: CompileOptions): { source?: PipelineSource; diagnostics: Diagnostic[] } {
  const out: Diagnostic[] = [];
  const root = tree.value as Raw;
  const report = (id: DiagnosticId, code: ErrorCode, message: string, pointer: string, part: 'key' | 'value' = 'value'): void => {
    out.push(diagnostic('error', id, code, message, { path: pointer, position: tree.positionOf(pointer, part) }));
  };

  const expiry = compileExpiry(root, options.now, report);
  const functionaries = compileFunctionaries(root, options, report);
  const names = new Set<string>();
  const nameOk = (name: string, kind: string, pointer: string): void => {
    const problem = stepNameProblem(name);
    if (problem !== undefined) report('step-name', 'E_STEP_NAME', `${kind} name ${JSON.stringify(name)} ${problem}`, pointer);
    else if (names.has(name)) report('duplicate-name', 'E_DUPLICATE_NAME', `more than one step or inspection is named '${name}'`, pointer);
    names.add(name);
  };
  const rawSteps = root['steps'] as readonly Raw[];
  const rawInspections = (root['inspections'] ?? []) as readonly Raw[];
  rawSteps.forEach((s, i) => nameOk(s['name'] as string, 'step', `/steps/${i}/name`));
  rawInspections.forEach((s, i) => nameOk(s['name'] as string, 'inspection', `/inspections/${i}/name`));

  const inspectionNames = new Set(rawInspections.map((s) => s['name'] as string));
  const rules = (list: JsonValue | undefined, pointer: string, ofStep = false): ArtifactRule[] =>
    ((list ?? []) as readonly string[]).flatMap((text, j) => {
      const at = `${pointer}/${j}`;
      try {
        const rule = parseRuleString(text, at);
        if (rule.kind === 'MATCH' && !names.has(rule.destStep)) {
          report('match-unknown-step', 'E_RULE_UNKNOWN_STEP', `rule '${rule.text}' reads from step '${rule.destStep}', which is neither a step nor an inspection here`, at);
        } else if (ofStep && rule.kind === 'MATCH' && inspectionNames.has(rule.destStep)) {
          report('match-from-inspection', 'E_RULE_UNKNOWN_STEP', `rule '${rule.text}' reads from an inspection, which runs only after every step's rules are checked: it can never match`, at);
        }
        return [rule];
      } catch (error) {
        const e = asInTotoError(error);
        report('rule-syntax', e.code, e.message.replace(`${at}: `, ''), at);
        return [];
      }
    });
  const timeoutOf = (value: JsonValue | undefined, pointer: string): number | undefined => {
    if (value === undefined) return undefined;
    const seconds = parseTimeoutSeconds(value as string);
    if (seconds === undefined) report('schema', 'E_SCHEMA', `${pointer}: must be ${TIMEOUT_RULE}, got ${JSON.stringify(value)}`, pointer);
    return seconds;
  };
  const command = (value: JsonValue | undefined, pointer: string): string[] | undefined => {
    if (value === undefined) return undefined;
    if (Array.isArray(value)) return [...(value as readonly string[])];
    const split = shlexSplit(value as string);
    if (!split.ok) report('run-syntax', 'E_LAYOUT_SOURCE', `the command does not split like a shell would: ${split.problem}`, pointer);
    else if (split.tokens.length === 0) report('run-syntax', 'E_LAYOUT_SOURCE', 'the command is empty', pointer);
    return split.ok ? split.tokens : [];
  };

  const steps = rawSteps.map((raw, index): PipelineStep => {
    const at = `/steps/${index}`;
    const listed = raw['functionaries'] as readonly string[];
    const unique: string[] = [];
    listed.forEach((name, j) => {
      if (!functionaries.has(name) && !functionaries.failed.has(name)) {
        report('functionary-unknown', 'E_LAYOUT_KEYS', `functionary '${name}' is not declared under functionaries`, `${at}/functionaries/${j}`);
      } else if (unique.includes(name)) report('schema', 'E_LAYOUT_KEYS', `functionary '${name}' is listed twice`, `${at}/functionaries/${j}`);
      else unique.push(name);
    });
    const threshold = raw['threshold'] === undefined ? 1 : Number(raw['threshold']);
    if (listed.length === 0) {
      report('step-unsignable', 'E_THRESHOLD', `step '${String(raw['name'])}' names no functionary: nobody can sign it`, `${at}/functionaries`);
    } else if (threshold > unique.length && unique.length === listed.length) {
      report('threshold-too-high', 'E_THRESHOLD', `threshold ${threshold} can never be met by ${unique.length} functionary(ies)`, raw['threshold'] === undefined ? at : `${at}/threshold`);
    }
    const uses = compileStepUse(raw, at, functionaries.map, report);
    const run = raw['uses'] === undefined ? command(raw['run'], `${at}/run`) : undefined;
    const expected = uses === undefined ? (command(raw['expected_command'], `${at}/expected_command`) ?? run ?? []) : modelSignCommand(uses);
    return Object.freeze({
      name: raw['name'] as string,
      functionaries: Object.freeze(unique),
      threshold,
      run: run === undefined ? undefined : Object.freeze(run),
      uses,
      expectedCommand: Object.freeze(expected),
      materials: Object.freeze(rules(raw['materials'], `${at}/materials`, true)),
      products: Object.freeze(rules(raw['products'], `${at}/products`, true)),
      timeoutSeconds: timeoutOf(raw['timeout'], `${at}/timeout`),
      grants: Object.freeze({
        env: Object.freeze([...new Set((raw['env'] ?? []) as readonly string[])]),
        network: raw['network'] === 'true',
        devices: Object.freeze([...new Set((raw['devices'] ?? []) as readonly string[])]),
      }),
      index,
    });
  });
  const inspections = rawInspections.map((raw, index): PipelineInspection => {
    const at = `/inspections/${index}`;
    const declared = (name: string): boolean => functionaries.has(name) || functionaries.failed.has(name);
    const { run, uses } = compileInspectionRun(raw, at, functionaries.map, declared, report);
    return Object.freeze({
      name: raw['name'] as string,
      run: Object.freeze(command(run, `${at}/run`) ?? []),
      uses,
      materials: Object.freeze(rules(raw['materials'], `${at}/materials`)),
      products: Object.freeze(rules(raw['products'], `${at}/products`)),
      index,
    });
  });
  const inputs = compileInputs(root, options.baseDir, report);
  const outputs = root['outputs'] === undefined ? undefined : [...(root['outputs'] as readonly string[])];
  outputs?.forEach((pattern, i) => {
    const problem = patternProblem(pattern);
    if (problem !== undefined) report('schema', 'E_SCHEMA', `output pattern ${JSON.stringify(pattern)} ${problem}`, `/outputs/${i}`);
  });
  const readme = (root['readme'] ?? '') as string;
  if (readme.includes(GRANTS_HEADING)) {
    report('schema', 'E_SCHEMA', `the readme must not contain the line "${GRANTS_HEADING}": it is written from the steps' env, network and devices`, '/readme');
  }
  if (readme.includes(BUILTINS_HEADING)) {
    report('schema', 'E_SCHEMA', `the readme must not contain the line "${BUILTINS_HEADING}": it is written from the steps' uses`, '/readme');
  }
  if (out.length > 0 || expiry === undefined) return { diagnostics: out };

  const base = { expires: expiry.expires, readme: withBuiltins(withGrants(readme, steps), steps), functionaries: functionaries.map, steps, inspections };
  const layoutJson = buildLayoutJson(base);
  try {
    const layout = layoutFromJson(layoutJson, options.file, { keepPlaceholders: true });
    const source: PipelineSource = Object.freeze({
      file: options.file,
      baseDir: options.baseDir,
      expiresAt: expiry.expiresAt,
      ...base,
      steps: Object.freeze(steps),
      inspections: Object.freeze(inspections),
      inputs,
      outputs: outputs === undefined ? undefined : Object.freeze(outputs),
      layout,
      layoutJson: layoutToJson(layout),
    });
    return { source, diagnostics: out };
  } catch (error) {
    const e = asInTotoError(error);
    const step = e.context.step;
    const index = step === undefined ? -1 : steps.findIndex((s) => s.name === step);
    report('layout-invalid', e.code, e.message, index >= 0 ? `/steps/${index}` : '');
    return { diagnostics: out };
  }
}

/**
 * The heading of the part of the signed layout's readme that lists what `pipeline run` grants
 * each step beyond the sandbox's defaults. The in-toto layout format has no field for it (a
 * step is name, threshold, pubkeys, expected_command and rules; in-toto 1.3.1 refuses any other
 * field), and putting it into expected_command would make every verification warn that the
 * command differs. The readme is signed with the rest, read by every in-toto tool, and shown
 * to whoever reviews the layout; `pipeline run --layout` compares the whole signed layout with
 * the one the YAML compiles to, so the grants it applies are exactly the signed ones.
 */
export const GRANTS_HEADING = 'Step grants (pipeline run gives these steps more than the sandbox default):';

/** The readme with one line per step that has grants, under {@link GRANTS_HEADING}; unchanged when none has. */
export function withGrants(readme: string, steps: readonly PipelineStep[]): string {
  const lines = steps.flatMap((step) => {
    const { env, network, devices } = step.grants;
    const parts = [...(network ? ['network'] : []), ...(env.length > 0 ? [`env ${env.join(' ')}`] : []), ...(devices.length > 0 ? [`devices ${devices.join(' ')}`] : [])];
    return parts.length === 0 ? [] : [`  ${step.name}: ${parts.join('; ')}`];
  });
  if (lines.length === 0) return readme;
  return `${readme}${readme === '' ? '' : '\n\n'}${GRANTS_HEADING}\n${lines.join('\n')}`;
}

type Report = (id: DiagnosticId, code: ErrorCode, message: string, pointer: string, part?: 'key' | 'value') => void;

function compileExpiry(root: Raw, now: number, report: Report): { expires: string; expiresAt: number } | undefined {
  const expires = root['expires'] as string | undefined;
  const expiresIn = root['expires_in'] as string | undefined;
  if ((expires === undefined) === (expiresIn === undefined)) {
    report('schema', 'E_SCHEMA', 'give exactly one of "expires" (a UTC time) and "expires_in" (such as 180d)', expires === undefined ? '' : '/expires_in');
    return undefined;
  }
  if (expiresIn !== undefined) {
    const amount = Number(expiresIn.slice(0, -1)) * (UNITS[expiresIn.slice(-1)] ?? 0);
    if (amount <= 0 || amount > MAX_EXPIRES_IN_MS) {
      const why = amount <= 0 ? 'a layout that expires at once verifies nothing' : 'it must be at most 100 years (36500d)';
      report('expires-format', 'E_EXPIRES_FORMAT', `expires_in ${JSON.stringify(expiresIn)}: ${why}`, '/expires_in');
      return undefined;
    }
    const at = Math.floor((now + amount) / 1000) * 1000;
    return { expires: `${new Date(at).toISOString().slice(0, 19)}Z`, expiresAt: at };
  }
  try {
    return { expires: expires as string, expiresAt: parseExpires(expires as string, 'expires') };
  } catch (error) {
    report('expires-format', 'E_EXPIRES_FORMAT', `expires ${JSON.stringify(expires)} is not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ (quote it, and give the time and the Z)`, '/expires');
    void error;
    return undefined;
  }
}

/** The functionaries that loaded, plus the names of those whose key could not be read. */
interface FunctionaryTable {
  readonly map: ReadonlyMap<string, Functionary>;
  readonly failed: ReadonlySet<string>;
  has(name: string): boolean;
}

function compileFunctionaries(root: Raw, options: CompileOptions, report: Report): FunctionaryTable {
  const map = new Map<string, Functionary>();
  const failed = new Set<string>();
  const byIdentity = new Map<string, string>();
  const raw = root['functionaries'] as Raw;
  for (const name of Object.keys(raw)) {
    const value = raw[name] as string | Raw;
    const pointer = `/functionaries/${pointerSegment(name)}`;
    const given = typeof value === 'string' ? value : (value['key'] as string);
    const pin = typeof value === 'string' ? undefined : (value['keyid'] as string | undefined);
    const keyFile = options.pubkeyDir === undefined ? resolve(options.baseDir, given) : join(options.pubkeyDir, `${name}.pub`);
    try {
      const key = loadPublicKeyFile(keyFile);
      if (pin !== undefined && !key.keyid.startsWith(pin)) {
        report('keyid-mismatch', 'E_KEYID_MISMATCH', `functionary '${name}': ${keyFile} holds key ${key.keyid}, not the pinned keyid ${pin}`, `${pointer}/keyid`);
        failed.add(name);
        continue;
      }
      const other = byIdentity.get(key.identity);
      if (other !== undefined) {
        report('functionary-same-key', 'E_LAYOUT_KEYS', `functionaries '${other}' and '${name}' have the same public key: one person would count twice`, pointer, 'key');
      }
      byIdentity.set(key.identity, name);
      map.set(name, Object.freeze({ name, keyFile, key }));
    } catch (error) {
      const e = asInTotoError(error);
      report('key-file', e.code, `functionary '${name}': ${e.message}`, pointer);
      failed.add(name);
    }
  }
  return { map, failed, has: (name) => map.has(name) };
}

function compileInputs(root: Raw, baseDir: string, report: Report): ReadonlyMap<string, string> {
  const inputs = new Map<string, string>();
  const raw = (root['inputs'] ?? Object.create(null)) as Raw;
  for (const name of Object.keys(raw)) {
    const problem = artifactNameProblem(name);
    if (problem !== undefined) {
      report('input-name', 'E_ARTIFACT_NAME', `input name ${JSON.stringify(name)} ${problem}`, `/inputs/${pointerSegment(name)}`, 'key');
      continue;
    }
    inputs.set(name, resolve(baseDir, raw[name] as string));
  }
  return inputs;
}

function buildLayoutJson(base: {
  expires: string;
  readme: string;
  functionaries: ReadonlyMap<string, Functionary>;
  steps: readonly PipelineStep[];
  inspections: readonly PipelineInspection[];
}): JsonObject {
  const keys = Object.create(null) as Record<string, JsonValue>;
  const keyidOf = (name: string): string => {
    const key = (base.functionaries.get(name) as Functionary).key;
    keys[key.keyid] = publicKeyToObject(key);
    return key.keyid;
  };
  const steps = base.steps.map((s) => ({
    _type: 'step',
    name: s.name,
    threshold: s.threshold,
    pubkeys: s.functionaries.map(keyidOf),
    expected_command: [...s.expectedCommand],
    expected_materials: s.materials.map(ruleToTokens),
    expected_products: s.products.map(ruleToTokens),
  }));
  const inspect = base.inspections.map((i) => ({
    _type: 'inspection',
    name: i.name,
    run: [...i.run],
    expected_materials: i.materials.map(ruleToTokens),
    expected_products: i.products.map(ruleToTokens),
  }));
  return { _type: 'layout', expires: base.expires, readme: base.readme, keys, steps, inspect };
}

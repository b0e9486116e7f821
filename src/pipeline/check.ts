import { existsSync } from 'node:fs';
import { asInTotoError } from '../errors.js';
import type { PublicKey } from '../crypto/keys.js';
import { lacksFinalDisallowAll, type ArtifactRule } from '../model/rules.js';
import { compilePattern } from '../verify/pattern.js';
import { MODEL_SIGN } from './builtins.js';
import { diagnostic, type Diagnostic, type DiagnosticId } from './diagnostics.js';
import { cycleMessage, orderSteps } from './plan.js';
import type { PipelineSource, PipelineStep } from './source.js';
import { listInputFiles } from './inputs.js';
import { inputsTaken } from './stage.js';
import { pointerSegment, type SourceTree } from './yaml-source.js';

/**
 * The judgement `intoto layout check` adds to a layout that compiles: places where the layout
 * is legal but weaker than its author probably meant (warnings), and the few things that
 * compile but can never work (errors: an expired layout, a cycle among steps).
 */

export interface CheckOptions {
  readonly now: number;
  /** The owner's public keys, when known, to catch an owner key reused as a functionary key. */
  readonly ownerKeys?: readonly PublicKey[];
  /** Warn when the layout expires more than this many years from now (default 1). */
  readonly maxExpiryYears?: number;
  /** Warn when the layout expires within this many days (default 30). */
  readonly soonDays?: number;
}

const DAY = 86_400_000;
/** A warning names at most this many steps (a 1,000-step layout made one 9 KB line). */
const MANY_LISTED = 5;

/** The warnings and late errors for a compiled source. Never throws. */
export function checkSource(source: PipelineSource, tree: SourceTree, options: CheckOptions): Diagnostic[] {
  const out: Diagnostic[] = [];
  const add = (severity: 'error' | 'warning', id: DiagnosticId, message: string, pointer: string, code: Diagnostic['code'] = 'E_LAYOUT_SOURCE'): void => {
    out.push(diagnostic(severity, id, code, message, { path: pointer, position: tree.positionOf(pointer) }));
  };
  const relative = (tree.value as Readonly<Record<string, unknown>>)['expires_in'] !== undefined;
  checkExpiry(source, options, relative ? '/expires_in' : '/expires', add);
  checkRules(source, add);
  checkFunctionaries(source, options, add);
  checkCommands(source, add);
  checkInputs(source, add);
  return out;
}

type Add = (severity: 'error' | 'warning', id: DiagnosticId, message: string, pointer: string, code?: Diagnostic['code']) => void;

function checkExpiry(source: PipelineSource, options: CheckOptions, pointer: string, add: Add): void {
  const years = options.maxExpiryYears ?? 1;
  const soon = options.soonDays ?? 30;
  if (source.expiresAt <= options.now) {
    add('error', 'expired', `the layout expired at ${source.expires}: every verification would fail`, pointer, 'E_LAYOUT_EXPIRED');
  } else if (source.expiresAt > options.now + years * 365.25 * DAY) {
    add('warning', 'expires-far', `the layout expires at ${source.expires}, more than ${years} year(s) away: a leaked step key stays useful that long`, pointer);
  } else if (source.expiresAt < Math.floor((options.now + soon * DAY) / 1000) * 1000) {
    // Compared at whole seconds, as expires is written: `expires_in: 30d` is not "within 30 days".
    add('warning', 'expires-soon', `the layout expires at ${source.expires}, within ${soon} days`, pointer);
  }
}

function checkRules(source: PipelineSource, add: Add): void {
  const stepIndex = new Map(source.steps.map((s) => [s.name, s.index]));
  const inspectionIndex = new Map(source.inspections.map((i) => [i.name, i.index]));
  const lists = [
    ...source.steps.flatMap((s) => [
      { owner: `step '${s.name}'`, kind: 'materials', rules: s.materials, at: `/steps/${s.index}`, self: s.name, step: s.index, inspection: -1 },
      { owner: `step '${s.name}'`, kind: 'products', rules: s.products, at: `/steps/${s.index}`, self: s.name, step: s.index, inspection: -1 },
    ]),
    ...source.inspections.flatMap((i) => [
      { owner: `inspection '${i.name}'`, kind: 'materials', rules: i.materials, at: `/inspections/${i.index}`, self: i.name, step: -1, inspection: i.index },
      { owner: `inspection '${i.name}'`, kind: 'products', rules: i.products, at: `/inspections/${i.index}`, self: i.name, step: -1, inspection: i.index },
    ]),
  ];
  for (const list of lists) {
    const pointer = `${list.at}/${list.kind}`;
    if (lacksFinalDisallowAll(list.rules)) {
      add('warning', 'no-final-disallow', `${list.owner} ${list.kind}: no final "DISALLOW *", so artifacts no rule mentions pass unchecked`, list.rules.length === 0 ? list.at : pointer);
    }
    const closing = list.rules.findIndex(isDisallowAll);
    if (closing >= 0 && closing < list.rules.length - 1) {
      add('warning', 'rule-after-disallow-all', `${list.owner} ${list.kind}: the rules after "${(list.rules[closing] as ArtifactRule).text}" never see an artifact`, `${pointer}/${closing + 1}`);
    }
    list.rules.forEach((rule, j) => {
      if (rule.kind !== 'MATCH' || rule.destStep === list.self) return;
      const at = `${pointer}/${j}`;
      const fromStep = stepIndex.get(rule.destStep);
      const fromInspection = inspectionIndex.get(rule.destStep);
      // (A step's MATCH from an inspection is an error of compile.ts: no source gets here with one.)
      if (list.step >= 0 && fromStep !== undefined && fromStep > list.step) {
        add('warning', 'match-later-step', `${list.owner}: '${rule.text}' reads from step '${rule.destStep}', which is listed later: list steps in the order data flows`, at);
      } else if (list.inspection >= 0 && fromInspection !== undefined && fromInspection > list.inspection) {
        add('warning', 'match-later-step', `${list.owner}: '${rule.text}' reads from inspection '${rule.destStep}', which runs later`, at);
      }
    });
  }
  const plan = orderSteps(source.steps);
  if (!plan.ok) {
    const first = source.steps.find((s) => s.name === plan.cycle[0]);
    add('error', 'pipeline-cycle', cycleMessage(plan.cycle), first === undefined ? '/steps' : `/steps/${first.index}`, 'E_PIPELINE_CYCLE');
  }
}

function isDisallowAll(rule: ArtifactRule): boolean {
  return rule.kind === 'DISALLOW' && /^\*+$/.test(rule.pattern);
}

function checkFunctionaries(source: PipelineSource, options: CheckOptions, add: Add): void {
  const owners = new Set((options.ownerKeys ?? []).map((k) => k.identity));
  for (const [name, f] of source.functionaries) {
    const pointer = `/functionaries/${pointerSegment(name)}`;
    const steps = source.steps.filter((s) => s.functionaries.includes(name)).map((s) => `'${s.name}'`);
    if (owners.has(f.key.identity)) {
      add('warning', 'owner-is-functionary', `functionary '${name}' uses the layout owner's key: whoever runs a step could also rewrite the layout`, pointer);
    }
    const signs = source.inspections.some((i) => i.uses?.signer === name);
    if (steps.length === 0 && !signs) add('warning', 'functionary-unused', `functionary '${name}' is authorised for no step (its key is left out of the layout)`, pointer);
    if (steps.length > 1) {
      const listed = steps.length > MANY_LISTED ? `${steps.slice(0, MANY_LISTED).join(', ')} and ${steps.length - MANY_LISTED} more` : steps.join(', ');
      add('warning', 'functionary-many-steps', `functionary '${name}' may sign ${steps.length} steps (${listed}): one stolen key can forge all of them (use a key per step)`, pointer);
    }
  }
}

function checkCommands(source: PipelineSource, add: Add): void {
  for (const step of source.steps) {
    const at = `/steps/${step.index}`;
    if (step.uses !== undefined) {
      checkSignatureLetOut(step, at, add);
      continue;
    }
    if (step.run !== undefined && isModelSignCommand(step.run)) {
      add(
        'warning',
        'model-sign-in-command',
        `step '${step.name}' runs intoto model sign as a command: the key it signs with would have to be among the step's inputs, readable by the command; use "uses: ${MODEL_SIGN}" with "model:", which signs outside the sandbox with the functionary's own key`,
        `${at}/run`,
      );
    }
    if (step.run === undefined) {
      add('warning', 'step-not-run', `step '${step.name}' has no "run": pipeline run will not run it, and verification needs its links from elsewhere`, at);
    } else if (step.expectedCommand.join('\u0000') !== step.run.join('\u0000')) {
      add('warning', 'expected-command-differs', `step '${step.name}': expected_command differs from run, so every verification of a pipeline run warns`, `${at}/expected_command`);
    }
  }
}

function isModelSignCommand(argv: readonly string[]): boolean {
  const program = argv[0]?.split('/').pop();
  return (program === 'intoto' && argv[1] === 'model' && argv[2] === 'sign') || (program === 'intoto-model' && argv[1] === 'sign');
}

/**
 * Warns when a model-sign step's product rules would refuse the signature it writes: the first
 * rule that would take the new file decides, as the verifier's queue does. Rules that never
 * take a new product (MATCH from another step or from materials, MODIFY, DELETE, REQUIRE) are
 * passed over.
 */
function checkSignatureLetOut(step: PipelineStep, at: string, add: Add): void {
  const use = step.uses;
  if (use === undefined) return;
  const rule = firstRuleTaking(step, use.signature);
  if (rule?.kind === 'DISALLOW') {
    add(
      'warning',
      'model-sign-products',
      `step '${step.name}' writes its signature ${use.signature}, but its product rule '${rule.text}' refuses it: every verification would fail; add "CREATE ${use.signature}" before it`,
      `${at}/products`,
    );
  }
}

function firstRuleTaking(step: PipelineStep, name: string): ArtifactRule | undefined {
  for (const rule of step.products) {
    if (rule.kind === 'MODIFY' || rule.kind === 'DELETE' || rule.kind === 'REQUIRE') continue;
    if (rule.kind === 'MATCH') {
      if (rule.destStep !== step.name || rule.destType !== 'products') continue;
      const prefix = rule.sourcePrefix === '' || rule.sourcePrefix.endsWith('/') ? rule.sourcePrefix : `${rule.sourcePrefix}/`;
      if (name.startsWith(prefix) && compilePattern(rule.pattern).matches(name.slice(prefix.length))) return rule;
      continue;
    }
    if (compilePattern(rule.pattern).matches(name)) return rule;
  }
  return undefined;
}

function checkInputs(source: PipelineSource, add: Add): void {
  const files = new Map<string, string>();
  const owner = new Map<string, string>(); // listed file -> the input entry it came from
  for (const [name, path] of source.inputs) {
    const pointer = `/inputs/${pointerSegment(name)}`;
    if (!existsSync(path)) {
      add('warning', 'input-missing', `input '${name}': ${path} does not exist (pipeline run needs it)`, pointer, 'E_IO');
      continue;
    }
    try {
      for (const [file, real] of listInputFiles(new Map([[name, path]]))) {
        files.set(file, real);
        owner.set(file, name);
      }
    } catch (error) {
      add('warning', 'input-missing', `input '${name}': ${asInTotoError(error).message}`, pointer, 'E_IO');
    }
  }
  const used = new Set<string>();
  for (const step of source.steps) {
    for (const file of inputsTaken(step.materials, files)) used.add(owner.get(file) ?? file);
  }
  for (const [name, path] of source.inputs) {
    if (!used.has(name) && existsSync(path)) {
      add('warning', 'input-unused', `input '${name}' is let in by no step's material rules (ALLOW, MODIFY or DELETE)`, `/inputs/${pointerSegment(name)}`);
    }
  }
}

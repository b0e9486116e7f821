import { VerificationError } from '../errors.js';
import { tableOf } from '../model/artifact-table.js';
import type { ArtifactMap } from '../model/artifacts.js';
import type { ArtifactRule } from '../model/rules.js';
import { compilePattern, type Pattern } from './pattern.js';
import { ArtifactQueue } from './queue.js';
import { applyAllow, applyCreate, applyDelete, applyMatch, applyModify, type LinkLookup, type Outcome, type QueueState } from './rule-kinds.js';

/**
 * Applying one step's (or inspection's) expected_materials or expected_products, with the
 * reference's queue semantics (verifylib.verify_item_rules):
 *
 * 1. The queue starts as every artifact of that kind (materials or products).
 * 2. Rules run in order; each consuming rule (MATCH, CREATE, DELETE, MODIFY, ALLOW) removes
 *    what it consumed, so later rules never see it.
 * 3. DISALLOW fails if any artifact still queued matches; REQUIRE fails if its artifact is no
 *    longer (or never was) in the queue. Nothing else fails: consuming alone is no verdict.
 *
 * Rules arrive parsed (model/rules.ts); patterns are compiled once per call.
 */

/** What a rule list reads: its own link's artifacts, and other steps' links for MATCH. */
export interface RuleContext {
  /** This step's (or inspection's) materials and products, from its link. */
  readonly materials: ArtifactMap;
  readonly products: ArtifactMap;
  /** The link of another step, for MATCH; undefined when it has none. */
  readonly linkOf: LinkLookup;
}

/** What one rule did, for `-v` and the JSON report. */
export interface RuleTrace {
  readonly rule: string;
  readonly consumed: readonly string[];
  /** Why matching artifacts were left in the queue (hash mismatches, a missing link, ...). */
  readonly notes: readonly string[];
}

/** Whose rules these are, for messages. */
export interface RuleSubject {
  readonly stepOrInspection: 'step' | 'inspection';
  readonly name: string;
}

const NOTHING: Outcome = Object.freeze({ consumed: [], notes: [] });

/** How many names a line of the `-v` trace lists before summarising. */
const MAX_NAMES_SHOWN = 10;

/**
 * Applies `rules` to the `kind` artifacts of `who`, returning what each rule consumed.
 * @throws VerificationError E_RULE_DISALLOW when a DISALLOW rule matches a queued artifact,
 *   E_RULE_REQUIRE when a REQUIRE rule's artifact is not queued. The message is one line naming
 *   the step, the rule, the artifact and, when an earlier MATCH or MODIFY left that artifact
 *   because of its digests, both digests or why they could not be compared; `details` holds
 *   the rule-by-rule trace.
 */
export function applyRules(
  kind: 'materials' | 'products',
  rules: readonly ArtifactRule[],
  ctx: RuleContext,
  who: RuleSubject,
): { readonly trace: readonly RuleTrace[] } {
  const materials = tableOf(ctx.materials);
  const products = tableOf(ctx.products);
  const state: QueueState = {
    kind,
    name: who.name,
    queue: new ArtifactQueue(kind === 'materials' ? materials : products),
    materials,
    products,
    linkOf: ctx.linkOf,
    reasons: new Map(),
  };
  const trace: RuleTrace[] = [];
  for (const rule of rules) {
    // Each rule consumes from the queue as it goes; no rule's decision about one artifact
    // depends on another's, so this equals the reference's "compute, then subtract".
    const outcome = applyOne(rule, state, trace, who);
    trace.push({ rule: rule.text, consumed: outcome.consumed, notes: outcome.notes });
  }
  return { trace };
}

function applyOne(rule: ArtifactRule, s: QueueState, trace: readonly RuleTrace[], who: RuleSubject): Outcome {
  if (rule.kind === 'REQUIRE') {
    if (!s.queue.has(rule.path)) throw requireFailure(rule, s, trace, who);
    return { consumed: [], notes: [] };
  }
  const pattern = compilePattern(rule.pattern);
  switch (rule.kind) {
    case 'MATCH':
      return applyMatch(rule, pattern, s);
    // Every queued name is in the queue's own map, so one lookup decides; and CREATE can
    // consume no material, DELETE no product.
    case 'CREATE':
      return s.kind === 'products' ? applyCreate(pattern, s) : NOTHING;
    case 'DELETE':
      return s.kind === 'materials' ? applyDelete(pattern, s) : NOTHING;
    case 'MODIFY':
      return applyModify(rule, pattern, s);
    case 'ALLOW':
      return applyAllow(pattern, s);
    case 'DISALLOW':
      checkDisallow(rule, pattern, s, trace, who);
      return { consumed: [], notes: [] };
  }
}

function subject(who: RuleSubject, kind: string): string {
  return `${who.stepOrInspection} '${who.name}': expected_${kind} rule`;
}

function checkDisallow(rule: ArtifactRule, pattern: Pattern, s: QueueState, trace: readonly RuleTrace[], who: RuleSubject): void {
  if (s.queue.size === 0) return;
  const hits = s.queue.matching(pattern);
  if (hits.length === 0) return;
  // Name the artifact an earlier hash check explains, if any, else the first in sorted order
  // (the queue's order depends on the link's, and messages should be stable).
  const sorted = hits.sort();
  const artifact = sorted.find((name) => s.reasons.has(name)) ?? sorted[0] ?? '';
  const more = hits.length > 1 ? ` (and ${hits.length - 1} more)` : '';
  const reason = s.reasons.get(artifact);
  const message =
    `${subject(who, s.kind)} '${rule.text}' matched ${JSON.stringify(artifact)}${more}` +
    (reason === undefined ? '' : `; ${reason}`);
  const details = [
    ...traceLines(s, trace, who),
    `'${rule.text}' matched: ${listed(sorted)}`,
  ];
  throw new VerificationError('E_RULE_DISALLOW', message, {
    details,
    context: { [who.stepOrInspection]: who.name, rule: rule.text, artifact },
  });
}

function requireFailure(
  rule: Extract<ArtifactRule, { kind: 'REQUIRE' }>,
  s: QueueState,
  trace: readonly RuleTrace[],
  who: RuleSubject,
): VerificationError {
  const all = s.kind === 'materials' ? s.materials : s.products;
  const consumer = trace.find((t) => t.consumed.includes(rule.path));
  const why = !all.has(rule.path)
    ? `it is not among the ${s.kind}`
    : `it was consumed earlier by '${consumer?.rule ?? '?'}'`;
  const reason = s.reasons.get(rule.path);
  const message =
    `${subject(who, s.kind)} '${rule.text}' did not find ${JSON.stringify(rule.path)} in the queue: ${why}` +
    (reason === undefined ? '' : `; ${reason}`);
  return new VerificationError('E_RULE_REQUIRE', message, {
    details: traceLines(s, trace, who),
    context: { [who.stepOrInspection]: who.name, rule: rule.text, artifact: rule.path },
  });
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, MAX_NAMES_SHOWN).map((n) => JSON.stringify(n));
  if (names.length > MAX_NAMES_SHOWN) shown.push(`... and ${names.length - MAX_NAMES_SHOWN} more`);
  return shown.length === 0 ? 'nothing' : shown.join(', ');
}

/** The rule-by-rule trace as lines for `-v`. */
function traceLines(s: QueueState, trace: readonly RuleTrace[], who: RuleSubject): string[] {
  const lines = [
    `trace of expected_${s.kind} of ${who.stepOrInspection} '${who.name}' ` +
      `(${s.materials.size} materials, ${s.products.size} products; queue from ${s.kind}):`,
  ];
  for (const t of trace) {
    lines.push(`  '${t.rule}' consumed ${t.consumed.length}: ${listed(t.consumed)}`);
    for (const note of t.notes) lines.push(`    ${note}`);
  }
  lines.push(`  left in the queue: ${s.queue.size}: ${listed(s.queue.list())}`);
  return lines;
}

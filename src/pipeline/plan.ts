import { PipelineError } from '../errors.js';
import { matchTargets } from '../model/rules.js';
import type { PipelineStep } from './source.js';

/**
 * The order a pipeline runs in: a step runs after every other step its MATCH rules read from
 * (materials or products, since verifying either needs that step's link). Among steps that
 * are ready, the one listed first in the YAML goes first, so a layout written in data-flow
 * order runs in exactly that order.
 */

/** The other steps (not inspections, not itself) that `step`'s MATCH rules read from. Never throws. */
export function dependenciesOf(step: PipelineStep, stepNames: ReadonlySet<string>): string[] {
  return matchTargets([...step.materials, ...step.products]).filter((name) => name !== step.name && stepNames.has(name));
}

export type PlanResult = { readonly ok: true; readonly order: readonly PipelineStep[] } | { readonly ok: false; readonly cycle: readonly string[] };

/** Orders the steps (Kahn's algorithm, stable by YAML order), or returns one cycle. Never throws. */
export function orderSteps(steps: readonly PipelineStep[]): PlanResult {
  const names = new Set(steps.map((s) => s.name));
  const deps = new Map(steps.map((s) => [s.name, new Set(dependenciesOf(s, names))]));
  const done = new Set<string>();
  const order: PipelineStep[] = [];
  while (order.length < steps.length) {
    const next = steps.find((s) => !done.has(s.name) && [...(deps.get(s.name) ?? [])].every((d) => done.has(d)));
    if (next === undefined) return { ok: false, cycle: findCycle(steps.filter((s) => !done.has(s.name)), deps) };
    done.add(next.name);
    order.push(next);
  }
  return { ok: true, order };
}

/**
 * The steps in run order.
 * @throws PipelineError E_PIPELINE_CYCLE naming the cycle, e.g. "train -> evaluate -> train"
 */
export function planSteps(steps: readonly PipelineStep[]): readonly PipelineStep[] {
  const plan = orderSteps(steps);
  if (plan.ok) return plan.order;
  throw new PipelineError('E_PIPELINE_CYCLE', cycleMessage(plan.cycle), { context: { step: plan.cycle[0] ?? '' } });
}

/** "steps read from each other in a cycle: a -> b -> a (each MATCHes FROM the next)". */
export function cycleMessage(cycle: readonly string[]): string {
  return `steps read from each other in a cycle, so none of them can run first: ${cycle.join(' -> ')} (each MATCHes ... FROM the next)`;
}

/** A cycle among `remaining` (every one of them waits on another), as names with the first repeated last. */
function findCycle(remaining: readonly PipelineStep[], deps: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const waiting = new Set(remaining.map((s) => s.name));
  // Walk from any waiting step along a dependency that is also waiting; some name must repeat.
  const path: string[] = [];
  const seenAt = new Map<string, number>();
  let current = remaining[0]?.name;
  while (current !== undefined && !seenAt.has(current)) {
    seenAt.set(current, path.length);
    path.push(current);
    current = [...(deps.get(current) ?? [])].find((d) => waiting.has(d));
  }
  if (current === undefined) return path;
  return [...path.slice(seenAt.get(current) ?? 0), current];
}

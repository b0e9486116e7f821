import { UsageError } from '../errors.js';
import { dependenciesOf } from '../pipeline/plan.js';
import { performedByPipeline, type PipelineStep } from '../pipeline/source.js';

/**
 * From a planned pipeline to the jobs an engine runs: one job per step run (a threshold-N step
 * gives N jobs, each by a different functionary on that functionary's own machine), each after
 * every run of the steps its MATCH rules read from, then one verification job after them all.
 * The same plan feeds Slurm and the GitHub Actions and Argo exports.
 */

export interface StepJob {
  readonly kind: 'step';
  /** Unique within the plan: `STEP` for a single run, `STEP.FUNCTIONARY` when the step has several. */
  readonly key: string;
  readonly step: string;
  readonly functionary: string;
  /** The machine (Slurm node, runner label) of that functionary; undefined when any may run it. */
  readonly node: string | undefined;
  /** 1-based run number within the step, and the step's number of runs (its threshold). */
  readonly run: number;
  readonly runs: number;
  /** Keys of the jobs that must complete successfully first. */
  readonly after: readonly string[];
}

export interface VerifyJob {
  readonly kind: 'verify';
  /** `verify` (or `verify-2`, ... when a step run already has that key). */
  readonly key: string;
  readonly node: string | undefined;
  readonly after: readonly string[];
}

export type PlannedJob = StepJob | VerifyJob;

export interface JobPlan {
  /** In submission order: every job after the jobs it waits for; the verification last. */
  readonly jobs: readonly PlannedJob[];
  /** Steps without `run` or `uses` (performed outside the pipeline): no job, and nothing waits for them. */
  readonly skipped: readonly string[];
}

export interface PlanJobsOptions {
  /** The steps in run order (planSteps), with parameters substituted. */
  readonly steps: readonly PipelineStep[];
  /**
   * Functionary -> machine. When given, a step runs only by functionaries that have one, and
   * the runs of a threshold step must be on different machines. When undefined, every
   * functionary may run anywhere (exports that pick machines by label per functionary).
   */
  readonly machines?: ReadonlyMap<string, string>;
  /** Where the verification runs; undefined: anywhere. */
  readonly verifyNode?: string;
}

/**
 * Plans the jobs.
 * @throws UsageError E_USAGE when a step has fewer functionaries with a machine than its
 *   threshold, or when two of its runs would share one machine (a threshold counts
 *   independent machines)
 */
export function planJobs(options: PlanJobsOptions): JobPlan {
  const names = new Set(options.steps.map((s) => s.name));
  const jobs: PlannedJob[] = [];
  const skipped: string[] = [];
  for (const step of options.steps) {
    // A built-in step (uses: model-sign) is a job like any other: `intoto pipeline step` on
    // its functionary's machine performs it with that functionary's key.
    if (!performedByPipeline(step)) {
      skipped.push(step.name);
      continue;
    }
    const runners = chooseRunners(step, options.machines);
    // In plan order (the order they were submitted), whatever the order of the rules.
    const deps = new Set(dependenciesOf(step, names));
    const after = jobs.filter((job) => job.kind === 'step' && deps.has(job.step)).map((job) => job.key);
    const keys = runners.map((functionary) => unique(runners.length === 1 ? step.name : `${step.name}.${functionary}`, jobs));
    runners.forEach((functionary, i) => {
      jobs.push({
        kind: 'step',
        key: keys[i] as string,
        step: step.name,
        functionary,
        node: options.machines?.get(functionary),
        run: i + 1,
        runs: runners.length,
        after,
      });
    });
  }
  jobs.push({ kind: 'verify', key: unique('verify', jobs), node: options.verifyNode, after: jobs.map((j) => j.key) });
  return { jobs, skipped };
}

/** `key`, or `key-2`, `key-3`, ... when a job already has it (a step named `verify`, or `a.b` beside step `a` run by `b`). */
function unique(key: string, jobs: readonly PlannedJob[]): string {
  const taken = new Set(jobs.map((j) => j.key));
  let candidate = key;
  for (let n = 2; taken.has(candidate); n++) candidate = `${key}-${n}`;
  return candidate;
}

/** The first `threshold` functionaries (YAML order) that have a machine, on distinct machines. */
function chooseRunners(step: PipelineStep, machines: ReadonlyMap<string, string> | undefined): string[] {
  if (machines === undefined) return step.functionaries.slice(0, step.threshold);
  const placed = step.functionaries.filter((name) => machines.has(name));
  if (placed.length < step.threshold) {
    const missing = step.functionaries.filter((name) => !machines.has(name));
    throw new UsageError('E_USAGE', `step '${step.name}' needs ${step.threshold} functionary machine(s) and ${placed.length} are given; give --node FUNCTIONARY=NODE for ${missing.join(', ')}`);
  }
  const chosen = placed.slice(0, step.threshold);
  const byMachine = new Map<string, string>();
  for (const name of chosen) {
    const machine = machines.get(name) as string;
    const other = byMachine.get(machine);
    if (other !== undefined) {
      throw new UsageError('E_USAGE', `step '${step.name}' has threshold ${step.threshold}, but '${other}' and '${name}' would both run on ${machine}: a threshold counts independent machines, so give each functionary its own node`);
    }
    byMachine.set(machine, name);
  }
  return chosen;
}

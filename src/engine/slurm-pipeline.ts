import { UsageError } from '../errors.js';
import type { JobPlan, PlannedJob, StepJob, VerifyJob } from './jobs.js';
import type { SlurmJobSpec } from './slurm.js';
import { stepCommand, verifyCommand, type StepCommandOptions } from './step-command.js';

/**
 * A job plan as Slurm jobs: each step run's job runs `intoto pipeline step` as its
 * functionary, with the key path configured for that node, and the last job runs `intoto
 * pipeline verify`. (`--engine slurm` of `intoto pipeline run` builds on this.)
 */

/** The command of each kind of job. */
export interface JobCommands {
  step(job: StepJob): readonly string[];
  verify(job: VerifyJob): readonly string[];
}

export interface IntotoCommandOptions extends StepCommandOptions {
  /**
   * Where a functionary's private key is on its node, with `{functionary}` and `{node}`
   * replaced, e.g. `/etc/intoto/keys/{functionary}`. Only this path goes into the job.
   */
  readonly keyPath: string;
  /** Where the verification job materialises the final products on a pass (a path on its node). */
  readonly outDir?: string;
  /** `--sandbox` of the step and verification jobs. */
  readonly sandbox?: string;
  /** `--timeout` of the step jobs (for steps that set none). */
  readonly timeout?: string;
}

/**
 * The commands of a real run: `intoto pipeline step` and `intoto pipeline verify`.
 * @throws UsageError E_USAGE when the key path template has an unknown `{placeholder}`
 */
export function intotoCommands(options: IntotoCommandOptions): JobCommands {
  expandTemplate(options.keyPath, { functionary: 'f', node: 'n' }, '--key-path');
  return {
    step: (job) => stepCommand({ ...options, step: job.step, functionary: job.functionary, keyPath: expandTemplate(options.keyPath, { functionary: job.functionary, node: job.node ?? '' }, '--key-path') }),
    verify: () => verifyCommand(options),
  };
}

/**
 * The Slurm jobs of a plan. `output` gives each job's output file (a path on its node), or
 * undefined to discard it. Never throws.
 */
export function slurmJobSpecs(plan: JobPlan, commands: JobCommands, output?: (job: PlannedJob) => string | undefined): SlurmJobSpec[] {
  return plan.jobs.map((job) => ({
    key: job.key,
    step: job.kind === 'step' ? job.step : 'verify',
    functionary: job.kind === 'step' ? job.functionary : undefined,
    node: job.node,
    after: job.after,
    argv: job.kind === 'step' ? commands.step(job) : commands.verify(job),
    output: output?.(job),
  }));
}

/**
 * `template` with `{name}` replaced by `values[name]`.
 * @throws UsageError E_USAGE naming `what` for a placeholder not in `values`, or an unpaired brace
 */
export function expandTemplate(template: string, values: Readonly<Record<string, string>>, what: string): string {
  return template.replace(/\{([^{}]*)\}|[{}]/g, (match, name: string | undefined) => {
    if (name === undefined || !Object.hasOwn(values, name)) {
      throw new UsageError('E_USAGE', `${what} '${template}': ${name === undefined ? `unpaired '${match}'` : `unknown placeholder {${name}}`} (known: ${Object.keys(values).map((k) => `{${k}}`).join(', ')})`);
    }
    return values[name] as string;
  });
}

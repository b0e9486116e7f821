import { basename } from 'node:path';
import { Document } from 'yaml';
import { UsageError } from '../errors.js';
import { distinctNames, githubJobId, githubSecretName, kubeName, uniqueIds } from './export-names.js';
import { exportHeader, exportPlan, type ExportOptions } from './export-plan.js';
import { shellWord } from './shell.js';
import { stepCommand, verifyCommand } from './step-command.js';

/**
 * `intoto pipeline export --to github-actions`: a workflow with one job per step run, `needs:`
 * from the plan, a final verification job. Each step run's job runs on the self-hosted runner
 * labelled for its functionary (`intoto-<functionary>`, the functionary's own machine), in the
 * GitHub environment of the same name, whose secret `INTOTO_KEY_<FUNCTIONARY>` holds that
 * functionary's private key: environment secrets reach only the jobs that name the
 * environment, and the environment's protection rules decide which branches and reviewers may
 * use the key. The run id is an input, the one the owner gave `intoto pipeline publish`.
 */

// Words the shell must expand, never quote: stand-ins in the argv, replaced when rendered.
const RUN_ID = '\u0000run-id';
const KEY = '\u0000key';
const OUT = '\u0000out';
const EXPANSIONS = new Map([
  [RUN_ID, '"$INTOTO_RUN_ID"'],
  [KEY, '"$key"'],
  [OUT, '"$RUNNER_TEMP/intoto-verified"'],
]);

/** The runner label and environment name of a functionary. */
export function githubRole(functionary: string): string {
  return `intoto-${kubeName(functionary)}`;
}

/**
 * The workflow, as YAML.
 * @throws UsageError E_USAGE when two functionaries would share a secret or runner label;
 *   FormatError E_PARAM; PipelineError E_PIPELINE_CYCLE
 */
export function githubWorkflow(options: ExportOptions): string {
  const plan = exportPlan(options);
  const intoto = options.intoto ?? ['intoto'];
  const functionaries = [...new Set(plan.jobs.flatMap((job) => (job.kind === 'step' ? [job.functionary] : [])))];
  const secrets = distinctNames(functionaries, githubSecretName, 'GitHub secret');
  const roles = distinctNames(functionaries, githubRole, 'runner label and environment');
  const ids = uniqueIds(plan.jobs.map((job) => job.key), githubJobId);
  const id = (key: string): string => ids.get(key) as string;
  const common = { intoto, layout: options.layoutPath, store: options.store, runId: RUN_ID, params: options.params, ownerKeys: options.layoutKeys };
  const checkout = { uses: 'actions/checkout@v4', with: { 'persist-credentials': false } };
  const runIdEnv = { INTOTO_RUN_ID: '${{ inputs.run-id }}' };

  const jobs: Record<string, unknown> = {};
  for (const job of plan.jobs) {
    const needs = job.after.map(id);
    if (job.kind === 'step') {
      const argv = stepCommand({ ...common, step: job.step, functionary: job.functionary, keyPath: KEY });
      const script = [
        'set -eu',
        '# The key lives in a file of the runner only while the step runs; the step never sees it.',
        'key="$RUNNER_TEMP/intoto-key"',
        "trap 'rm -f \"$key\"' EXIT",
        '(umask 077 && printf \'%s\\n\' "$INTOTO_KEY" > "$key")',
        'unset INTOTO_KEY',
        render(argv),
      ].join('\n');
      jobs[id(job.key)] = {
        name: noExpression(job.runs === 1 ? `${job.step} (${job.functionary})` : `${job.step} (${job.functionary}, run ${job.run} of ${job.runs})`),
        'runs-on': ['self-hosted', roles.get(job.functionary)],
        environment: roles.get(job.functionary),
        ...(needs.length === 0 ? {} : { needs }),
        steps: [checkout, { name: noExpression(`intoto pipeline step ${job.step} as ${job.functionary}`), env: { INTOTO_KEY: `\${{ secrets.${secrets.get(job.functionary)} }}`, ...runIdEnv }, run: `${script}\n` }],
      };
    } else {
      const argv = verifyCommand({ ...common, outDir: OUT });
      jobs[id(job.key)] = {
        name: 'verify the whole chain',
        'runs-on': ['self-hosted', 'intoto-verifier'],
        needs,
        steps: [
          checkout,
          { name: 'intoto pipeline verify', env: runIdEnv, run: `set -eu\n${render(argv)}\n` },
          { name: 'the final products, only after a pass', uses: 'actions/upload-artifact@v4', with: { name: 'verified-products', path: '${{ runner.temp }}/intoto-verified', 'if-no-files-found': 'error' } },
        ],
      };
    }
  }

  const workflow = {
    name: noExpression(`intoto pipeline ${basename(options.layoutPath)}`),
    on: {
      workflow_dispatch: {
        inputs: {
          'run-id': { description: 'the run id the layout owner gave intoto pipeline publish', required: true, type: 'string' },
        },
      },
    },
    permissions: { contents: 'read' },
    jobs,
  };
  const doc = new Document(workflow, { aliasDuplicateObjects: false });
  doc.commentBefore = exportHeader(options, 'GitHub Actions');
  return doc.toString({ lineWidth: 0 });
}

/**
 * argv as one shell line, with the stand-ins expanded by the shell.
 * @throws UsageError E_USAGE for a word holding `${{`, which GitHub would evaluate as an
 *   expression before the shell ever sees it
 */
function render(argv: readonly string[]): string {
  return argv.map((word) => EXPANSIONS.get(word) ?? shellWord(noExpression(word))).join(' ');
}

/** @throws UsageError E_USAGE when `text` holds `${{` */
function noExpression(text: string): string {
  if (text.includes('${{')) throw new UsageError('E_USAGE', `'${text}' contains '\${{', which GitHub Actions would evaluate as an expression; rename it or change the value`);
  return text;
}

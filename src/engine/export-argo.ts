import { basename } from 'node:path';
import { Document } from 'yaml';
import { distinctNames, kubeName, uniqueIds } from './export-names.js';
import { exportHeader, exportPlan, type ExportOptions } from './export-plan.js';
import { stepCommand, verifyCommand } from './step-command.js';

/**
 * `intoto pipeline export --to argo`: an Argo Workflow whose entrypoint is a DAG with one task
 * per step run (dependencies from the plan) and a final verification task. Each step run has
 * its own template: a container named `main` running `intoto pipeline step`, scheduled with
 * a node selector on its functionary's nodes (`intoto-functionary: <name>`), and mounting only
 * that functionary's Kubernetes secret `intoto-key-<functionary>` (read-only, mode 0400) as
 * its key. The run id and the image are workflow parameters given at submission
 * (`argo submit -p run-id=ID -p image=IMAGE`).
 */

/** Where a step run's pod finds its functionary's key (the secret's `key` entry). */
export const ARGO_KEY_DIR = '/var/run/intoto';
export const ARGO_KEY_PATH = `${ARGO_KEY_DIR}/key`;

/** The Kubernetes secret holding a functionary's private key (under the entry `key`). */
export function argoSecretName(functionary: string): string {
  return `intoto-key-${kubeName(functionary, 52)}`;
}

/**
 * The Workflow, as YAML.
 * @throws UsageError E_USAGE when two functionaries would share a secret or node label;
 *   FormatError E_PARAM; PipelineError E_PIPELINE_CYCLE
 */
export function argoWorkflow(options: ExportOptions): string {
  const plan = exportPlan(options);
  const intoto = options.intoto ?? ['intoto'];
  const functionaries = [...new Set(plan.jobs.flatMap((job) => (job.kind === 'step' ? [job.functionary] : [])))];
  const secrets = distinctNames(functionaries, argoSecretName, 'Kubernetes secret');
  const labels = distinctNames(functionaries, (name) => kubeName(name), 'node label value');
  // Template and task names: the DAG's own name first, so no step can take it.
  const ids = uniqueIds(['pipeline', ...plan.jobs.map((job) => job.key)], (key) => kubeName(key, 60));
  const id = (key: string): string => ids.get(key) as string;
  const common = { intoto, layout: options.layoutPath, store: options.store, runId: '{{workflow.parameters.run-id}}', params: options.params, ownerKeys: options.layoutKeys };
  const image = '{{workflow.parameters.image}}';

  const templates: unknown[] = [
    {
      name: id('pipeline'),
      dag: { tasks: plan.jobs.map((job) => ({ name: id(job.key), template: id(job.key), ...(job.after.length === 0 ? {} : { dependencies: job.after.map(id) }) })) },
    },
  ];
  for (const job of plan.jobs) {
    if (job.kind === 'step') {
      templates.push({
        name: id(job.key),
        metadata: { labels: { 'intoto-step': kubeName(job.step), 'intoto-functionary': labels.get(job.functionary) } },
        nodeSelector: { 'intoto-functionary': labels.get(job.functionary) },
        volumes: [{ name: 'intoto-key', secret: { secretName: secrets.get(job.functionary), defaultMode: 0o400, items: [{ key: 'key', path: 'key' }] } }],
        container: {
          name: 'main',
          image,
          command: stepCommand({ ...common, step: job.step, functionary: job.functionary, keyPath: ARGO_KEY_PATH }),
          volumeMounts: [{ name: 'intoto-key', mountPath: ARGO_KEY_DIR, readOnly: true }],
        },
      });
    } else {
      templates.push({
        name: id(job.key),
        container: { name: 'main', image, command: verifyCommand(common) },
      });
    }
  }

  const workflow = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: { generateName: `intoto-${kubeName(basename(options.layoutPath).replace(/\.ya?ml$/, ''), 40)}-` },
    spec: {
      entrypoint: id('pipeline'),
      arguments: {
        parameters: [
          { name: 'run-id', description: 'the run id the layout owner gave intoto pipeline publish' },
          { name: 'image', description: 'an image with intoto on its PATH and the layout at the path in the commands' },
        ],
      },
      templates,
    },
  };
  const doc = new Document(workflow, { aliasDuplicateObjects: false });
  doc.commentBefore = exportHeader(options, 'Argo');
  return doc.toString({ lineWidth: 0 });
}

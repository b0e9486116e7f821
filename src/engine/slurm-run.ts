import { dirname, isAbsolute } from 'node:path';
import type { SigningKey } from '../crypto/signatures.js';
import type { RegistryClient } from '../oci/client.js';
import { withParams } from '../pipeline/params.js';
import { planSteps } from '../pipeline/plan.js';
import type { PipelineSource } from '../pipeline/source.js';
import { planJobs, type JobPlan, type PlannedJob } from './jobs.js';
import { publishRun, type PublishResult } from './run-publish.js';
import { expandTemplate, intotoCommands, slurmJobSpecs } from './slurm-pipeline.js';
import { runSlurmJobs, type SlurmEvent, type SlurmRunResult } from './slurm.js';
import type { SlurmClient } from './slurm-cli.js';
import type { StoreRef } from './step-command.js';

/**
 * `intoto pipeline run LAYOUT --engine slurm --store oci://... --node F=NODE...`: the layout
 * owner's machine publishes the run (run-publish.ts), then Slurm runs it: one batch job per
 * step run, pinned to its functionary's node and chained with `afterok` (slurm.ts), each
 * running `intoto pipeline step` with the key path configured for its node (the key never
 * leaves the node), then a job running `intoto pipeline verify`. The engine follows the jobs,
 * reports each change, and on a failure cancels what is left and names the step, node and
 * reason.
 *
 * Every path in the jobs' command lines is a path on the nodes: the layout and the public
 * keys at the same path as here (a cluster's shared file system), the private key from the
 * `keyPath` template per functionary and node.
 */

export interface SlurmPipelineOptions {
  readonly source: PipelineSource;
  readonly params: ReadonlyMap<string, string>;
  readonly store: StoreRef;
  readonly runId: string;
  /** The owner's keys (they sign the run record, and the layout unless `signedLayout`). */
  readonly ownerKeys: readonly SigningKey[];
  readonly signedLayout?: Uint8Array;
  readonly useDsse?: boolean;
  /** Functionary -> Slurm node. */
  readonly machines: ReadonlyMap<string, string>;
  /** Where the verification job runs (default: wherever Slurm puts it). */
  readonly verifyNode?: string;
  readonly partition?: string;
  readonly slurm: SlurmClient;
  /** How the nodes invoke intoto; an absolute program's directory is put first on the jobs' PATH (inspections run `intoto`). */
  readonly intoto: readonly string[];
  /** The layout's path on the nodes. */
  readonly layoutPath: string;
  /** The private key's path on a node, with {functionary} and {node}. */
  readonly keyPath: string;
  /** The owner's public key(s), as paths on the nodes. */
  readonly ownerKeyPaths: readonly string[];
  readonly pubkeyDir?: string;
  readonly insecure?: boolean;
  readonly caFile?: string;
  readonly sandbox?: string;
  readonly timeout?: string;
  /** Where the verification job writes the final products (a path on its node). */
  readonly outDir?: string;
  /** Directory of each job's output file on its node, with {node}; default /tmp. */
  readonly jobOutput?: string;
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  readonly onPublished?: (result: PublishResult) => void;
  readonly onEvent?: (event: SlurmEvent) => void;
}

export interface SlurmPipelineResult {
  readonly plan: JobPlan;
  readonly published: PublishResult;
  readonly run: SlurmRunResult;
}

/**
 * Plans (before anything is published: a threshold without enough nodes, two runs of one step
 * on one node, an unknown placeholder are usage errors), publishes, submits and follows.
 * @throws UsageError E_USAGE; what publishRun throws. Job failures are in the result.
 */
export async function runPipelineOnSlurm(client: RegistryClient, options: SlurmPipelineOptions): Promise<SlurmPipelineResult> {
  const { steps } = withParams(options.source, options.params);
  const plan = planJobs({ steps: planSteps(steps), machines: options.machines, ...(options.verifyNode === undefined ? {} : { verifyNode: options.verifyNode }) });
  const commands = intotoCommands({
    intoto: options.intoto,
    layout: options.layoutPath,
    store: options.store,
    runId: options.runId,
    params: options.params,
    ownerKeys: options.ownerKeyPaths,
    keyPath: options.keyPath,
    ...(options.pubkeyDir === undefined ? {} : { pubkeyDir: options.pubkeyDir }),
    ...(options.insecure === true ? { insecure: true } : {}),
    ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
    ...(options.sandbox === undefined ? {} : { sandbox: options.sandbox }),
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    ...(options.outDir === undefined ? {} : { outDir: options.outDir }),
  });
  const outputDir = options.jobOutput ?? '/tmp';
  expandTemplate(outputDir, { node: 'n' }, '--job-output');
  const output = (job: PlannedJob): string => `${expandTemplate(outputDir, { node: job.node ?? 'any' }, '--job-output')}/intoto-${options.runId}-${job.key}.out`;
  const specs = slurmJobSpecs(plan, commands, output);

  const published = await publishRun(client, {
    store: options.store,
    runId: options.runId,
    source: options.source,
    ownerKeys: options.ownerKeys,
    params: options.params,
    ...(options.signedLayout === undefined ? {} : { signedLayout: options.signedLayout }),
    ...(options.useDsse === undefined ? {} : { useDsse: options.useDsse }),
  });
  options.onPublished?.(published);
  const program = options.intoto[0];
  const run = await runSlurmJobs({
    client: options.slurm,
    jobs: specs,
    runId: options.runId,
    ...(options.partition === undefined ? {} : { partition: options.partition }),
    ...(program !== undefined && isAbsolute(program) && options.intoto.length === 1 ? { path: [dirname(program)] } : {}),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
  return { plan, published, run };
}

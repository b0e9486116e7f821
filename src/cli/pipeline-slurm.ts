import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadPublicKeyFile, loadSigningKeyFile } from '../crypto/keyfiles.js';
import type { SigningKey } from '../crypto/signatures.js';
import { InTotoError, UsageError } from '../errors.js';
import type { JobOutcome } from '../engine/slurm.js';
import { progressLine } from '../engine/slurm-progress.js';
import { runPipelineOnSlurm } from '../engine/slurm-run.js';
import { checkRunId, newRunId, parseStoreUrl } from '../engine/step-command.js';
import { onInterrupt, setActivity } from '../io/interrupt.js';
import { parseTimeoutSeconds, TIMEOUT_RULE } from '../runner/step-files.js';
import { createOutput, paramsOf, sandboxModeOf, usage, verbosityOf, writeJson } from './common.js';
import { encryptedKeyPassword } from './password.js';
import { loadSource, readSignedLayout, storeClient } from './pipeline-store.js';
import { seconds } from './progress.js';

/**
 * `intoto pipeline run LAYOUT --engine slurm --store oci://... --owner-key KEY [--node F=NODE...]
 * [--partition P]`: publish the run, submit one Slurm job per step run and a verification job,
 * follow them and print each change, and end with the first failure (step, node, reason) after
 * cancelling the rest. Parsing and printing only: the work is in src/engine/slurm-run.ts.
 */

/** The flags of `pipeline run` this engine reads (parsed by pipeline.ts). */
export interface SlurmRunFlags {
  store?: string;
  runId?: string;
  node: string[];
  verifyNode?: string;
  partition?: string;
  keyPath: string;
  intoto: string;
  jobOutput?: string;
  ownerKey?: string;
  layout?: string;
  layoutKey?: string[];
  pubkeyDir?: string;
  param: string[];
  sandbox: string;
  timeout?: string;
  useDsse?: boolean;
  prompt?: boolean;
  json?: boolean;
  out?: string;
  insecure?: boolean;
  username?: string;
  passwordStdin?: boolean;
  caFile?: string;
  storeTimeout?: string;
}

/** The flags only the local engine takes, refused with --engine slurm. */
export const LOCAL_ONLY = ['keys', 'workspace', 'keepWorkspace', 'force', 'attest', 'provenanceKey', 'attestations', 'builderId'] as const;
/** The flags only --engine slurm takes, refused with the local engine. */
export const SLURM_ONLY = ['store', 'runId', 'node', 'verifyNode', 'partition', 'keyPath', 'intoto', 'jobOutput', 'insecure', 'username', 'passwordStdin', 'caFile', 'storeTimeout'] as const;

/**
 * Runs the pipeline through Slurm.
 * @throws UsageError E_USAGE; the source's, keys' and registry's errors; E_JOB_FAILED /
 *   E_SCHEDULER with the failing job's step, node and reason, after the summary is printed
 */
export async function pipelineSlurmRun(file: string, opts: SlurmRunFlags, argv: readonly string[]): Promise<number> {
  const verbosity = verbosityOf(argv);
  const out = createOutput('intoto pipeline run', opts.json === true ? 'quiet' : verbosity);
  if (opts.store === undefined) usage('--engine slurm needs --store oci://HOST[:PORT]/REPO: the registry the nodes exchange artifacts and links through');
  if (opts.ownerKey === undefined) usage("--engine slurm needs --owner-key KEY: the layout owner's key signs the run here (no key directory travels to the nodes)");
  const store = parseStoreUrl(opts.store);
  const runId = checkRunId(opts.runId ?? newRunId());
  const params = paramsOf(opts.param);
  sandboxModeOf(opts.sandbox);
  if (opts.timeout !== undefined && parseTimeoutSeconds(opts.timeout) === undefined) usage(`--timeout must be ${TIMEOUT_RULE}, not '${opts.timeout}'`);
  const machines = nodeMap(opts.node);

  const source = loadSource(file, opts, out, false);
  for (const functionary of machines.keys()) {
    if (!source.functionaries.has(functionary)) usage(`--node ${functionary}=...: the layout has no functionary '${functionary}' (it has ${[...source.functionaries.keys()].join(', ')})`);
  }
  const ownerKey = await ownerSigningKey(opts.ownerKey, opts.prompt);
  const ownerKeyPaths = ownerPublicKeyPaths(opts, ownerKey);
  const signedLayout = opts.layout === undefined ? undefined : readSignedLayout(opts.layout, [ownerKey], source);

  const client = storeClient(store, { ...opts, timeout: opts.storeTimeout }, out);
  // Ctrl-C or a CI cancellation: every job of the run is cancelled before the program exits.
  const submitted: string[] = [];
  const removeUndo = onInterrupt(() => {
    if (submitted.length === 0) return undefined;
    spawnSync('scancel', ['--quiet', ...submitted], { env: slurmEnvironment(), timeout: 30_000 });
    return `cancelled job(s) ${submitted.join(', ')}`;
  });
  let result;
  try {
    setActivity(`publishing run ${runId}`);
    result = await runPipelineOnSlurm(client, {
      source,
      params,
      store,
      runId,
      ownerKeys: [ownerKey],
      ...(signedLayout === undefined ? {} : { signedLayout }),
      useDsse: opts.useDsse === true,
      machines,
      ...(opts.verifyNode === undefined ? {} : { verifyNode: opts.verifyNode }),
      ...(opts.partition === undefined ? {} : { partition: opts.partition }),
      slurm: { env: slurmEnvironment() },
      intoto: [opts.intoto],
      layoutPath: resolve(file),
      keyPath: opts.keyPath,
      ownerKeyPaths,
      ...(opts.pubkeyDir === undefined ? {} : { pubkeyDir: resolve(opts.pubkeyDir) }),
      ...(opts.insecure === true ? { insecure: true } : {}),
      ...(opts.caFile === undefined ? {} : { caFile: resolve(opts.caFile) }),
      sandbox: opts.sandbox,
      ...(opts.timeout === undefined ? {} : { timeout: opts.timeout }),
      ...(opts.out === undefined ? {} : { outDir: opts.out }),
      ...(opts.jobOutput === undefined ? {} : { jobOutput: opts.jobOutput }),
      onPublished: (published) => {
        out.info(`published run ${runId} in ${store.url} (${published.inputs} input(s), ${published.uploadedBlobs} blob(s) uploaded)`);
        setActivity(`running run ${runId} on Slurm`);
      },
      onEvent: (event) => {
        if (event.kind === 'submitted') submitted.push(event.jobId);
        out.info(progressLine(event));
      },
    });
  } finally {
    removeUndo();
    setActivity(undefined);
    await client.close();
  }
  const { run, published } = result;
  if (opts.json) {
    writeJson({ engine: 'slurm', layout: file, store: store.url, runId, published, passed: run.passed, failure: run.failure ?? null, jobs: run.jobs, leftRunning: run.leftRunning, totalMs: run.totalMs });
  } else if (verbosity !== 'quiet') {
    printSummary(file, runId, store.url, run.passed, run.jobs, run.totalMs, opts);
  }
  if (run.failure !== undefined) {
    const { code, message, details, context } = run.failure;
    const left = run.leftRunning.length === 0 ? '' : ` (still running after the cancellation deadline: job ${run.leftRunning.join(', ')})`;
    throw new InTotoError(code, `${message}${left}`, { details, context });
  }
  return 0;
}

/** SLURM_CONF and PATH only: nothing else of ours reaches sbatch (slurm-cli.ts). */
function slurmEnvironment(): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    ...(process.env['SLURM_CONF'] === undefined ? {} : { SLURM_CONF: process.env['SLURM_CONF'] }),
  };
}

/**
 * `--node F=NODE` values.
 * @throws UsageError E_USAGE
 */
export function nodeMap(assignments: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const text of assignments) {
    const at = text.indexOf('=');
    const functionary = text.slice(0, at);
    const node = text.slice(at + 1);
    if (at <= 0 || node === '' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(node)) usage(`--node must be FUNCTIONARY=NODE (a Slurm node name), not '${text}'`);
    if (map.has(functionary)) usage(`--node gives functionary '${functionary}' twice`);
    map.set(functionary, node);
  }
  return map;
}

async function ownerSigningKey(path: string, prompt: boolean | undefined): Promise<SigningKey> {
  const password = await encryptedKeyPassword(path, 'the layout owner', prompt);
  return loadSigningKeyFile(path, password === undefined ? {} : { password });
}

/**
 * The owner's public key paths the nodes check the run with: --layout-key, else OWNER_KEY.pub
 * beside --owner-key; the owner key must be among them (or every node would refuse the run).
 * @throws UsageError E_USAGE; CryptoError and IoError for the key files
 */
function ownerPublicKeyPaths(opts: SlurmRunFlags, ownerKey: SigningKey): string[] {
  const given = opts.layoutKey ?? (existsSync(`${opts.ownerKey as string}.pub`) ? [`${opts.ownerKey as string}.pub`] : []);
  if (given.length === 0) usage("--engine slurm needs --layout-key OWNER.pub: the owner's public key, at the same path on every node");
  const keys = given.map((path) => loadPublicKeyFile(path));
  if (!keys.some((key) => key.identity === ownerKey.public.identity)) {
    throw new UsageError('E_USAGE', `--layout-key ${given.join(' ')} does not hold the public key of --owner-key ${opts.ownerKey as string}: the nodes would refuse the run`);
  }
  return given.map((path) => resolve(path));
}

function printSummary(file: string, runId: string, store: string, passed: boolean, jobs: readonly JobOutcome[], totalMs: number, opts: SlurmRunFlags): void {
  const lines = [`pipeline ${file}: ${passed ? 'PASSED' : 'FAILED'} on Slurm in ${seconds(totalMs)} (run ${runId} in ${store})`];
  const width = Math.max(4, ...jobs.map((j) => j.key.length));
  const nodeWidth = Math.max(4, ...jobs.map((j) => j.node.length));
  lines.push(`  ${'job'.padEnd(width)}  ${'node'.padEnd(nodeWidth)}  ${'slurm id'.padEnd(8)}  ${'state'.padEnd(10)}  time`);
  for (const job of jobs) {
    const ran = job.startedMs !== undefined && job.endedMs !== undefined ? seconds(job.endedMs - job.startedMs) : '-';
    lines.push(`  ${job.key.padEnd(width)}  ${(job.node || '-').padEnd(nodeWidth)}  ${job.jobId.padEnd(8)}  ${job.state.padEnd(10)}  ${ran}`);
  }
  if (passed && opts.out !== undefined) lines.push(`final products on the verification node in ${opts.out}`);
  if (passed) lines.push(`verify again anywhere: intoto pipeline verify ${file} --store ${store} --run-id ${runId} -k OWNER.pub -o DIR`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

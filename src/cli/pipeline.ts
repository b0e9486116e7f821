import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadPublicKeyFile, loadSigningKeyFile } from '../crypto/keyfiles.js';
import { InTotoError, IoError } from '../errors.js';
import { shellWord } from '../engine/shell.js';
import { onInterrupt, setActivity } from '../io/interrupt.js';
import { loadLayoutSource } from '../pipeline/load.js';
import { chooseRunners } from '../pipeline/functionaries.js';
import { runPipeline, type PipelineEvent, type PipelineRunOptions, type PipelineRunResult } from '../pipeline/run-pipeline.js';
import type { PipelineSource } from '../pipeline/source.js';
import type { SigningKey } from '../crypto/signatures.js';
import { DEFAULT_BUILDER_ID } from '../attest/provenance.js';
import type { PipelineProvenance } from '../pipeline/attestations.js';
import { VERSION_TEXT } from '../attest/version.js';
import { parseTimeoutSeconds, TIMEOUT_RULE } from '../runner/step-files.js';
import { acceptJson, checkDirectoryFlag, createOutput, newProgram, paramsOf, repeatable, sandboxModeOf, usage, verbosityOf, writeJson, type Output } from './common.js';
import { printWarnings } from './layout.js';
import { connectionOptions } from './oci.js';
import { LOCAL_ONLY, pipelineSlurmRun, SLURM_ONLY, type SlurmRunFlags } from './pipeline-slurm.js';
import { encryptedKeyPassword } from './password.js';
import { createProgress, seconds } from './progress.js';
import { temporaryWorkspace } from './workspace.js';

interface RunFlags extends SlurmRunFlags {
  engine: string;
  keys?: string;
  workspace?: string;
  out: string;
  keepWorkspace?: boolean;
  force?: boolean;
  attest?: boolean;
  provenanceKey?: string;
  builderId?: string;
  attestations?: string;
}

/**
 * `intoto pipeline run LAYOUT.yaml --keys DIR [--workspace DIR] [--out DIR] [--owner-key KEY |
 * --layout root.layout --layout-key PUB...]`: runs every step of a YAML layout, each in a fresh
 * sandboxed workspace and signed with `DIR/<functionary>`, signs the layout with the owner's
 * key (`DIR/owner` by default) unless a signed one is given, verifies the whole chain, and
 * leaves the final products, `root.layout` and the links in --out. Exit 0 only when every step
 * ran and the verification passed.
 * @throws UsageError E_USAGE; the source's first error (see loadLayoutSource); CryptoError (keys);
 *   the code of a stopped run or a failed verification (E_STEP_FAILED, E_LINKS_DISAGREE,
 *   E_RULE_DISALLOW, E_INSPECTION_FAILED, ...), after the summary is printed
 */
export async function pipelineRunMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = newProgram('intoto pipeline run', 'Run, sign and verify every step of a YAML pipeline layout.')
    .argument('<layout>', 'the YAML layout source')
    .option('--engine <name>', 'local (every step here) or slurm (each step run as a Slurm job on its functionary\'s node)', 'local')
    .option('--keys <dir>', "directory of private keys, one per functionary, named after it (DIR/alice), and the owner's (DIR/owner); required with the local engine")
    .option('--workspace <dir>', 'where each run gets its workspace (default: a temporary directory, removed unless a step or the verification fails)')
    .option('--out <dir>', 'receives the final products, root.layout and the links: left untouched until all are there (default: pipeline-out); with --engine slurm, where the verification job writes the final products on its node (nowhere unless given)', 'pipeline-out')
    .option('--force', 'replace an earlier output in --out (a directory holding root.layout; never one holding the keys, the YAML or the current directory)')
    .option('--owner-key <path>', "the layout owner's private key (default: DIR/owner)")
    .option('--layout <path>', 'use this layout, already signed by the owner, instead of signing one')
    .option('--layout-key <paths...>', "the owner's public key(s), to verify --layout")
    .option('--pubkey-dir <dir>', "read functionary NAME's public key from DIR/NAME.pub instead of the path in the YAML")
    .option('--sandbox <mode>', 'auto (bwrap when available), bwrap (required) or none', 'auto')
    .option('--timeout <seconds>', 'time limit of each step that sets none (default: no limit)')
    .option('--param <KEY=VALUE>', 'a parameter substituted into the steps\' run and rules, and at verification (repeatable); the signed layout keeps {KEY}', repeatable, [])
    .option('--prompt', 'ask for the password of each encrypted key it will use (lines of standard input when it is not a terminal)')
    .option('--use-dsse', 'write links and the layout as DSSE envelopes')
    .option('--keep-workspace', 'keep the workspace even when the pipeline passes')
    .option('--json', 'print the result (runs, failure, verification report) as JSON on standard output')
    .option('--attest', 'also write each link as an in-toto attestation (Statement v1, link predicate v0.3, DSSE): <step>.<keyid8>.intoto.json')
    .option('--provenance-key <path>', 'sign the SLSA Provenance v1 of the final products (provenance.intoto.json) with this key (default: the owner key)')
    .option('--attestations <dir>', 'where the attestations go, new or empty (default: <out>.attestations, beside --out, so that in-toto-verify in --out sees only the product)')
    .option('--builder-id <uri>', `the builder id in the provenance (default ${DEFAULT_BUILDER_ID})`)
    .option('--store <url>', 'slurm: the registry the nodes exchange artifacts and links through, oci://HOST[:PORT]/REPOSITORY')
    .option('--run-id <id>', 'slurm: the run id, new in the store (default: the time and 8 random hex digits)')
    .option('--node <FUNCTIONARY=NODE>', "slurm: the node of a functionary (repeatable); each step run is pinned to its functionary's node", repeatable, [])
    .option('--verify-node <node>', 'slurm: where the verification job runs (default: any node)')
    .option('--partition <name>', 'slurm: the partition the jobs are submitted to')
    .option('--key-path <template>', "slurm: the functionary's private key on its node, with {functionary} and {node}", '/etc/intoto/keys/{functionary}')
    .option('--intoto <program>', 'slurm: how the nodes invoke intoto (an absolute path is also put first on the jobs\' PATH)', 'intoto')
    .option('--job-output <dir>', "slurm: each job's output file goes in this directory on its node, with {node} (default /tmp)");
  connectionOptions(program, '--store-timeout');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<RunFlags>();
  const [file] = program.args as [string];
  if (opts.engine !== 'local' && opts.engine !== 'slurm') usage(`--engine must be local or slurm, not '${opts.engine}'`);
  const given = (name: string): boolean => program.getOptionValueSource(name) === 'cli';
  const foreign = (opts.engine === 'slurm' ? LOCAL_ONLY : SLURM_ONLY).filter(given);
  if (foreign.length > 0) {
    const flag = (name: string): string => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    usage(`${foreign.map(flag).join(', ')}: only with ${opts.engine === 'slurm' ? 'the local engine' : '--engine slurm'}`);
  }
  if (opts.engine === 'slurm') return pipelineSlurmRun(file, { ...opts, ...(given('out') ? {} : { out: undefined }) } as SlurmRunFlags, argv);
  if (opts.keys === undefined) usage("--keys DIR is required: the functionaries' private keys (with --engine slurm, each stays on its node)");
  return runLocally(file, opts as LocalFlags, argv);
}

/** The local engine's flags: --keys is there. */
type LocalFlags = RunFlags & { keys: string };

async function runLocally(file: string, opts: LocalFlags, argv: string[]): Promise<number> {
  const verbosity = verbosityOf(argv);
  const out = createOutput('intoto pipeline run', verbosity);
  const sandbox = sandboxModeOf(opts.sandbox);
  const timeout = opts.timeout === undefined ? undefined : parseTimeoutSeconds(opts.timeout);
  if (opts.timeout !== undefined && timeout === undefined) usage(`--timeout must be ${TIMEOUT_RULE}, not '${opts.timeout}'`);
  if (opts.layout !== undefined && opts.ownerKey !== undefined) usage('give --layout (signed elsewhere) or --owner-key (sign here), not both');
  const params = paramsOf(opts.param);

  setActivity(`reading ${file}`);
  const { source, warnings } = loadLayoutSource({ file, ...(opts.pubkeyDir === undefined ? {} : { pubkeyDir: opts.pubkeyDir }) });
  printWarnings(file, warnings, out);
  checkDirectoryFlag('--keys', opts.keys); // the steps' keys are looked up in it by name
  const passwords = await keyPasswords(source, opts);
  const layout = layoutOption(opts, passwords.get(OWNER));
  const provenance = provenanceOption(opts, layout, passwords.get(PROVENANCE), out);
  const workspace = openWorkspace(opts);
  const progress = createProgress({ tty: process.stderr.isTTY === true, quiet: verbosity === 'quiet' || opts.json === true, verbose: verbosity === 'verbose' });
  let result: PipelineRunResult | undefined;
  try {
    result = await runPipeline({
      source,
      keyDir: opts.keys,
      workspace: workspace.runIn,
      outDir: opts.out,
      force: opts.force === true,
      layout,
      sandbox,
      useDsse: opts.useDsse === true,
      params,
      passwords,
      echo: verbosity === 'verbose' && opts.json !== true,
      attest: opts.attest === true,
      ...(provenance === undefined ? {} : { provenance }),
      ...(opts.attestations === undefined ? {} : { attestationDir: opts.attestations }),
      hide: [ownerKeyPath(opts), opts.provenanceKey].filter((p): p is string => p !== undefined && existsSync(p)),
      onEvent: (event) => {
        setActivity(activityOf(event, opts.out));
        progress.onEvent(event);
      },
      warn: (message) => {
        progress.stop();
        out.warn(message);
      },
      ...(timeout === undefined ? {} : { timeoutSeconds: timeout }),
    });
  } finally {
    progress.stop();
    setActivity(undefined);
    // The workspace holds the evidence of a failed step or verification: kept, and named.
    workspace.close(result !== undefined && !result.passed);
  }
  const kept = workspace.kept ? workspace.path : undefined;
  if (opts.json) writeJson({ layout: file, ...result, workspace: kept ?? null });
  else if (verbosity !== 'quiet') printSummary(file, opts, result, kept);
  if (result.failure !== undefined) {
    const { code, message, details, context } = result.failure;
    // A temporary workspace kept as evidence is named in the one line (the user did not choose it).
    const named = kept !== undefined && opts.workspace === undefined ? `${message} (workspace kept: ${kept})` : message;
    throw new InTotoError(code, named, { details, context });
  }
  return 0;
}

/** What an interruption line says the run was doing. */
function activityOf(event: PipelineEvent, outDir: string): string {
  switch (event.kind) {
    case 'run-start':
      return `running step '${event.step}' (functionary ${event.functionary})`;
    case 'verify-start':
      return `verifying the chain in ${outDir}`;
    default:
      return 'running the pipeline';
  }
}

interface Workspace {
  /** The directory given, or the temporary one made. */
  readonly path: string;
  /** Where the runs go (a fresh subdirectory of a temporary workspace). */
  readonly runIn: string;
  /** True once close() kept it. */
  readonly kept: boolean;
  /** Removes a temporary workspace unless it is to be kept (`keep`, or --keep-workspace). Never throws. */
  close(keep: boolean): void;
}

/**
 * The workspace: the --workspace directory (the user's: never removed), or a temporary
 * directory that is removed after the run, on an interruption and after any error, and kept
 * (and named) only when it holds the evidence of a failed step or verification, or with
 * --keep-workspace.
 * @throws IoError E_IO when the temporary directory cannot be made
 */
function openWorkspace(opts: LocalFlags): Workspace {
  if (opts.workspace !== undefined) {
    const given = opts.workspace;
    const removeNote = onInterrupt(() => `workspace kept: ${given}`);
    return { path: given, runIn: given, kept: true, close: () => removeNote() };
  }
  const temporary = temporaryWorkspace('intoto-pipeline-', { keepAlways: opts.keepWorkspace === true, removedNote: 'temporary workspace removed' });
  return Object.assign(temporary, { runIn: join(temporary.path, 'w') });
}

/** The name under which the owner key's password is kept (not a functionary name: it has a space). */
const OWNER = 'layout owner';
/** Likewise for the provenance key. */
const PROVENANCE = 'provenance key';

function ownerKeyPath(opts: LocalFlags): string | undefined {
  return opts.layout === undefined ? (opts.ownerKey ?? join(opts.keys, 'owner')) : undefined;
}

/**
 * The passwords of the encrypted keys this run will use (each functionary who runs a step, and
 * the owner's when it signs the layout), asked before anything runs, by functionary name.
 * @throws CryptoError E_KEY_PASSWORD for an encrypted key without --prompt, or an empty answer
 */
async function keyPasswords(source: PipelineSource, opts: LocalFlags): Promise<ReadonlyMap<string, string>> {
  const wanted = [...new Set([...chooseRunners(source.steps, opts.keys).values()].flat())].map((name) => ({ name, path: join(opts.keys, name), what: `functionary '${name}'` }));
  const owner = ownerKeyPath(opts);
  if (owner !== undefined && existsSync(owner)) wanted.push({ name: OWNER, path: owner, what: 'the layout owner' });
  if (opts.provenanceKey !== undefined) wanted.push({ name: PROVENANCE, path: opts.provenanceKey, what: 'the provenance signer' });
  const passwords = new Map<string, string>();
  for (const { name, path, what } of wanted) {
    const password = await encryptedKeyPassword(path, what, opts.prompt);
    if (password !== undefined) passwords.set(name, password);
  }
  return passwords;
}

function layoutOption(opts: LocalFlags, ownerPassword: string | undefined): PipelineRunOptions['layout'] {
  const path = ownerKeyPath(opts);
  if (path === undefined) {
    const keys = (opts.layoutKey ?? []).map((file) => loadPublicKeyFile(file));
    if (keys.length === 0) usage("--layout needs the owner's public key: --layout-key OWNER.pub");
    return { kind: 'signed', path: opts.layout as string, keys };
  }
  if (!existsSync(path)) {
    throw new IoError('E_IO', `${path}: no such file: the layout owner's key, to sign the layout (give --owner-key, or --layout with a layout signed elsewhere)`, { context: { file: path } });
  }
  return { kind: 'sign', keys: [loadSigningKeyFile(path, ownerPassword === undefined ? {} : { password: ownerPassword })] };
}

/**
 * Who signs the provenance: --provenance-key, else the owner key that signs the layout here.
 * With a layout signed elsewhere and no --provenance-key there is no key: none is written.
 * @throws UsageError E_USAGE for a --builder-id that is not a URI; CryptoError, IoError (the key)
 */
function provenanceOption(opts: LocalFlags, layout: PipelineRunOptions['layout'], password: string | undefined, out: Output): PipelineProvenance | undefined {
  const builderId = opts.builderId ?? DEFAULT_BUILDER_ID;
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/.test(builderId)) usage(`--builder-id must be a URI, not ${JSON.stringify(builderId)}`);
  let key: SigningKey | undefined;
  if (opts.provenanceKey !== undefined) key = loadSigningKeyFile(opts.provenanceKey, password === undefined ? {} : { password });
  else if (layout.kind === 'sign') key = layout.keys[0];
  if (key === undefined) {
    out.info('no SLSA provenance will be written: the layout is signed elsewhere; give --provenance-key to sign one');
    return undefined;
  }
  return { key, builderId, builderVersion: VERSION_TEXT };
}

function printSummary(file: string, opts: LocalFlags, result: PipelineRunResult, workspace: string | undefined): void {
  const lines: string[] = [];
  const verdict = result.passed ? 'PASSED' : result.verification === undefined ? 'STOPPED' : 'FAILED VERIFICATION';
  lines.push(`pipeline ${file}: ${verdict} in ${seconds(result.totalMs)}`);
  const width = Math.max(4, ...result.runs.map((r) => r.step.length));
  const fwidth = Math.max(11, ...result.runs.map((r) => r.functionary.length));
  lines.push(`  ${'step'.padEnd(width)}  ${'functionary'.padEnd(fwidth)}  ${'time'.padStart(7)}  exit`);
  for (const run of result.runs) {
    lines.push(`  ${run.step.padEnd(width)}  ${run.functionary.padEnd(fwidth)}  ${seconds(run.ms).padStart(7)}  ${String(run.returnValue ?? '-')}${run.builtin !== undefined ? `  (${run.builtin}: signed by the runner, no command)` : run.sandboxed ? '' : '  (not sandboxed)'}`);
  }
  if (result.verification !== undefined) {
    lines.push(`  ${'verify'.padEnd(width)}  ${''.padEnd(fwidth)}  ${seconds(result.verification.timing.totalMs).padStart(7)}  ${result.verification.passed ? 'pass' : 'FAIL'}`);
  }
  if (result.layoutPath !== undefined) {
    lines.push(`final products in ${opts.out}: ${result.finalProducts.join(', ') || '(none)'}`);
    if (result.provenancePath !== undefined) lines.push(`SLSA provenance (signed): ${result.provenancePath}`);
    const keys = opts.layout !== undefined ? (opts.layoutKey ?? []) : [`${opts.ownerKey ?? join(opts.keys, 'owner')}.pub`];
    const args = ['-l', 'root.layout', '-k', ...keys.map((k) => resolve(k)), ...opts.param.flatMap((p) => ['--param', p])];
    lines.push(`verify again: cd ${shellWord(opts.out)} && intoto verify ${args.map(shellWord).join(' ')}`);
  }
  if (!result.passed && workspace !== undefined) lines.push(`workspace kept for inspection: ${workspace}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

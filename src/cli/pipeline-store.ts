import { readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadPublicKeyFile, loadSigningKeyFile } from '../crypto/keyfiles.js';
import type { PublicKey } from '../crypto/keys.js';
import type { SigningKey } from '../crypto/signatures.js';
import { asInTotoError, InTotoError, UsageError, VerificationError } from '../errors.js';
import { publishRun } from '../engine/run-publish.js';
import { checkRunId, newRunId, parseStoreUrl, type StoreRef } from '../engine/step-command.js';
import { runStoredStep, type StoredStepEvent } from '../engine/store-step.js';
import { verifyStoredRun } from '../engine/store-verify.js';
import { setActivity } from '../io/interrupt.js';
import { parseEnvelope, verifiedPayload } from '../model/envelope.js';
import { parseRegistryHost } from '../oci/reference.js';
import type { RegistryClient } from '../oci/client.js';
import { loadLayoutSource } from '../pipeline/load.js';
import { checkLayoutIsSource } from '../pipeline/signed-layout.js';
import type { PipelineSource } from '../pipeline/source.js';
import { readRegularFileSync, LIMITS } from '../io/files.js';
import { parseTimeoutSeconds, TIMEOUT_RULE } from '../runner/step-files.js';
import { acceptJson, createOutput, newProgram, paramsOf, repeatable, sandboxModeOf, usage, verbosityOf, writeJson, type Output } from './common.js';
import { printWarnings } from './layout.js';
import { clientFor, connectionOptions, type ConnectionOptions } from './oci.js';
import { encryptedKeyPassword } from './password.js';
import { seconds } from './progress.js';
import { temporaryWorkspace, type TemporaryWorkspace } from './workspace.js';

/**
 * `intoto pipeline step`, `intoto pipeline publish` and `intoto pipeline verify`: a pipeline
 * whose steps run on different machines, with a registry as the store between them. Parsing
 * and printing only; the work is in src/engine (store-step.ts, run-publish.ts, store-verify.ts).
 */

interface StoreFlags {
  store: string;
  runId?: string;
  param: string[];
  pubkeyDir?: string;
  json?: boolean;
  insecure?: boolean;
  username?: string;
  passwordStdin?: boolean;
  caFile?: string;
}

interface StepFlags extends StoreFlags {
  as: string;
  key: string;
  layoutKey?: string[];
  workspace?: string;
  keepWorkspace?: boolean;
  sandbox: string;
  timeout?: string;
  storeTimeout?: string;
  prompt?: boolean;
  useDsse?: boolean;
}

/** The store's registry client, from the connection flags (also `pipeline run --engine slurm`'s). */
export function storeClient(store: StoreRef, opts: Pick<StoreFlags, 'insecure' | 'username' | 'passwordStdin' | 'caFile'> & { timeout?: string | undefined }, out: Output): RegistryClient {
  const connection: ConnectionOptions = {
    ...(opts.insecure === undefined ? {} : { insecure: opts.insecure }),
    ...(opts.username === undefined ? {} : { username: opts.username }),
    ...(opts.passwordStdin === undefined ? {} : { passwordStdin: opts.passwordStdin }),
    ...(opts.caFile === undefined ? {} : { caFile: opts.caFile }),
    ...(opts.timeout === undefined ? {} : { timeout: opts.timeout }),
  };
  return clientFor({ registry: parseRegistryHost(store.host) }, connection, out);
}

/**
 * The YAML source. `fromStore`: its inputs come from the store, not from the paths in the
 * YAML, so warnings about those files (missing on this machine, let in by no step) are the
 * owner's business at publish time, not every machine's.
 */
export function loadSource(file: string, opts: Pick<StoreFlags, 'pubkeyDir'>, out: Output, fromStore: boolean): PipelineSource {
  setActivity(`reading ${file}`);
  const { source, warnings } = loadLayoutSource({ file, ...(opts.pubkeyDir === undefined ? {} : { pubkeyDir: opts.pubkeyDir }) });
  printWarnings(file, fromStore ? warnings.filter((w) => w.id !== 'input-missing' && w.id !== 'input-unused') : warnings, out);
  return source;
}

function ownerPublicKeys(paths: readonly string[] | undefined, flag: string): PublicKey[] {
  if (paths === undefined || paths.length === 0) usage(`${flag} OWNER.pub is required: the layout owner's public key(s), which signed the run and its layout`);
  return paths.map((path) => loadPublicKeyFile(path));
}

/**
 * `intoto pipeline step LAYOUT STEP --as FUNCTIONARY -k KEY --layout-key OWNER.pub --store
 * oci://HOST[:PORT]/REPO --run-id ID [--param K=V...]`: one step of a published run, on this
 * machine, with this machine's key. Prints the pushed step run (`oci://...:TAG@sha256:...`).
 * @throws UsageError E_USAGE; what runStoredStep throws; E_STEP_FAILED when the command failed
 */
export async function pipelineStepMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = connectionOptions(
    newProgram('intoto pipeline step', "Run one step of a published run on this machine: fetch its materials from the store, check them against the signed links, run it sandboxed, push its products and signed link.")
      .argument('<layout>', 'the YAML layout source (the same file the owner published)')
      .argument('<step>', 'the step to run')
      .requiredOption('--as <functionary>', 'the functionary this machine runs the step as')
      .requiredOption('-k, --key <path>', "the functionary's private key, on this machine (never read by the step's command)")
      .option('--layout-key <paths...>', "the layout owner's public key(s): the run and its layout must be signed by each (required)")
      .requiredOption('--store <url>', 'where the run keeps its artifacts and links: oci://HOST[:PORT]/REPOSITORY')
      .requiredOption('--run-id <id>', 'the run, as the owner published it')
      .option('--param <KEY=VALUE>', 'a parameter (repeatable); when given, exactly the values the owner published', repeatable, [])
      .option('--pubkey-dir <dir>', "read functionary NAME's public key from DIR/NAME.pub instead of the path in the YAML")
      .option('--workspace <dir>', "where the step's workspace is made, new or empty (default: a temporary directory, removed unless the step fails)")
      .option('--keep-workspace', 'keep the workspace even when the step succeeds')
      .option('--sandbox <mode>', 'auto (bwrap when available), bwrap (required) or none', 'auto')
      .option('--timeout <seconds>', "the step's time limit when the layout sets none (default: no limit)")
      .option('--prompt', 'ask for the password of an encrypted key')
      .option('--use-dsse', 'write the link as a DSSE envelope')
      .option('--json', 'print the result as JSON on standard output'),
    '--store-timeout',
  );
  program.parse(argv, { from: 'user' });
  const opts = program.opts<StepFlags>();
  const [file, stepName] = program.args as [string, string];
  const verbosity = verbosityOf(argv);
  const out = createOutput('intoto pipeline step', opts.json === true ? 'quiet' : verbosity);
  const store = parseStoreUrl(opts.store);
  const runId = checkRunId(opts.runId as string);
  const sandbox = sandboxModeOf(opts.sandbox);
  const timeout = opts.timeout === undefined ? undefined : parseTimeoutSeconds(opts.timeout);
  if (opts.timeout !== undefined && timeout === undefined) usage(`--timeout must be ${TIMEOUT_RULE}, not '${opts.timeout}'`);
  const ownerKeys = ownerPublicKeys(opts.layoutKey, '--layout-key');
  const params = opts.param.length === 0 ? undefined : paramsOf(opts.param);
  const source = loadSource(file, opts, out, true);
  const password = await encryptedKeyPassword(opts.key, `functionary '${opts.as}'`, opts.prompt);
  const workspace = stepWorkspace(opts);
  const client = storeClient(store, { ...opts, timeout: opts.storeTimeout }, out);
  let result;
  try {
    result = await runStoredStep(client, {
      store,
      runId,
      source,
      step: stepName,
      functionary: opts.as,
      keyPath: opts.key,
      ...(password === undefined ? {} : { password }),
      ownerKeys,
      params,
      workspace: workspace.path,
      sandbox,
      timeoutSeconds: timeout,
      useDsse: opts.useDsse === true,
      echo: verbosity === 'verbose' && opts.json !== true,
      warn: (line) => out.warn(line),
      onEvent: (event) => {
        setActivity(stepActivity(event, stepName, opts.as));
        const line = stepEventLine(event, store);
        if (line !== undefined) out.info(line);
      },
    });
  } finally {
    setActivity(undefined);
    await client.close();
    // Kept (and named) only as the evidence of a command that failed; a step refused before
    // its command ran leaves nothing (its partial downloads are not evidence of anything).
    workspace.close(result !== undefined && !result.passed);
  }
  if (opts.json) writeJson({ ...result, workspace: workspace.kept ? workspace.path : null });
  if (result.failure !== undefined) {
    const { code, message, details, context } = result.failure;
    const named = workspace.kept && opts.workspace === undefined ? `${message} (workspace kept: ${workspace.path})` : message;
    throw new InTotoError(code, `${named}; nothing was pushed`, { details, context });
  }
  if (opts.json !== true) process.stdout.write(`${store.url}:${result.tag}@${result.digest ?? ''}\n`);
  return 0;
}

function stepActivity(event: StoredStepEvent, step: string, functionary: string): string {
  switch (event.kind) {
    case 'running':
    case 'ran':
      return `running step '${step}' (functionary ${functionary})`;
    case 'pushed':
      return `pushing step '${step}'`;
    default:
      return `fetching the materials of step '${step}'`;
  }
}

function stepEventLine(event: StoredStepEvent, store: StoreRef): string | undefined {
  switch (event.kind) {
    case 'opened':
      return `run ${event.runId}: the owner's record and layout verified (${event.inputs} input(s)) in ${seconds(event.ms)}`;
    case 'links':
      return `step '${event.step}': ${event.links} signed link(s) in the store`;
    case 'fetched':
      return `fetched ${event.files} material(s), ${event.bytes} bytes, each checked against its signed digest, in ${seconds(event.ms)}`;
    case 'ran':
      return `the step ${event.ok ? 'succeeded' : 'FAILED'} in ${seconds(event.ms)}`;
    case 'pushed':
      return `pushed ${store.url}:${event.tag} (${event.blobs} new blob(s), ${event.bytes} bytes) in ${seconds(event.ms)}`;
    default:
      return undefined;
  }
}

/**
 * The step's workspace: `--workspace` (new or empty; the user's, never removed) or a temporary
 * directory removed afterwards and on an interruption, kept (and named) when the step failed
 * or with --keep-workspace.
 * @throws UsageError E_USAGE (a non-empty --workspace); IoError
 */
function stepWorkspace(opts: StepFlags): TemporaryWorkspace {
  if (opts.workspace !== undefined) {
    const given = resolve(opts.workspace);
    const stat = statSync(given, { throwIfNoEntry: false });
    if (stat !== undefined && (!stat.isDirectory() || readdirSync(given).length > 0)) usage(`--workspace ${opts.workspace} must be a new or empty directory`);
    return { path: given, kept: true, close: () => undefined };
  }
  return temporaryWorkspace('intoto-step-', { keepAlways: opts.keepWorkspace === true, removedNote: 'temporary workspace removed; nothing was pushed' });
}

interface PublishFlags extends StoreFlags {
  ownerKey?: string[];
  layout?: string;
  useDsse?: boolean;
  prompt?: boolean;
  timeout?: string;
}

/**
 * `intoto pipeline publish LAYOUT --store oci://HOST[:PORT]/REPO --owner-key KEY [--run-id ID]`:
 * the layout owner opens a run. Prints the run id on standard output.
 * @throws UsageError E_USAGE; RegistryError E_TAG_EXISTS (the run id is taken); the source's,
 *   keys' and registry's errors
 */
export async function pipelinePublishMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = connectionOptions(
    newProgram('intoto pipeline publish', "Open a run in the store: sign the layout and the run record (run id, inputs, parameters) with the owner's key, and upload them with the inputs.")
      .argument('<layout>', 'the YAML layout source')
      .requiredOption('--store <url>', 'where the run keeps its artifacts and links: oci://HOST[:PORT]/REPOSITORY')
      .option('--run-id <id>', 'the run id, new in the store (default: the time and 8 random hex digits)')
      .option('--owner-key <paths...>', "the layout owner's private key(s): they sign the run record, and the layout unless --layout is given (required)")
      .option('--layout <path>', 'a layout the owner signed already (intoto layout sign), instead of signing one here')
      .option('--param <KEY=VALUE>', 'a parameter, signed into the run record (repeatable); every step and the verification use these values', repeatable, [])
      .option('--pubkey-dir <dir>', "read functionary NAME's public key from DIR/NAME.pub instead of the path in the YAML")
      .option('--use-dsse', 'sign the layout as a DSSE envelope')
      .option('--prompt', 'ask for the password of each encrypted owner key')
      .option('--json', 'print the result as JSON on standard output'),
  );
  program.parse(argv, { from: 'user' });
  const opts = program.opts<PublishFlags>();
  const [file] = program.args as [string];
  const out = createOutput('intoto pipeline publish', opts.json === true ? 'quiet' : verbosityOf(argv));
  const store = parseStoreUrl(opts.store);
  const runId = checkRunId(opts.runId ?? newRunId());
  const params = paramsOf(opts.param);
  if (opts.ownerKey === undefined || opts.ownerKey.length === 0) usage("--owner-key is required: the layout owner's private key signs the run record");
  const source = loadSource(file, opts, out, false);
  const ownerKeys: SigningKey[] = [];
  for (const path of opts.ownerKey) {
    const password = await encryptedKeyPassword(path, 'the layout owner', opts.prompt);
    ownerKeys.push(loadSigningKeyFile(path, password === undefined ? {} : { password }));
  }
  const signedLayout = opts.layout === undefined ? undefined : readSignedLayout(opts.layout, ownerKeys, source);
  const client = storeClient(store, opts, out);
  let result;
  try {
    setActivity(`publishing run ${runId}`);
    result = await publishRun(client, { store, runId, source, ownerKeys, params, useDsse: opts.useDsse === true, ...(signedLayout === undefined ? {} : { signedLayout }), onEvent: (line) => out.debug(line) });
  } finally {
    setActivity(undefined);
    await client.close();
  }
  if (opts.json) {
    writeJson({ store: store.url, ...result });
    return 0;
  }
  out.info(`published run ${runId} in ${store.url} (${result.inputs} input(s), ${result.uploadedBlobs} blob(s) uploaded, ${result.uploadedBytes} bytes): ${result.tag}@${result.digest}`);
  process.stdout.write(`${runId}\n`);
  return 0;
}

/**
 * A layout signed elsewhere: every owner key signed it, and it is what the source compiles to.
 * @throws VerificationError E_LAYOUT_SIG; PipelineError E_LAYOUT_SOURCE; IoError; ParseError
 */
export function readSignedLayout(path: string, keys: readonly SigningKey[], source: PipelineSource): Uint8Array {
  const bytes = readRegularFileSync(path, { maxBytes: LIMITS.metadataBytes, what: 'layout' });
  const envelope = parseEnvelope(bytes, path);
  let payload;
  for (const key of keys) {
    payload = verifiedPayload(envelope, key.public);
    if (payload === undefined) throw new VerificationError('E_LAYOUT_SIG', `${path}: not signed by the owner key ${key.keyid.slice(0, 8)}`, { context: { file: path, keyid: key.keyid } });
  }
  checkLayoutIsSource(payload as NonNullable<typeof payload>, source, path);
  return bytes;
}

interface VerifyFlags extends StoreFlags {
  layoutKey?: string[];
  out?: string;
  metadata?: string;
  sandbox: string;
  inspectionTimeout?: string;
  timeout?: string;
}

/**
 * `intoto pipeline verify LAYOUT --store ... --run-id ID -k OWNER.pub [-o DIR]`: fetch the run,
 * verify it, and only on a pass materialise the final products in DIR.
 * @throws UsageError E_USAGE; key errors; every failure after the run is opened is printed as
 *   `FAIL E_CODE: ...` with exit status 1
 */
export async function pipelineVerifyMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = connectionOptions(
    newProgram('intoto pipeline verify', 'Fetch a run from the store, verify it against the owner\'s key, and only on a pass write its final products.')
      .argument('<layout>', 'the YAML layout source (the same file the owner published)')
      .requiredOption('--store <url>', 'where the run keeps its artifacts and links: oci://HOST[:PORT]/REPOSITORY')
      .requiredOption('--run-id <id>', 'the run to verify')
      .option('-k, --layout-key <paths...>', "the layout owner's public key(s) (required)")
      .option('-o, --out <dir>', 'receives the final products on a pass, in one rename; must not exist or be empty')
      .option('--metadata <dir>', 'also receives root.layout and the links on a pass (for in-toto-verify); must not exist or be empty')
      .option('--param <KEY=VALUE>', 'a parameter (repeatable); when given, exactly the values the owner published', repeatable, [])
      .option('--pubkey-dir <dir>', "read functionary NAME's public key from DIR/NAME.pub instead of the path in the YAML")
      .option('--sandbox <mode>', 'auto (bwrap when available), bwrap (required) or none, for the inspections', 'auto')
      .option('--inspection-timeout <seconds>', 'time limit of each inspection (default: none)')
      .option('--json', 'print the verification report as JSON on standard output'),
  );
  program.parse(argv, { from: 'user' });
  const opts = program.opts<VerifyFlags>();
  const [file] = program.args as [string];
  const out = createOutput('intoto pipeline verify', opts.json === true ? 'quiet' : verbosityOf(argv));
  const store = parseStoreUrl(opts.store);
  const runId = checkRunId(opts.runId as string);
  const sandbox = sandboxModeOf(opts.sandbox);
  const inspectionTimeout = opts.inspectionTimeout === undefined ? undefined : parseTimeoutSeconds(opts.inspectionTimeout);
  if (opts.inspectionTimeout !== undefined && inspectionTimeout === undefined) usage(`--inspection-timeout must be ${TIMEOUT_RULE}, not '${opts.inspectionTimeout}'`);
  if (opts.out !== undefined && opts.metadata !== undefined && resolve(opts.out) === resolve(opts.metadata)) usage('-o and --metadata must be two directories');
  const ownerKeys = ownerPublicKeys(opts.layoutKey, '-k');
  const params = opts.param.length === 0 ? undefined : paramsOf(opts.param);
  const source = loadSource(file, opts, out, true);
  const client = storeClient(store, opts, out);
  try {
    setActivity(`verifying run ${runId}`);
    const result = await verifyStoredRun(client, {
      store,
      runId,
      source,
      ownerKeys,
      params,
      ...(opts.out === undefined ? {} : { outDir: opts.out }),
      ...(opts.metadata === undefined ? {} : { metadataDir: opts.metadata }),
      sandbox,
      ...(inspectionTimeout === undefined ? {} : { inspectionTimeoutSeconds: inspectionTimeout }),
      onEvent: (event) => {
        if (event.kind === 'warning') out.warn(event.message);
      },
    });
    if (opts.json) writeJson({ store: store.url, runId, links: result.links, finalProducts: result.finalProducts, outDir: result.outDir ?? null, metadataDir: result.metadataDir ?? null, ...result.report }, 1);
    const failure = result.report.failure;
    if (failure === undefined) {
      if (opts.json !== true && out.verbosity !== 'quiet') {
        const where = opts.out === undefined ? '' : `; final products in ${opts.out}: ${result.finalProducts.join(', ') || '(none)'}`;
        process.stdout.write(`PASS: run ${runId} of ${file} (${result.report.layout.steps.length} step(s), ${result.report.layout.inspections.length} inspection(s) verified, ${result.links.length} link(s))${where}\n`);
      }
      return 0;
    }
    return fail(failure, out);
  } catch (error) {
    const e = asInTotoError(error);
    if (e instanceof UsageError) throw e;
    if (opts.json) writeJson({ store: store.url, runId, passed: false, failure: { code: e.code, message: e.message, details: e.details, context: e.context } });
    return fail(e, out);
  } finally {
    setActivity(undefined);
    await client.close();
  }
}

/** `FAIL E_CODE: message` (and the details with -v), as intoto verify prints a failed verification; exit status 1. */
function fail(failure: { code: string; message: string; details: readonly string[] }, out: Output): number {
  process.stderr.write(`FAIL ${failure.code}: ${failure.message}\n`);
  if (out.verbosity === 'verbose') for (const line of failure.details) if (line !== failure.message) process.stderr.write(`  ${line}\n`);
  return 1;
}

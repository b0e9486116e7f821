import { resolve } from 'node:path';
import type { JsonObject } from '../canonical/json.js';
import { UsageError, asInTotoError } from '../errors.js';
import { loadSigningKeyFile } from '../crypto/keyfiles.js';
import type { KeyType } from '../crypto/keys.js';
import type { SigningKey } from '../crypto/signatures.js';
import type { HashDict, RecordableHashAlgorithm } from '../model/artifacts.js';
import { linkFileName, makeLink, type Link } from '../model/link.js';
import { prewarmHashWorkers } from './hash-pool.js';
import { recordArtifacts } from './record.js';
import { checkGrants, grantsEnvironment, grantsOf, resolveSandbox, type SandboxMode } from './sandbox.js';
import {
  assertStepName,
  byproductsOf,
  checkDirectory,
  checkKeyFileReadable,
  checkTimeout,
  isWithin,
  recordOptions,
  signingKeyAs,
  since,
  stepPlaces,
  writeAttestationFile,
  writeLinkFile,
  type SignAs,
} from './step-files.js';

/**
 * `intoto-run` as a library call: record materials, run the command, record products, sign,
 * write `<name>.<keyid8>.link`. The order is what makes the link honest:
 * 1. check everything that can be checked without the key's bytes (name, key file readable,
 *    link directory, sandbox available, command found), so a typo fails before any work;
 * 2. hash the materials;
 * 3. run the command (sandboxed unless told otherwise; its whole process group is dead when
 *    executeCommand returns, so nothing it started can touch a product afterwards);
 * 4. hash the products;
 * 5. only now read the private key, sign, and write the link atomically.
 * A built-in step ({@link BuiltinAction}) runs no command: at 3. the runner reads the key and
 * does the work itself, then records the products and signs the link with that same key.
 * A command that fails or times out still gets its link (the evidence of what happened); the
 * result says so and the CLI exits non-zero.
 */

/**
 * A step the runner performs itself instead of running a command (a YAML step's `uses:`, such
 * as model-sign). It runs in this process, between the materials and the products, with the
 * step's own signing key: no command runs in such a step, so no command can see that key.
 */
export interface BuiltinAction {
  /** What the link records as its command (never a key path, never key material). */
  readonly command: readonly string[];
  /**
   * Does the work in the step's working directory, given the recorded materials and the key
   * the link will be signed with; returns the text the link records as its stdout.
   * @throws any InTotoError: the step stops and no link is written
   */
  perform(key: SigningKey, materials: ReadonlyMap<string, HashDict>): Promise<string>;
}

/** What to run and record; paths are relative to `cwd`. */
export interface RunStepOptions extends SignAs {
  readonly name: string;
  readonly keyPath: string;
  readonly password?: string;
  /** A key type named with `-t`: the key file must hold one (detected otherwise). */
  readonly keyType?: KeyType;
  readonly materials: readonly string[];
  readonly products: readonly string[];
  /** The command as an argv; [] means no command (`-x`). */
  readonly command: readonly string[];
  /** Performed by the runner in place of a command (`command` must then be []). */
  readonly action?: BuiltinAction;
  /** Where artifacts are found and named from (default: cwd); the only writable place in the sandbox. */
  readonly basePath?: string;
  /** The command's working directory, and what relative paths are resolved against (default: process.cwd()). */
  readonly cwd?: string;
  readonly excludePatterns?: readonly string[];
  readonly lstripPaths?: readonly string[];
  readonly algorithms?: readonly RecordableHashAlgorithm[];
  /** Record stdout and stderr in the link (`-s`); they are shown to the user either way. */
  readonly recordStreams?: boolean;
  /** No limit when undefined. */
  readonly timeoutSeconds?: number;
  /** Default 'auto'. */
  readonly sandbox?: SandboxMode;
  /** Environment variables passed through to the command besides the allow-list. */
  readonly passEnv?: readonly string[];
  readonly shareNet?: boolean;
  /** Device files made visible to the command under the sandbox (`--device`). */
  readonly devices?: readonly string[];
  /** Where the link is written (default: cwd). */
  readonly metadataDirectory?: string;
  readonly useDsse?: boolean;
  /** Also write the link as an in-toto attestation (Statement v1, link predicate, DSSE). */
  readonly attest?: boolean;
  /** Where that attestation goes (default: beside the link). */
  readonly attestationDirectory?: string;
  /** Further files the command must not read (other signing keys), hidden as the key is. */
  readonly hide?: readonly string[];
  /** Show the command's output on our stdout/stderr (default true). */
  readonly echo?: boolean;
  /** Recorded in the link's `environment` beside the grants (a pipeline engine's run id); never read by the command. */
  readonly environment?: JsonObject;
  readonly warn: (message: string) => void;
  readonly info?: (message: string) => void;
}

/** The link as written, and how the command ended. */
export interface RunStepResult {
  readonly link: Link;
  readonly linkPath: string;
  /** With `attest`: the attestation's path (undefined when the link had no products). */
  readonly attestationPath: string | undefined;
  readonly keyid: string;
  /** The command's exit code (minus the signal number if a signal ended it); undefined without a command. */
  readonly returnValue: number | undefined;
  readonly timedOut: boolean;
  readonly sandboxed: boolean;
  readonly timings: { materialsMs: number; commandMs: number; productsMs: number };
}

/**
 * Runs one step and writes its signed link. A failing or timed-out command is not thrown: the
 * link is written and the result carries `returnValue` and `timedOut`.
 * @throws FormatError E_STEP_NAME, E_ARTIFACT_NAME; UsageError E_USAGE (bad options);
 *   IoError E_IO, E_NOT_REGULAR_FILE (key file, link directory, artifacts), E_LIMIT;
 *   RunError E_SANDBOX_UNAVAILABLE (`sandbox: 'bwrap'` without bubblewrap),
 *   E_STEP_ENVIRONMENT (a variable not set, a device missing), E_COMMAND_NOT_FOUND, E_PATH_OUTSIDE_BASE, E_LSTRIP;
 *   CryptoError E_KEY_* after the command ran (the key is only read then: no link is written)
 */
export async function runStep(options: RunStepOptions): Promise<RunStepResult> {
  const info = options.info ?? ((): void => {});
  const warn = options.warn;
  assertStepName(options.name);
  if (options.action !== undefined && options.command.length > 0) throw new UsageError('E_USAGE', `step '${options.name}': a built-in step runs no command`);
  const timeoutSeconds = checkTimeout(options.timeoutSeconds);
  const places = stepPlaces(options);
  const keyPath = resolve(places.cwd, options.keyPath);
  checkKeyFileReadable(keyPath);
  checkDirectory(places.metadataDirectory, 'metadata directory');
  const grants = grantsOf(options);
  checkGrants(grants, process.env, `step '${options.name}'`);
  const recording = recordOptions(places, { ...options, warn });
  // Hashing threads boot while the command runs (and the materials are hashed), not after it.
  prewarmHashWorkers();

  // The command is checked before the materials are hashed: a missing program or sandbox
  // should not cost a pass over a large dataset.
  const command = [...options.command];
  let sandboxed = false;
  let exec: typeof import('./exec.js') | undefined;
  if (command.length > 0) {
    exec = await import('./exec.js');
    sandboxed = await resolveSandbox(options.sandbox ?? 'auto', warn);
    exec.resolveExecutable(command[0]!, places.cwd, process.env['PATH']);
    if (sandboxed && !isWithin(places.basePath, places.cwd)) {
      warn(`the command runs in ${places.cwd}, outside the base path ${places.basePath}: only the base path is writable in the sandbox`);
    }
  }

  info(`recording materials of '${options.name}'...`);
  let start = performance.now();
  const materials = await recordArtifacts(options.materials, recording);
  const materialsMs = since(start);

  let result: Awaited<ReturnType<typeof import('./exec.js').executeCommand>> | undefined;
  start = performance.now();
  if (exec !== undefined) {
    info(`running '${command.join(' ')}'${sandboxed ? ' in the sandbox' : ''}...`);
    result = await exec.executeCommand({
      argv: command,
      cwd: places.cwd,
      writable: [places.basePath],
      hidden: [keyPath, ...(options.hide ?? []).map((p) => resolve(places.cwd, p))],
      sandbox: sandboxed ? 'bwrap' : 'none',
      ...(options.passEnv === undefined ? {} : { passEnv: options.passEnv }),
      ...(options.shareNet === undefined ? {} : { shareNet: options.shareNet }),
      devices: grants.devices,
      ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
      recordStreams: options.recordStreams ?? false,
      echo: options.echo ?? true,
      warn,
    });
    if (result.truncated) warn('the command wrote more output than is recorded; the recorded streams are cut');
  }
  // A built-in step: the runner works with the key itself, and signs the link with the same key.
  let key: SigningKey | undefined;
  let actionOutput: string | undefined;
  if (options.action !== undefined) {
    key = loadKeyAfterCommand(keyPath, options, undefined);
    actionOutput = await options.action.perform(key, materials);
  }
  const commandMs = since(start);

  info(`recording products of '${options.name}'...`);
  start = performance.now();
  const products = await recordArtifacts(options.products, recording);
  const productsMs = since(start);

  const link = makeLink({
    name: options.name,
    command: options.action?.command ?? command,
    materials,
    products,
    byproducts:
      actionOutput === undefined
        ? byproductsOf(result, options.recordStreams ?? false)
        : { 'return-value': 0, stderr: '', stdout: options.recordStreams === true ? actionOutput : '' },
    environment: { ...options.environment, ...grantsEnvironment(grants) },
  });
  key ??= loadKeyAfterCommand(keyPath, options, result?.returnValue);
  const linkPath = writeLinkFile(places.metadataDirectory, linkFileName(options.name, key.keyid), link, [key], options.useDsse ?? false);
  info(`wrote ${linkPath}`);
  const attestationDirectory = options.attestationDirectory === undefined ? places.metadataDirectory : resolve(places.cwd, options.attestationDirectory);
  const attestationPath = options.attest ? writeAttestationFile(attestationDirectory, link, key, warn) : undefined;
  if (attestationPath !== undefined) info(`wrote ${attestationPath}`);
  return {
    link,
    linkPath,
    attestationPath,
    keyid: key.keyid,
    returnValue: actionOutput === undefined ? result?.returnValue : 0,
    timedOut: result?.timedOut ?? false,
    sandboxed,
    timings: { materialsMs, commandMs, productsMs },
  };
}

/** Reads the signing key; a failure here says that the command did run, but no link was written. */
function loadKeyAfterCommand(keyPath: string, options: RunStepOptions, returnValue: number | undefined): ReturnType<typeof loadSigningKeyFile> {
  try {
    const key = loadSigningKeyFile(keyPath, {
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.keyType === undefined ? {} : { expectedType: options.keyType }),
    });
    return signingKeyAs(key, options, keyPath);
  } catch (error) {
    const ran = returnValue === undefined ? 'materials and products were recorded' : `the command ran (exit ${returnValue})`;
    throw asInTotoError(error).withContext(`${ran}, but no link was written`, { file: keyPath });
  }
}

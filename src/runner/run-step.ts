import { resolve } from 'node:path';
import { asInTotoError } from '../errors.js';
import { loadSigningKeyFile } from '../crypto/keyfiles.js';
import type { KeyType } from '../crypto/keys.js';
import type { RecordableHashAlgorithm } from '../model/artifacts.js';
import { linkFileName, makeLink, type Link } from '../model/link.js';
import { prewarmHashWorkers } from './hash-pool.js';
import { recordArtifacts } from './record.js';
import { resolveSandbox, type SandboxMode } from './sandbox.js';
import {
  assertStepName,
  byproductsOf,
  checkDirectory,
  checkKeyFileReadable,
  checkTimeout,
  isWithin,
  recordOptions,
  since,
  stepPlaces,
  writeLinkFile,
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
 * A command that fails or times out still gets its link (the evidence of what happened); the
 * result says so and the CLI exits non-zero.
 */

/** What to run and record; paths are relative to `cwd`. */
export interface RunStepOptions {
  readonly name: string;
  readonly keyPath: string;
  readonly password?: string;
  /** A key type named with `-t`: the key file must hold one (detected otherwise). */
  readonly keyType?: KeyType;
  readonly materials: readonly string[];
  readonly products: readonly string[];
  /** The command as an argv; [] means no command (`-x`). */
  readonly command: readonly string[];
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
  /** Where the link is written (default: cwd). */
  readonly metadataDirectory?: string;
  readonly useDsse?: boolean;
  /** Show the command's output on our stdout/stderr (default true). */
  readonly echo?: boolean;
  readonly warn: (message: string) => void;
  readonly info?: (message: string) => void;
}

/** The link as written, and how the command ended. */
export interface RunStepResult {
  readonly link: Link;
  readonly linkPath: string;
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
 *   E_COMMAND_NOT_FOUND, E_PATH_OUTSIDE_BASE, E_LSTRIP;
 *   CryptoError E_KEY_* after the command ran (the key is only read then: no link is written)
 */
export async function runStep(options: RunStepOptions): Promise<RunStepResult> {
  const info = options.info ?? ((): void => {});
  const warn = options.warn;
  assertStepName(options.name);
  const timeoutSeconds = checkTimeout(options.timeoutSeconds);
  const places = stepPlaces(options);
  const keyPath = resolve(places.cwd, options.keyPath);
  checkKeyFileReadable(keyPath);
  checkDirectory(places.metadataDirectory, 'metadata directory');
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
      hidden: [keyPath],
      sandbox: sandboxed ? 'bwrap' : 'none',
      ...(options.passEnv === undefined ? {} : { passEnv: options.passEnv }),
      ...(options.shareNet === undefined ? {} : { shareNet: options.shareNet }),
      ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
      recordStreams: options.recordStreams ?? false,
      echo: options.echo ?? true,
      warn,
    });
    if (result.truncated) warn('the command wrote more output than is recorded; the recorded streams are cut');
  }
  const commandMs = since(start);

  info(`recording products of '${options.name}'...`);
  start = performance.now();
  const products = await recordArtifacts(options.products, recording);
  const productsMs = since(start);

  const link = makeLink({
    name: options.name,
    command,
    materials,
    products,
    byproducts: byproductsOf(result, options.recordStreams ?? false),
    environment: {},
  });
  const key = loadKeyAfterCommand(keyPath, options, result?.returnValue);
  const linkPath = writeLinkFile(places.metadataDirectory, linkFileName(options.name, key.keyid), link, [key], options.useDsse ?? false);
  info(`wrote ${linkPath}`);
  return {
    link,
    linkPath,
    keyid: key.keyid,
    returnValue: result?.returnValue,
    timedOut: result?.timedOut ?? false,
    sandboxed,
    timings: { materialsMs, commandMs, productsMs },
  };
}

/** Reads the signing key; a failure here says that the command did run, but no link was written. */
function loadKeyAfterCommand(keyPath: string, options: RunStepOptions, returnValue: number | undefined): ReturnType<typeof loadSigningKeyFile> {
  try {
    return loadSigningKeyFile(keyPath, {
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.keyType === undefined ? {} : { expectedType: options.keyType }),
    });
  } catch (error) {
    const ran = returnValue === undefined ? 'materials and products were recorded' : `the command ran (exit ${returnValue})`;
    throw asInTotoError(error).withContext(`${ran}, but no link was written`, { file: keyPath });
  }
}

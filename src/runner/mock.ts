import { UsageError } from '../errors.js';
import { makeLink, type Link } from '../model/link.js';
import { recordArtifacts } from './record.js';
import { checkGrants, grantsEnvironment, grantsOf, resolveSandbox, type SandboxMode } from './sandbox.js';
import { assertStepName, byproductsOf, checkTimeout, recordOptions, stepPlaces, writeLinkFile } from './step-files.js';

/**
 * `intoto-mock`: in-toto-run with in-toto-mock's defaults, for trying a step out without a key:
 * every file under the working directory recorded as materials and products, both streams
 * recorded, and an unsigned Metablock (`"signatures": []`) written to `<name>.link` in the
 * working directory, byte for byte as in-toto-mock writes it. The command runs as under
 * intoto-run (sandbox, scrubbed environment, no time limit unless asked).
 */

/** The command to try out, and how to run it. */
export interface MockOptions {
  readonly name: string;
  readonly command: readonly string[];
  /** Where the command runs, what is recorded, and where the link goes (default: process.cwd()). */
  readonly cwd?: string;
  readonly sandbox?: SandboxMode;
  readonly timeoutSeconds?: number;
  readonly passEnv?: readonly string[];
  readonly shareNet?: boolean;
  readonly devices?: readonly string[];
  readonly echo?: boolean;
  readonly warn: (message: string) => void;
  readonly info?: (message: string) => void;
}

/** The unsigned link as written, and how the command ended. */
export interface MockResult {
  readonly link: Link;
  readonly linkPath: string;
  readonly returnValue: number;
  readonly timedOut: boolean;
  readonly sandboxed: boolean;
}

/**
 * Runs the command and writes the unsigned link; a failing command still gets its link.
 * @throws FormatError E_STEP_NAME, E_ARTIFACT_NAME; RunError E_COMMAND_NOT_FOUND,
 *   E_SANDBOX_UNAVAILABLE, E_STEP_ENVIRONMENT; UsageError E_USAGE (no command); IoError E_IO, E_LIMIT
 */
export async function mockStep(options: MockOptions): Promise<MockResult> {
  assertStepName(options.name);
  const timeoutSeconds = checkTimeout(options.timeoutSeconds);
  const places = stepPlaces({ ...(options.cwd === undefined ? {} : { cwd: options.cwd }) });
  const exec = await import('./exec.js');
  const [program] = options.command;
  if (program === undefined) throw new UsageError('E_USAGE', 'a command is required (intoto-mock -n NAME -- COMMAND [ARGS...])');
  const grants = grantsOf(options);
  checkGrants(grants, process.env, `step '${options.name}'`);
  const sandboxed = await resolveSandbox(options.sandbox ?? 'auto', options.warn);
  exec.resolveExecutable(program, places.cwd, process.env['PATH']);
  const recording = recordOptions(places, { warn: options.warn });

  options.info?.(`recording materials of '${options.name}' (everything under ${places.cwd})...`);
  const materials = await recordArtifacts(['.'], recording);
  options.info?.(`running '${options.command.join(' ')}'${sandboxed ? ' in the sandbox' : ''}...`);
  const result = await exec.executeCommand({
    argv: options.command,
    cwd: places.cwd,
    writable: [places.cwd],
    sandbox: sandboxed ? 'bwrap' : 'none',
    ...(options.passEnv === undefined ? {} : { passEnv: options.passEnv }),
    ...(options.shareNet === undefined ? {} : { shareNet: options.shareNet }),
    devices: grants.devices,
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
    recordStreams: true,
    echo: options.echo ?? true,
    warn: options.warn,
  });
  options.info?.(`recording products of '${options.name}'...`);
  const products = await recordArtifacts(['.'], recording);
  const link = makeLink({
    name: options.name,
    command: options.command,
    materials,
    products,
    byproducts: byproductsOf(result, true),
    environment: grantsEnvironment(grants),
  });
  const linkPath = writeLinkFile(places.cwd, `${options.name}.link`, link, [], false);
  options.info?.(`wrote unsigned ${linkPath}; sign it with 'intoto-sign -f ${options.name}.link -k KEY'`);
  return { link, linkPath, returnValue: result.returnValue, timedOut: result.timedOut, sandboxed };
}

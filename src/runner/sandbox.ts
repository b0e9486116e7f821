import { spawn } from 'node:child_process';
import { realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { RunError } from '../errors.js';

/**
 * Isolation of a wrapped command with bubblewrap (bwrap):
 * - the host file system read-only; the workspace (the base path) writable; a private /tmp;
 *   a minimal /dev and a fresh /proc;
 * - every namespace unshared (user, ipc, pid, net, uts, cgroup), so no network (unless
 *   `shareNet`), no view of our process, and every process the command leaves behind dies
 *   with the PID namespace when the command ends;
 * - all capabilities dropped (as root, a remount could otherwise make the host writable) and
 *   a new session (no TIOCSTI into the user's terminal);
 * - the signing key's directory hidden under an empty tmpfs (or, when that directory holds
 *   the workspace, the key file itself replaced by /dev/null);
 * - an environment reduced to an allow-list (see {@link allowedEnvironment}).
 *
 * What it does not promise: protection from kernel exploits, from a command reading world-
 * readable host files, or from resource exhaustion (no CPU or memory limits).
 */

export type SandboxMode = 'auto' | 'bwrap' | 'none';

/** Variables a step always receives (when set); others only by name with `--env`. */
export const BASE_ENV_ALLOWLIST: readonly string[] = ['PATH', 'HOME', 'LANG', 'TERM'];

/**
 * The environment a step runs with: the allow-list plus the names passed with `--env`.
 * Secrets such as `*_TOKEN`, `AWS_*` or `IN_TOTO_*` never reach the step unless named. PATH
 * keeps only its absolute entries ({@link absolutePath}).
 */
export function allowedEnvironment(source: NodeJS.ProcessEnv, extra: readonly string[]): Record<string, string> {
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of [...BASE_ENV_ALLOWLIST, ...extra]) {
    const value = source[name];
    if (value === undefined) continue;
    if (name !== 'PATH') env[name] = value;
    else {
      const path = absolutePath(value);
      if (path !== '') env[name] = path;
    }
  }
  return env;
}

/**
 * A PATH value without its empty, `.` and other relative entries, which execvp resolves
 * against the working directory: there, a step's workspace, which holds what the step reads
 * (a `ls` or `python3` placed among the sources would run instead of the real one). '' when
 * nothing is left (then PATH is left unset rather than set empty, which execvp would also read
 * as the working directory).
 */
export function absolutePath(value: string): string {
  return value
    .split(':')
    .filter((dir) => isAbsolute(dir))
    .join(':');
}

/** The grants a step may ask for beyond the sandbox's defaults (YAML `env:`, `network:`, `devices:`; --env, --share-net, --device). */
export interface StepGrants {
  /** Environment variable names passed through from the caller's environment. */
  readonly env: readonly string[];
  /** The host's network, under the sandbox. */
  readonly network: boolean;
  /** Device files (GPUs, ...) made visible in the sandbox's minimal /dev. */
  readonly devices: readonly string[];
}

/** The grants of a step from its run options (repeats dropped). */
export function grantsOf(options: { readonly passEnv?: readonly string[]; readonly shareNet?: boolean; readonly devices?: readonly string[] }): StepGrants {
  return { env: [...new Set(options.passEnv ?? [])], network: options.shareNet ?? false, devices: [...new Set(options.devices ?? [])] };
}

/** A device path a step may ask for: an absolute path under /dev, no `..`, no empty segment. */
export const DEVICE_PATH = /^\/dev(\/(?!\.\.?(\/|$))[A-Za-z0-9_.+:-]+)+$/;

/** An environment variable name. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks that what a step asks for can be given here, before anything runs: every variable is
 * set in the caller's environment, every device exists and is a device.
 * @throws RunError E_STEP_ENVIRONMENT naming the variable or device
 */
export function checkGrants(grants: StepGrants, source: NodeJS.ProcessEnv, who: string): void {
  for (const name of grants.env) {
    if (source[name] === undefined) {
      throw new RunError('E_STEP_ENVIRONMENT', `${who} asks for the environment variable ${name}, which is not set here`);
    }
  }
  for (const device of grants.devices) {
    if (!DEVICE_PATH.test(device)) throw new RunError('E_STEP_ENVIRONMENT', `${who} asks for the device ${JSON.stringify(device)}: a device is a path under /dev`);
    let stat;
    try {
      stat = statSync(device);
    } catch {
      throw new RunError('E_STEP_ENVIRONMENT', `${who} asks for the device ${device}, which this machine does not have`);
    }
    if (!stat.isCharacterDevice() && !stat.isBlockDevice()) {
      throw new RunError('E_STEP_ENVIRONMENT', `${who} asks for ${device}, which is not a device file`);
    }
  }
}

/**
 * What a link records of its step's grants, in its `environment`: `{}` when there are none (as
 * in-toto 1.3.1 writes), else the names, `network: true` and the devices. Never the values of
 * the variables (they may be secrets).
 */
export function grantsEnvironment(grants: StepGrants): Record<string, string[] | boolean> {
  const environment: Record<string, string[] | boolean> = {};
  if (grants.devices.length > 0) environment['devices'] = [...grants.devices];
  if (grants.env.length > 0) environment['env'] = [...grants.env];
  if (grants.network) environment['network'] = true;
  return environment;
}

type Probe = { readonly ok: true } | { readonly ok: false; readonly reason: string };

let probe: Promise<Probe> | undefined;

const PROBE_TIMEOUT_MS = 10_000;

/**
 * Whether bwrap exists and can create its namespaces here: it runs `true` in a sandbox like
 * ours, once per process. Asynchronous, so that intoto-run can start it before the rest of the
 * program has loaded (see cli/prewarm.ts) and find the answer ready: a bwrap start costs about
 * 20 ms of waiting. Never rejects.
 */
export function probeBwrap(): Promise<Probe> {
  probe ??= new Promise<Probe>((resolveProbe) => {
    let stderr = '';
    const child = spawn('bwrap', ['--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', '--cap-drop', 'ALL', '--', 'true'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: PROBE_TIMEOUT_MS,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    child.once('error', (error: NodeJS.ErrnoException) => resolveProbe({ ok: false, reason: `bwrap not found (${error.code ?? error.message})` }));
    child.once('close', (code, signal) => {
      if (code === 0) return resolveProbe({ ok: true });
      const how = signal === null ? `exit ${String(code)}` : `killed by ${signal}`;
      resolveProbe({ ok: false, reason: `bwrap cannot create a sandbox here: ${stderr.trim() || how}` });
    });
  });
  return probe;
}

/**
 * Decides whether to sandbox: `bwrap` requires it, `auto` uses it when it works (warning
 * otherwise), `none` never.
 * @throws RunError E_SANDBOX_UNAVAILABLE for `bwrap` when bubblewrap cannot run
 */
export async function resolveSandbox(mode: SandboxMode, warn: (message: string) => void): Promise<boolean> {
  if (mode === 'none') return false;
  const result = await probeBwrap();
  if (result.ok) return true;
  if (mode === 'bwrap') {
    throw new RunError('E_SANDBOX_UNAVAILABLE', `--sandbox bwrap: ${result.reason}; install bubblewrap or choose --sandbox none`);
  }
  warn(`${result.reason}; the command runs WITHOUT isolation (environment still reduced to an allow-list)`);
  return false;
}

export interface BwrapOptions {
  /** Writable directories (the workspace). */
  readonly writable: readonly string[];
  /** The command's working directory. */
  readonly cwd: string;
  /** Files to make unreadable (signing keys): their directories are hidden when possible. */
  readonly hidden: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly shareNet: boolean;
  /** Device files bound into the minimal /dev (checked by {@link checkGrants} first). */
  readonly devices?: readonly string[];
  /** Files or directories mounted read-only at `target` (which must exist): final products that cannot be hard-linked. */
  readonly readOnlyBinds?: readonly { readonly source: string; readonly target: string }[];
  /**
   * Host directories the private /tmp would otherwise hide (where the program to run lives,
   * when that is under /tmp): bound read-only at their real path. Directories outside /tmp
   * need nothing and are ignored.
   */
  readonly keepVisible?: readonly string[];
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function contains(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The bwrap arguments (before `--` and the command) for these options. */
export function bwrapArgs(options: BwrapOptions): string[] {
  const args = ['--die-with-parent', '--unshare-all'];
  if (options.shareNet) args.push('--share-net');
  args.push('--new-session', '--cap-drop', 'ALL', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp');
  for (const device of options.devices ?? []) args.push('--dev-bind', device, device);
  const visible = new Set<string>();
  for (const path of options.keepVisible ?? []) {
    const real = canonical(path);
    if (contains('/tmp', real) && real !== '/tmp') visible.add(real);
  }
  for (const path of [...visible].sort()) args.push('--ro-bind', path, path);
  const writable = options.writable.map(canonical);
  for (const dir of writable) args.push('--bind', dir, dir);
  // After the writable binds, so that a read-only bind inside the workspace stays read-only.
  for (const bind of options.readOnlyBinds ?? []) args.push('--ro-bind', bind.source, canonical(bind.target));
  for (const file of options.hidden.map(canonical)) {
    const dir = dirname(file);
    // Hide the whole key directory (other keys often sit beside it), unless the workspace is
    // inside it: then only the key file itself can be covered.
    if (!writable.some((w) => contains(dir, w)) && dir !== '/') args.push('--tmpfs', dir);
    else args.push('--ro-bind', '/dev/null', file);
  }
  args.push('--chdir', canonical(options.cwd), '--clearenv');
  for (const [name, value] of Object.entries(options.env)) args.push('--setenv', name, value);
  return args;
}

/** Whether the key's directory will be hidden whole (for warnings). */
export function hidesWholeDirectory(keyFile: string, writable: readonly string[]): boolean {
  const dir = dirname(canonical(keyFile));
  return dir !== '/' && !writable.map(canonical).some((w) => contains(dir, w));
}

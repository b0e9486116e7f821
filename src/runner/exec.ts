import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { RunError } from '../errors.js';
import { onInterrupt } from '../io/interrupt.js';
import { allowedEnvironment, bwrapArgs, resolveSandbox, type SandboxMode } from './sandbox.js';

/**
 * Runs a step's command: an argv (never a shell), stdin closed, stdout and stderr passed
 * through to the user and, with `recordStreams`, recorded up to a cap. The command's whole
 * process group is killed once it exits or times out, before any product is hashed, so a
 * child left behind cannot rewrite a product after the fact (under bwrap, the PID namespace
 * guarantees this even for children that leave the group).
 */

export interface ExecOptions {
  readonly argv: readonly string[];
  /** The command's working directory. */
  readonly cwd: string;
  /** Directories the command may write (the workspace); only enforced under the sandbox. */
  readonly writable: readonly string[];
  /** Files the command must not read (signing keys); only enforced under the sandbox. */
  readonly hidden?: readonly string[];
  /** Read-only bind mounts (sandbox only; the caller checks `sandboxed` before relying on them). */
  readonly readOnlyBinds?: readonly { readonly source: string; readonly target: string }[];
  readonly sandbox: SandboxMode;
  /** Extra environment variable names passed through (`--env NAME`). */
  readonly passEnv?: readonly string[];
  readonly shareNet?: boolean;
  /** Device files made visible in the sandbox (the caller checked them with checkGrants). */
  readonly devices?: readonly string[];
  /** No limit when undefined (the reference's hidden 10 s limit is gone). */
  readonly timeoutSeconds?: number;
  readonly recordStreams: boolean;
  /** Show the command's output on our stdout/stderr (default true). */
  readonly echo?: boolean;
  readonly maxRecordedBytes?: number;
  readonly warn: (message: string) => void;
  /** The environment to filter (default process.env); for tests. */
  readonly sourceEnv?: NodeJS.ProcessEnv;
}

export interface ExecResult {
  /** The exit code, or minus the signal number when a signal ended it (as Python reports). */
  readonly returnValue: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly sandboxed: boolean;
  /** True when a recorded stream was cut at the cap. */
  readonly truncated: boolean;
}

export const DEFAULT_MAX_RECORDED_BYTES = 16 * 1024 * 1024;
const KILL_GRACE_MS = 3000;
const STREAM_GRACE_MS = 1000;

/** The root of this package (dist/ and node_modules/), two levels above this module. */
const OWN_INSTALLATION = fileURLToPath(new URL('../../', import.meta.url));

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/**
 * Finds the executable the way execvp would, but only through absolute PATH entries (never an
 * empty, `.` or relative one, which would resolve against the step's workspace), so that a
 * missing command is reported the same way with or without the sandbox, before anything runs.
 * The absolute path found is what runs.
 * @throws RunError E_COMMAND_NOT_FOUND
 */
export function resolveExecutable(command: string, cwd: string, path: string | undefined): string {
  const dirs = (path ?? '').split(delimiter);
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : dirs.filter((dir) => isAbsolute(dir)).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return candidate;
      }
    } catch {
      // not this one
    }
  }
  const skipped = command.includes('/') ? [] : dirs.filter((dir) => !isAbsolute(dir));
  const hint = skipped.length === 0 ? '' : ` (PATH entries that are empty, '.' or relative are never searched: ${skipped.map((d) => JSON.stringify(d)).join(', ')})`;
  throw new RunError('E_COMMAND_NOT_FOUND', `command not found or not executable: ${command}${hint}`);
}

/**
 * Runs the command and waits for it (and kills what it leaves behind).
 * @throws RunError E_COMMAND_NOT_FOUND, E_SANDBOX_UNAVAILABLE; a non-zero exit or a timeout is
 *   not thrown: it is in the result, so the caller can still write the link.
 */
export async function executeCommand(options: ExecOptions): Promise<ExecResult> {
  const [command, ...args] = options.argv;
  if (command === undefined) throw new RunError('E_COMMAND_NOT_FOUND', 'no command given');
  const env = allowedEnvironment(options.sourceEnv ?? process.env, options.passEnv ?? []);
  // Resolved through the caller's PATH as given, so a command found only through a relative
  // entry is named in the error (the step itself gets PATH without those entries).
  const executable = resolveExecutable(command, options.cwd, (options.sourceEnv ?? process.env)['PATH']);
  const sandboxed = await resolveSandbox(options.sandbox, options.warn);
  const [file, fileArgs] = sandboxed
    ? [
        'bwrap',
        [
          ...bwrapArgs({
            writable: options.writable,
            cwd: options.cwd,
            hidden: options.hidden ?? [],
            env,
            shareNet: options.shareNet ?? false,
            devices: options.devices ?? [],
            ...(options.readOnlyBinds === undefined ? {} : { readOnlyBinds: options.readOnlyBinds }),
            // The sandbox's /tmp is empty: keep the program itself (and our own installation,
            // which inspections such as `intoto scan-pickle` run) visible when they live there.
            keepVisible: [dirname(executable), dirname(realpathOr(executable)), OWN_INSTALLATION],
          }),
          '--',
          // The path resolved above, not a name for bwrap to look up again (bwrap 0.8 has no
          // --argv0: inside the sandbox the program sees this path as its argv[0]).
          executable,
          ...args,
        ],
      ]
    : [executable, args];

  // node:child_process rather than execa: execa costs about 0.15 s of CPU to load, on every
  // intoto-run, and what it adds here (cleanup on our exit) is the few lines of guardChild.
  const child = spawn(file, fileArgs, {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so the whole group can be killed
    windowsHide: true,
    // What the command was called, as execvp would pass it (the file run is `executable`).
    ...(sandboxed ? {} : { argv0: command }),
  });
  const unguard = guardChild(child.pid);
  const cap = options.maxRecordedBytes ?? DEFAULT_MAX_RECORDED_BYTES;
  const echo = options.echo ?? true;
  const stdout = collect(child.stdout, options.recordStreams, cap, echo ? process.stdout : undefined);
  const stderr = collect(child.stderr, options.recordStreams, cap, echo ? process.stderr : undefined);

  let timedOut = false;
  let timer: { cancel(): void } | undefined;
  if (options.timeoutSeconds !== undefined) {
    timer = longTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGTERM');
      setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS).unref();
    }, options.timeoutSeconds * 1000);
  }
  // Wait for the process itself, not for its pipes: a child that left the group may hold
  // them open for ever ('close' waits for the pipes).
  type Outcome = { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null } | { kind: 'spawn-error'; message: string };
  const outcome = await new Promise<Outcome>((resolveOutcome) => {
    child.once('exit', (code, signal) => resolveOutcome({ kind: 'exit', code, signal }));
    child.once('error', (error) => resolveOutcome({ kind: 'spawn-error', message: error.message }));
  });
  timer?.cancel();
  // The command is done: nothing it started may outlive it and touch the products.
  killGroup(child.pid, 'SIGKILL');
  unguard();
  const [out, err] = await Promise.all([stdout.done(STREAM_GRACE_MS), stderr.done(STREAM_GRACE_MS)]);
  if (outcome.kind === 'spawn-error') throw new RunError('E_COMMAND_NOT_FOUND', `cannot start ${command}: ${outcome.message}`);
  const { code, signal } = outcome;

  const returnValue = signal ? -(SIGNAL_NUMBERS[signal] ?? 1) : (code ?? 1);
  return {
    returnValue,
    stdout: out.text,
    stderr: err.text,
    timedOut,
    sandboxed,
    truncated: out.truncated || err.truncated,
  };
}

/** Node's timers fire at once past this many milliseconds (a signed 32-bit delay). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * setTimeout for any delay: a longer one is waited in steps, because Node runs a timer whose
 * delay overflows after 1 ms (a 30-day --timeout used to kill the step at once).
 */
export function longTimeout(action: () => void, ms: number): { cancel(): void } {
  const due = Date.now() + ms;
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = due - Date.now();
    timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(action, Math.max(0, left));
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

/**
 * While the command runs, our own end must end its process group too: it runs detached (in its
 * own group), so a Ctrl-C or a CI cancellation that stops us would not reach it. On one of
 * those signals (io/interrupt.ts) and on exit, the group is killed. Returns the function that
 * removes the guard.
 */
function guardChild(pid: number | undefined): () => void {
  if (pid === undefined) return () => undefined;
  const onExit = (): void => killGroup(pid, 'SIGKILL');
  process.once('exit', onExit);
  const removeUndo = onInterrupt(() => {
    killGroup(pid, 'SIGKILL');
    return 'stopped the command and everything it started';
  });
  return () => {
    process.off('exit', onExit);
    removeUndo();
  };
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

interface Collector {
  done(graceMs: number): Promise<{ text: string; truncated: boolean }>;
}

/** Tees a stream to `echo` and keeps at most `cap` bytes of it when recording. */
function collect(stream: Readable | null, record: boolean, cap: number, echo: NodeJS.WritableStream | undefined): Collector {
  const chunks: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  const ended = new Promise<void>((resolveEnd) => {
    if (!stream) return resolveEnd();
    stream.on('data', (chunk: Buffer) => {
      echo?.write(chunk);
      if (!record) return;
      if (kept + chunk.length <= cap) {
        chunks.push(chunk);
        kept += chunk.length;
      } else {
        if (kept < cap) chunks.push(chunk.subarray(0, cap - kept));
        kept = cap;
        truncated = true;
      }
    });
    stream.on('end', () => resolveEnd());
    stream.on('close', () => resolveEnd());
    stream.on('error', () => resolveEnd());
  });
  return {
    async done(graceMs) {
      // A pipe held open by a process outside the group must not hang us.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      if (timer) clearTimeout(timer);
      stream?.destroy();
      let text = new TextDecoder('utf-8').decode(Buffer.concat(chunks));
      if (truncated) text += `\n[intoto-run: output truncated after ${cap} bytes]\n`;
      return { text, truncated };
    },
  };
}

import { VERSION_TEXT } from '../attest/version.js';
import { asInTotoError, exitStatusFor, RunError, UsageError, type InTotoError } from '../errors.js';
import { INTERRUPTED_EXIT_STATUS, setInterruptReport } from '../io/interrupt.js';

/**
 * What every command-line program shares and that needs no argument-parsing library: one-line
 * errors with their code, details with -v, exit statuses from error codes (2 bad usage, 1 any
 * other failure). Kept apart from commander (cli/common.ts) so that a program that does not
 * use commander, such as intoto-run, does not pay for loading it on every start.
 */

/** -q, nothing, or -v. */
export type Verbosity = 'quiet' | 'normal' | 'verbose';

/** Where a program writes its messages (standard error; standard output is the command's). */
export interface Output {
  readonly verbosity: Verbosity;
  /** Progress and results; hidden with -q. */
  info(line: string): void;
  /** Shown unless -q. */
  warn(line: string): void;
  /** Only with -v. */
  debug(line: string): void;
}

/** What --version prints after the program name: the attestations' version, and the in-toto it follows. */
export const VERSION = `${VERSION_TEXT} (compatible with in-toto 1.3.1)`;

/**
 * The name messages start with: the command as the user typed it (`intoto verify`, or
 * `intoto-verify`), whichever program runs the code. Set by the `intoto` umbrella.
 */
let invocation: string | undefined;

/** Makes every message say `name:` (the umbrella calls it with `intoto <command>`). */
export function setInvocation(name: string): void {
  invocation = name;
}

/** The prefix of messages: the invocation when one was set, else `program`. */
export function programName(program: string): string {
  return invocation ?? program;
}

/** Output to standard error for `program` at a verbosity. */
export function createOutput(programGiven: string, verbosity: Verbosity): Output {
  const program = programName(programGiven);
  return {
    verbosity,
    info: (line) => {
      if (verbosity !== 'quiet') process.stderr.write(`${line}\n`);
    },
    warn: (line) => {
      if (verbosity !== 'quiet') process.stderr.write(`${program}: warning: ${line}\n`);
    },
    debug: (line) => {
      if (verbosity === 'verbose') process.stderr.write(`${line}\n`);
    },
  };
}

/**
 * -v / -q as given on the command line (before any `--`), known before parsing succeeds;
 * abbreviations count, as argparse takes them (`--verb`, `--q`).
 */
export function verbosityOf(argv: readonly string[]): Verbosity {
  const end = argv.indexOf('--');
  const options = end === -1 ? argv : argv.slice(0, end);
  const abbreviates = (word: string, flag: string, shortest: number): boolean => word.length >= shortest && flag.startsWith(word);
  if (options.some((a) => a === '-v' || abbreviates(a, '--verbose', 6))) return 'verbose';
  if (options.some((a) => a === '-q' || abbreviates(a, '--quiet', 3))) return 'quiet';
  return 'normal';
}

/**
 * Prints an error as one line; with -v, its details (never the message again) and causes
 * below it.
 */
export function reportError(program: string, error: InTotoError, verbosity: Verbosity): void {
  process.stderr.write(`${programName(program)}: error: ${error.message} [${error.code}]\n`);
  if (verbosity !== 'verbose') return;
  for (const line of error.details) if (line !== error.message) process.stderr.write(`  ${line}\n`);
  let cause: unknown = error.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    const text = cause instanceof Error ? cause.message : String(cause);
    process.stderr.write(`  caused by: ${text}\n`);
    if (error.code === 'E_INTERNAL' && cause instanceof Error && cause.stack) process.stderr.write(`${cause.stack}\n`);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
}

/** commander's errors, recognised without importing commander (they carry a `commander.*` code). */
function commanderExitCode(thrown: unknown): number | undefined {
  if (!(thrown instanceof Error)) return undefined;
  const { code, exitCode } = thrown as { code?: unknown; exitCode?: unknown };
  return typeof code === 'string' && code.startsWith('commander.') && typeof exitCode === 'number' ? exitCode : undefined;
}

/**
 * Runs a program's main function and exits with its status. Only our typed errors reach the
 * user; anything else is reported as E_INTERNAL (and still exits 1, never 0).
 */
export async function runMain(program: string, main: (argv: string[]) => Promise<number>): Promise<void> {
  const argv = process.argv.slice(2);
  const verbosity = verbosityOf(argv);
  // Ctrl-C, a CI cancellation, a closed terminal: what the run made temporary is undone
  // (io/interrupt.ts), then one line says what was interrupted, and the exit status is 130.
  setInterruptReport((signal, notes, activity) => {
    const during = activity === undefined ? '' : ` while ${activity}`;
    const message = `interrupted by ${signal}${during}${notes.map((n) => `; ${n}`).join('')}`;
    if (acceptsJson && !jsonWritten && jsonRequested(argv)) writeJsonFailure(new RunError('E_INTERRUPTED', message));
    process.stderr.write(`${programName(program)}: ${message} [E_INTERRUPTED]\n`);
    process.exit(INTERRUPTED_EXIT_STATUS);
  });
  // A reader that went away (`intoto layout check x | head -1`) is not a crash with a stack
  // trace: the output cannot be delivered, so the program stops there, with status 1.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(1);
      throw error;
    });
  }
  let status: number;
  try {
    status = await main(argv);
  } catch (thrown) {
    const commanderExit = commanderExitCode(thrown);
    let error: InTotoError | undefined;
    if (commanderExit !== undefined) {
      status = commanderExit === 0 ? 0 : 2;
      if (status !== 0) error = new UsageError('E_USAGE', (thrown as Error).message.replace(/^error: /, ''));
    } else {
      error = asInTotoError(thrown);
      status = exitStatusFor(error.code);
    }
    if (error !== undefined) {
      if (acceptsJson && !jsonWritten && jsonRequested(argv)) writeJsonFailure(error);
      reportError(program, error, verbosity);
    }
  }
  process.exitCode = status;
  // Exit now instead of when the event loop drains: tearing down a large heap and the idle
  // hashing threads took another 30 ms after a 20,000-artifact link (intoto-run 0.72 -> 0.69 s,
  // medians of 7 alternating runs). Both streams are flushed first, so no output is lost.
  await flushed(process.stdout);
  await flushed(process.stderr);
  process.exit(status);
}

/** Resolves once everything written to `stream` so far has been handed to the system. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

let acceptsJson = false;
let jsonWritten = false;

/** Declares that the running command has `--json` (so that every outcome is one JSON document). */
export function acceptJson(): void {
  acceptsJson = true;
}

/** Writes the one JSON document of a `--json` run to standard output. */
export function writeJson(value: unknown, indent = 2): void {
  jsonWritten = true;
  process.stdout.write(`${JSON.stringify(value, null, indent)}\n`);
}

/** `--json` given before any `--`. */
function jsonRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * With --json, a failure that stopped the command before it printed its document still gives
 * one: `{"passed": false, "failure": {code, message, details, context}}`, the shape of the
 * `failure` field of the verification and pipeline reports.
 */
function writeJsonFailure(error: InTotoError): void {
  writeJson({ passed: false, failure: { code: error.code, message: error.message, details: error.details, context: error.context } });
}

/** Throws a usage error (exit status 2). */
export function usage(message: string): never {
  throw new UsageError('E_USAGE', message);
}

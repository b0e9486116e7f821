import { Command, CommanderError } from 'commander';
import { asInTotoError, exitStatusFor, UsageError, type InTotoError } from '../errors.js';

/**
 * What every command-line program shares: one-line errors with their code, details with -v,
 * exit statuses from error codes (2 bad usage, 1 any other failure), and a commander setup
 * that reports usage errors our way instead of exiting on its own.
 */

export type Verbosity = 'quiet' | 'normal' | 'verbose';

export interface Output {
  readonly verbosity: Verbosity;
  /** Progress and results; hidden with -q. */
  info(line: string): void;
  /** Shown unless -q. */
  warn(line: string): void;
  /** Only with -v. */
  debug(line: string): void;
}

export function createOutput(program: string, verbosity: Verbosity): Output {
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

/** -v / -q as given on the command line (before any `--`), known before parsing succeeds. */
export function verbosityOf(argv: readonly string[]): Verbosity {
  const end = argv.indexOf('--');
  const options = end === -1 ? argv : argv.slice(0, end);
  if (options.some((a) => a === '-v' || a === '--verbose')) return 'verbose';
  if (options.some((a) => a === '-q' || a === '--quiet')) return 'quiet';
  return 'normal';
}

/** Prints an error as one line, plus its details and causes with -v. */
export function reportError(program: string, error: InTotoError, verbosity: Verbosity): void {
  process.stderr.write(`${program}: error: ${error.message} [${error.code}]\n`);
  if (verbosity !== 'verbose') {
    if (error.details.length > 0) process.stderr.write(`${program}: (run with -v for ${error.details.length} more line(s) of detail)\n`);
    return;
  }
  for (const line of error.details) process.stderr.write(`  ${line}\n`);
  let cause: unknown = error.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    const text = cause instanceof Error ? cause.message : String(cause);
    process.stderr.write(`  caused by: ${text}\n`);
    if (error.code === 'E_INTERNAL' && cause instanceof Error && cause.stack) process.stderr.write(`${cause.stack}\n`);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
}

/**
 * Runs a program's main function and exits with its status. Only our typed errors reach the
 * user; anything else is reported as E_INTERNAL (and still exits 1, never 0).
 */
export async function runMain(program: string, main: (argv: string[]) => Promise<number>): Promise<void> {
  const argv = process.argv.slice(2);
  const verbosity = verbosityOf(argv);
  let status: number;
  try {
    status = await main(argv);
  } catch (thrown) {
    if (thrown instanceof CommanderError) {
      status = thrown.exitCode === 0 ? 0 : 2;
      if (status !== 0) reportError(program, new UsageError('E_USAGE', thrown.message.replace(/^error: /, '')), verbosity);
    } else {
      const error = asInTotoError(thrown);
      reportError(program, error, verbosity);
      status = exitStatusFor(error.code);
    }
  }
  process.exitCode = status;
}

/** A commander program configured to throw instead of exiting, with -v/-q/--version. */
export function newProgram(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, outputError: () => undefined })
    .option('-v, --verbose', 'show more output')
    .option('-q, --quiet', 'suppress all output but errors')
    .version(VERSION, '--version')
    .helpOption('-h, --help', 'show this help message and exit')
    .allowExcessArguments(false);
}

export const VERSION = '0.1.0 (compatible with in-toto 1.3.1)';

/** Throws a usage error (exit status 2). */
export function usage(message: string): never {
  throw new UsageError('E_USAGE', message);
}

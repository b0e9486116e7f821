import { Command } from 'commander';
import { VERSION } from './main.js';

/**
 * The commander setup shared by programs that parse with commander (intoto-sign,
 * intoto-keygen, ...): usage errors reported our way instead of commander exiting on its own.
 * Output, errors and exit statuses live in cli/main.ts (re-exported here).
 */

export { VERSION, createOutput, reportError, runMain, usage, verbosityOf, type Output, type Verbosity } from './main.js';

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

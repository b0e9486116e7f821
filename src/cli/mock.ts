import { RunError } from '../errors.js';
import { mockStep } from '../runner/mock.js';
import { formatHelp, parseArguments, stringValue, type ParserSpec } from './argparse.js';
import { createOutput, usage, VERSION } from './main.js';
import { commandOf, defined, devicesOf, EXECUTION_OPTIONS, HELP, passEnvOf, sandboxOf, timeoutOf, VERSION_OPTION } from './step-options.js';

const PROG = 'intoto-mock';

/** in-toto-mock's command line, plus the execution options of intoto-run. */
export const MOCK_SPEC: ParserSpec = {
  prog: PROG,
  usage: `${PROG} [-h] --name <name> -- <command> [args]`,
  description: `
A variant of intoto-run for trying a step out without a key: runs the command, records every
file in the current directory as materials and products (with stdout and stderr), and writes
UNSIGNED link metadata to '<name>.link' (sign it afterwards with intoto-sign). As in-toto-mock,
except that the command runs as under intoto-run (sandbox, reduced environment, no time limit
unless --timeout) and a failing command makes the exit status 1 (the link is still written).`,
  epilog: `EXAMPLE USAGE
  ${PROG} --name foo -- touch bar
  intoto-sign -k mykey -f foo.link`,
  options: [
    HELP,
    { dest: 'name', flags: ['-n', '--name'], kind: 'value', metavar: '<name>', required: true, named: true, help: "name for the resulting link metadata file, which is written to '<name>.link'. It is also used to associate the link with a step defined in an in-toto layout." },
    ...EXECUTION_OPTIONS,
    VERSION_OPTION,
  ],
  positional: { metavar: '<command>', help: "the command to run, after a double dash '--'." },
};

/** `intoto-mock -n NAME -- COMMAND`, with in-toto-mock's command line. */
export async function mockMain(argv: string[]): Promise<number> {
  const parsed = parseArguments(MOCK_SPEC, argv);
  if (parsed.action === 'help') {
    process.stdout.write(formatHelp(MOCK_SPEC));
    return 0;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`${PROG} ${VERSION}\n`);
    return 0;
  }
  const command = commandOf(parsed, PROG);
  if (command.length === 0) usage('the following arguments are required: <command> (put it after --)');
  // in-toto-mock is verbose on purpose: it is for trying things out.
  const out = createOutput(PROG, 'normal');
  const result = await mockStep({
    name: stringValue(parsed, 'name')!,
    command,
    ...defined('timeoutSeconds', timeoutOf(parsed)),
    sandbox: sandboxOf(parsed),
    ...defined('passEnv', passEnvOf(parsed)),
    shareNet: parsed.values.get('shareNet') === true,
    ...defined('devices', devicesOf(parsed)),
    warn: out.warn,
    info: (line) => out.info(`${PROG}: ${line}`),
  });
  if (result.timedOut) {
    throw new RunError('E_TIMEOUT', `the command timed out and was stopped; the unsigned link recording that was written to ${result.linkPath}`, { context: { file: result.linkPath } });
  }
  if (result.returnValue !== 0) {
    throw new RunError('E_COMMAND_FAILED', `the command exited with ${result.returnValue}; the unsigned link recording that was written to ${result.linkPath}`, { context: { file: result.linkPath } });
  }
  return 0;
}

import { RunError } from '../errors.js';
import { runStep } from '../runner/run-step.js';
import { flagValue, formatHelp, listValue, parseArguments, stringValue, type ParserSpec } from './argparse.js';
import { createOutput, usage, VERSION } from './main.js';
import {
  algorithmsOf,
  ATTEST,
  BASE_PATH,
  commandOf,
  defined,
  EXCLUDE,
  EXECUTION_OPTIONS,
  GPG,
  GPG_HOME,
  HASH,
  HELP,
  KEY,
  KEY_TYPE,
  KEYID_FORM,
  keyidFormOf,
  keyPathOf,
  keyTypeOf,
  LSTRIP_PATHS,
  METADATA_DIRECTORY,
  noCommandMessage,
  PASSWORD,
  passEnvOf,
  devicesOf,
  passwordOf,
  QUIET,
  refuseRepeatedLists,
  sandboxOf,
  SIGNING_KEY,
  STEP_NAME,
  timeoutOf,
  USE_DSSE,
  VERBOSE,
  VERSION_OPTION,
  verbosity,
} from './step-options.js';

const PROG = 'intoto-run';

/** The command line of in-toto-run 1.3.1, plus ours. */
export const RUN_SPEC: ParserSpec = {
  prog: PROG,
  usage: `${PROG} <named arguments> [options] -- <command> [args]`,
  description: `
Runs a supply chain step and writes signed link metadata: the hashes of the materials (before
the command) and products (after it), the command, its exit code and, with -s, its output,
signed with the functionary's key as '<name>.<keyid prefix>.link'. The flags are in-toto-run's.
Unlike in-toto-run: the command runs in a sandbox when bubblewrap is available, with a reduced
environment and no time limit unless --timeout is given; its output is always shown; nothing
is read from .in_totorc or IN_TOTO_* variables; and when the command fails or times out the
link is still written but the exit status is 1.`,
  epilog: `EXAMPLE USAGE
  ${PROG} -n package -k key -m src -p dist/app.tar.gz -- tar czf dist/app.tar.gz src
  ${PROG} -n review -k key -m document.pdf -x`,
  options: [
    HELP,
    STEP_NAME,
    KEY,
    SIGNING_KEY,
    GPG,
    { dest: 'materials', flags: ['-m', '--materials'], kind: 'list', metavar: '<path>', help: 'paths to files or directories whose hashes are recorded before the command runs. Symlinks to files inside the base path are followed.' },
    { dest: 'products', flags: ['-p', '--products'], kind: 'list', metavar: '<path>', help: 'paths to files or directories whose hashes are recorded after the command (and everything it started) has ended.' },
    { dest: 'recordStreams', flags: ['-s', '--record-streams'], kind: 'flag', help: "store the command's stdout and stderr in the link (they are shown either way)." },
    { dest: 'noCommand', flags: ['-x', '--no-command'], kind: 'flag', help: 'record materials and products without running a command, e.g. for a signed-off-by step.' },
    KEY_TYPE,
    PASSWORD,
    GPG_HOME,
    EXCLUDE,
    BASE_PATH,
    LSTRIP_PATHS,
    METADATA_DIRECTORY,
    VERBOSE,
    QUIET,
    USE_DSSE,
    KEYID_FORM,
    ATTEST,
    HASH,
    ...EXECUTION_OPTIONS,
    VERSION_OPTION,
  ],
  exclusive: [['verbose', 'quiet']],
  positional: { metavar: '<command>', help: "the command to run, after a double dash '--'." },
};

/**
 * `intoto-run`: parses in-toto-run's command line, runs the step, and exits 1 (after writing
 * the link) when the command failed or timed out.
 */
export async function runStepMain(argv: string[]): Promise<number> {
  const parsed = parseArguments(RUN_SPEC, argv);
  if (parsed.action === 'help') {
    process.stdout.write(formatHelp(RUN_SPEC));
    return 0;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`${PROG} ${VERSION}\n`);
    return 0;
  }
  const out = createOutput(PROG, verbosity(parsed));
  refuseRepeatedLists(parsed, RUN_SPEC.options);
  const keyPath = keyPathOf(parsed);
  if (parsed.values.has('gpgHome')) out.warn('--gpg-home is ignored (GPG keys are not supported)');
  const noCommand = flagValue(parsed, 'noCommand');
  const command = commandOf(parsed, PROG);
  if (noCommand && command.length > 0) {
    usage(`-x/--no-command and a command (${command.join(' ')}) exclude each other (in-toto-run would silently not run the command)`);
  }
  if (!noCommand && command.length === 0) usage(noCommandMessage(parsed, PROG));
  const password = await passwordOf(parsed, keyPath);

  const result = await runStep({
    name: stringValue(parsed, 'stepName')!,
    keyPath,
    keyidForm: keyidFormOf(parsed),
    attest: flagValue(parsed, 'attest'),
    ...defined('password', password),
    ...defined('keyType', keyTypeOf(parsed)),
    materials: listValue(parsed, 'materials') ?? [],
    products: listValue(parsed, 'products') ?? [],
    command,
    ...defined('basePath', stringValue(parsed, 'basePath')),
    ...defined('excludePatterns', listValue(parsed, 'exclude')),
    ...defined('lstripPaths', listValue(parsed, 'lstripPaths')),
    ...defined('algorithms', algorithmsOf(parsed)),
    recordStreams: flagValue(parsed, 'recordStreams'),
    ...defined('timeoutSeconds', timeoutOf(parsed)),
    sandbox: sandboxOf(parsed),
    ...defined('passEnv', passEnvOf(parsed)),
    shareNet: flagValue(parsed, 'shareNet'),
    ...defined('devices', devicesOf(parsed)),
    ...defined('metadataDirectory', stringValue(parsed, 'metadataDirectory')),
    useDsse: flagValue(parsed, 'useDsse'),
    echo: out.verbosity !== 'quiet',
    warn: out.warn,
    info: out.debug,
  });

  const { link } = result;
  const summary = `${link.materials.size} material(s), ${link.products.size} product(s)`;
  if (result.timedOut) {
    throw new RunError('E_TIMEOUT', `the command timed out after ${timeoutOf(parsed)} s and was stopped with its children; the link recording that (return value ${result.returnValue}) was written to ${result.linkPath}`, {
      context: { step: link.name, file: result.linkPath },
    });
  }
  if (result.returnValue !== undefined && result.returnValue !== 0) {
    const how = result.returnValue < 0 ? `was killed by signal ${-result.returnValue}` : `exited with status ${result.returnValue}`;
    throw new RunError('E_COMMAND_FAILED', `the command ${how}; the link recording that was written to ${result.linkPath}`, {
      context: { step: link.name, file: result.linkPath },
    });
  }
  out.info(`${PROG}: wrote ${result.linkPath} (${summary}${result.sandboxed ? ', sandboxed' : ''})${result.attestationPath === undefined ? '' : ` and ${result.attestationPath}`}`);
  return 0;
}

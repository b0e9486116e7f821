import { recordStart, recordStop } from '../runner/record-step.js';
import { formatHelp, listValue, parseArguments, stringValue, type OptionSpec, type ParserSpec } from './argparse.js';
import { createOutput, usage, VERSION } from './main.js';
import {
  algorithmsOf,
  BASE_PATH_NO_COMMAND,
  defined,
  EXCLUDE,
  GPG,
  GPG_HOME,
  HASH,
  HELP,
  KEY_NO_COMMAND,
  KEY_TYPE,
  KEYID_FORM,
  keyidFormOf,
  keyPathOf,
  keyTypeOf,
  LSTRIP_PATHS,
  METADATA_DIRECTORY,
  PASSWORD,
  passwordOf,
  QUIET_NO_COMMAND,
  refuseRepeatedLists,
  SIGNING_KEY,
  STEP_NAME,
  USE_DSSE,
  VERBOSE,
  verbosity,
} from './step-options.js';

const PROG = 'intoto-record';

const COMMON: readonly OptionSpec[] = [HELP, STEP_NAME, KEY_NO_COMMAND, SIGNING_KEY, GPG, KEY_TYPE, PASSWORD, GPG_HOME, EXCLUDE, BASE_PATH_NO_COMMAND, LSTRIP_PATHS, VERBOSE, QUIET_NO_COMMAND, USE_DSSE, KEYID_FORM, HASH];

/** `intoto-record start`'s options (in-toto-record start's, plus --use-dsse and --hash). */
export const START_SPEC: ParserSpec = {
  prog: `${PROG} start`,
  usage: `${PROG} start -n <name> -k <path> [-m <path> [<path> ...]] [options]`,
  description: `Records the materials of a step and writes them, signed, to '.<name>.<keyid prefix>.link-unfinished' in the current directory.`,
  options: [
    ...COMMON,
    { dest: 'materials', flags: ['-m', '--materials'], kind: 'list', metavar: '<path>', help: 'paths to files or directories whose hashes are stored as materials. Symlinks to files inside the base path are followed.' },
  ],
  exclusive: [['verbose', 'quiet']],
};

/** `intoto-record stop`'s options (in-toto-record stop's, plus --use-dsse and --hash). */
export const STOP_SPEC: ParserSpec = {
  prog: `${PROG} stop`,
  usage: `${PROG} stop -n <name> -k <path> [-p <path> [<path> ...]] [-d <directory>] [options]`,
  description: `Expects '.<name>.<keyid prefix>.link-unfinished' in the current directory, signed by the given key; adds the hashes of the products, signs again, writes '<name>.<keyid prefix>.link' and removes the unfinished file.`,
  options: [
    ...COMMON,
    { dest: 'products', flags: ['-p', '--products'], kind: 'list', metavar: '<path>', help: 'paths to files or directories whose hashes are stored as products.' },
    METADATA_DIRECTORY,
  ],
  exclusive: [['verbose', 'quiet']],
};

const MAIN_HELP = `usage: ${PROG} [-h] [--version] {start,stop} ...

Creates signed link metadata in two steps, for supply chain steps that are not a single
command (for those, use intoto-run). The command lines are in-toto-record's.

Positional Arguments:
  {start,stop}
    start     records the materials and signs them into '.<name>.<keyid prefix>.link-unfinished'
    stop      adds the products to that file, signs again and renames it '<name>.<keyid prefix>.link'

Options:
  -h, --help  show this help message and exit
  --version   show program's version number and exit

EXAMPLE USAGE
  ${PROG} start -n edit-files -k path/to/key_file -m .
  ${PROG} stop -n edit-files -k path/to/key_file -p .
`;

/** `intoto-record start|stop`, with in-toto-record's command lines. */
export async function recordMain(argv: string[]): Promise<number> {
  const [subcommand, ...rest] = argv;
  if (subcommand === '-h' || subcommand === '--help') {
    process.stdout.write(MAIN_HELP);
    return 0;
  }
  if (subcommand === '--version') {
    process.stdout.write(`${PROG} ${VERSION}\n`);
    return 0;
  }
  if (subcommand !== 'start' && subcommand !== 'stop') {
    usage(subcommand === undefined ? 'the following arguments are required: command (start or stop)' : `argument command: invalid choice: '${subcommand}' (choose from 'start', 'stop')`);
  }
  const spec = subcommand === 'start' ? START_SPEC : STOP_SPEC;
  const parsed = parseArguments(spec, rest);
  if (parsed.action === 'help') {
    process.stdout.write(formatHelp(spec));
    return 0;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`${PROG} ${VERSION}\n`);
    return 0;
  }
  refuseRepeatedLists(parsed, spec.options);
  const out = createOutput(PROG, verbosity(parsed));
  const keyPath = keyPathOf(parsed);
  if (parsed.values.has('gpgHome')) out.warn('--gpg-home is ignored (GPG keys are not supported)');
  const common = {
    name: stringValue(parsed, 'stepName')!,
    keyPath,
    keyidForm: keyidFormOf(parsed),
    ...defined('password', await passwordOf(parsed, keyPath)),
    ...defined('keyType', keyTypeOf(parsed)),
    ...defined('basePath', stringValue(parsed, 'basePath')),
    ...defined('excludePatterns', listValue(parsed, 'exclude')),
    ...defined('lstripPaths', listValue(parsed, 'lstripPaths')),
    ...defined('algorithms', algorithmsOf(parsed)),
    useDsse: parsed.values.get('useDsse') === true,
    warn: out.warn,
    info: out.debug,
  };
  if (subcommand === 'start') {
    const result = await recordStart({ ...common, materials: listValue(parsed, 'materials') ?? [] });
    out.info(`${PROG}: wrote ${result.linkPath} (${result.link.materials.size} material(s))`);
  } else {
    const result = await recordStop({
      ...common,
      products: listValue(parsed, 'products') ?? [],
      ...defined('metadataDirectory', stringValue(parsed, 'metadataDirectory')),
    });
    out.info(`${PROG}: wrote ${result.linkPath} (${result.link.materials.size} material(s), ${result.link.products.size} product(s))`);
  }
  return 0;
}

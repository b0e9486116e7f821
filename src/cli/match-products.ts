import { RunError } from '../errors.js';
import type { HashDict } from '../model/artifacts.js';
import { matchProducts, productsMatch } from '../runner/match-products.js';
import { formatHelp, listValue, parseArguments, stringValue, type ParserSpec } from './argparse.js';
import { createOutput, VERSION } from './main.js';
import { BASE_PATH_NO_COMMAND, defined, HELP, LSTRIP_PATHS, QUIET_NO_COMMAND, refuseRepeatedLists, VERBOSE, VERSION_OPTION, verbosity } from './step-options.js';

const PROG = 'intoto-match-products';

const MATCH_SPEC: ParserSpec = {
  prog: PROG,
  usage: `${PROG} -l <path> [-p <path> [<path> ...]] [-e <pattern> [<pattern> ...]] [--lstrip-paths <path> [<path> ...]] [--base-path <path>]`,
  description: `
Checks whether the artifacts on disk match the products recorded in a link (as in-toto 2.x's
in-toto-match-products). The paths are recorded as intoto-run records them (same names,
excludes, --lstrip-paths) with the hash algorithms the link uses, and compared with its
products. Exits 0 when they are identical, 1 listing what is only on disk, only in the link,
or has different digests (both shown).

NOTE: the link's signatures are NOT checked (either envelope is read as is): a match says that
the files are those the link names, not that anyone trustworthy signed it. Use intoto-verify
for that.`,
  epilog: `EXAMPLE USAGE
  ${PROG} -l package.2f89b927.link -p dist`,
  options: [
    HELP,
    { dest: 'link', flags: ['-l', '--link'], kind: 'value', metavar: '<path>', required: true, named: true, help: 'the link metadata file (Metablock or DSSE) whose products are compared' },
    { dest: 'paths', flags: ['-p', '--paths'], kind: 'list', metavar: '<path>', help: 'files or directories to record and compare. Default: the current directory.' },
    { dest: 'exclude', flags: ['-e', '--exclude'], kind: 'list', metavar: '<pattern>', help: "gitignore-style patterns of paths not to record. They replace the defaults ('*.link*', '.git', '*.pyc', '*~')." },
    LSTRIP_PATHS,
    BASE_PATH_NO_COMMAND,
    VERBOSE,
    QUIET_NO_COMMAND,
    VERSION_OPTION,
  ],
  exclusive: [['verbose', 'quiet']],
};

function digestsText(digests: HashDict): string {
  return [...digests].map(([algorithm, hex]) => `${algorithm}:${hex}`).join(' ');
}

/** `intoto-match-products`: exit 0 when the disk matches the link's products, 1 otherwise. */
export async function matchProductsMain(argv: string[]): Promise<number> {
  const parsed = parseArguments(MATCH_SPEC, argv);
  if (parsed.action === 'help') {
    process.stdout.write(formatHelp(MATCH_SPEC));
    return 0;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`${PROG} ${VERSION}\n`);
    return 0;
  }
  refuseRepeatedLists(parsed, MATCH_SPEC.options);
  const out = createOutput(PROG, verbosity(parsed));
  const linkPath = stringValue(parsed, 'link')!;
  const result = await matchProducts({
    linkPath,
    ...defined('paths', listValue(parsed, 'paths')),
    ...defined('basePath', stringValue(parsed, 'basePath')),
    ...defined('excludePatterns', listValue(parsed, 'exclude')),
    ...defined('lstripPaths', listValue(parsed, 'lstripPaths')),
    warn: out.warn,
  });
  if (productsMatch(result)) {
    out.info(`${PROG}: the ${result.link.products.size} product(s) of ${linkPath} match the artifacts on disk (the link's signatures were not checked)`);
    return 0;
  }
  const lines: string[] = [];
  for (const name of result.onlyOnDisk) lines.push(`only on disk: ${name}`);
  for (const name of result.onlyInLink) lines.push(`only in the link: ${name}`);
  for (const d of result.differ) lines.push(`differs: ${d.name}\n  link: ${digestsText(d.inLink)}\n  disk: ${digestsText(d.onDisk)}`);
  if (out.verbosity !== 'quiet') process.stdout.write(`${lines.join('\n')}\n`);
  throw new RunError(
    'E_ARTIFACTS_DIFFER',
    `the artifacts on disk do not match the products of ${linkPath}: ${result.onlyOnDisk.length} only on disk, ${result.onlyInLink.length} only in the link, ${result.differ.length} with other digests`,
    { context: { file: linkPath } },
  );
}

import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { ioError } from '../errors.js';
import { argoWorkflow } from '../engine/export-argo.js';
import { githubWorkflow } from '../engine/export-github.js';
import { parseStoreUrl } from '../engine/step-command.js';
import { writeFileAtomicSync } from '../io/files.js';
import { loadLayoutSource } from '../pipeline/load.js';
import { createOutput, newProgram, paramsOf, repeatable, usage, verbosityOf } from './common.js';
import { printWarnings } from './layout.js';

interface ExportFlags {
  to: string;
  store: string;
  layoutKey?: string[];
  layoutPath?: string;
  pubkeyDir?: string;
  param: string[];
  intoto: string;
  output?: string;
  force?: boolean;
}

const TARGETS = ['github-actions', 'argo'];

/**
 * `intoto pipeline export LAYOUT --to github-actions|argo --store oci://HOST[:PORT]/REPO
 * --layout-key OWNER.pub... [-o FILE]`: the pipeline as a workflow of that engine, one job per
 * step run, each running `intoto pipeline step` as its functionary, then `intoto pipeline
 * verify`. Written to standard output, or to FILE (never over an existing file without --force).
 * @throws UsageError E_USAGE; the layout's errors (see loadLayoutSource); FormatError E_PARAM;
 *   IoError when FILE cannot be written
 */
export async function pipelineExportMain(argv: string[]): Promise<number> {
  const program = newProgram('intoto pipeline export', 'Write the pipeline as a GitHub Actions or Argo workflow.')
    .argument('<layout>', 'the YAML layout source')
    .requiredOption('--to <engine>', 'github-actions or argo')
    .requiredOption('--store <url>', 'where runs keep their artifacts and links: oci://HOST[:PORT]/REPOSITORY')
    .option('--layout-key <paths...>', "the layout owner's public key(s), as paths where the verification job runs (required)")
    .option('--layout-path <path>', 'the layout\'s path where the jobs run (default: LAYOUT as given; for github-actions, relative to the repository root)')
    .option('--pubkey-dir <dir>', "read functionary NAME's public key from DIR/NAME.pub instead of the path in the YAML")
    .option('--param <KEY=VALUE>', 'a parameter written into every job\'s command (repeatable)', repeatable, [])
    .option('--intoto <program>', 'how the jobs invoke intoto', 'intoto')
    .option('-o, --output <file>', 'write the workflow to FILE instead of standard output')
    .option('-f, --force', 'overwrite FILE if it exists');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<ExportFlags>();
  const [file] = program.args as [string];
  const out = createOutput('intoto pipeline export', verbosityOf(argv));
  if (!TARGETS.includes(opts.to)) usage(`--to must be ${TARGETS.join(' or ')}, not '${opts.to}'`);
  const layoutKeys = opts.layoutKey ?? [];
  if (layoutKeys.length === 0) usage("--layout-key is required: the owner's public key(s) the verification job checks the layout with");
  const layoutPath = opts.layoutPath ?? file;
  if (opts.to === 'github-actions') {
    for (const path of [layoutPath, ...layoutKeys]) {
      if (isAbsolute(path)) usage(`${path}: jobs find files in the repository checkout, so give paths relative to the repository root (--layout-path, --layout-key)`);
    }
  }
  if (opts.output !== undefined && existsSync(opts.output) && opts.force !== true) usage(`${opts.output} exists; give -f to overwrite it`);
  const store = parseStoreUrl(opts.store);
  const params = paramsOf(opts.param);

  const { source, warnings } = loadLayoutSource({ file, ...(opts.pubkeyDir === undefined ? {} : { pubkeyDir: opts.pubkeyDir }) });
  printWarnings(file, warnings, out);
  const options = { source, layoutPath, store, layoutKeys, params, intoto: [opts.intoto] };
  const text = opts.to === 'argo' ? argoWorkflow(options) : githubWorkflow(options);
  if (opts.output === undefined) {
    process.stdout.write(text);
  } else {
    try {
      writeFileAtomicSync(opts.output, text);
    } catch (error) {
      throw ioError(opts.output, error, 'cannot write');
    }
    out.info(`wrote ${opts.output}`);
  }
  return 0;
}

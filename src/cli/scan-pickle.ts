import { DEFAULT_PICKLE_ALLOW, formatPickleFinding, scanPickleFile, type PickleScanResult } from '../ml/pickle.js';
import { asInTotoError, type InTotoError } from '../errors.js';
import { acceptJson, newProgram, reportError, repeatable, usage, verbosityOf, writeJson } from './common.js';

const IMPORT_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/;

/**
 * `intoto scan-pickle FILE... [--allow module.name]... [--json]`: decides, without loading
 * anything, whether each pickle is safe to unpickle: every import it makes must be in the
 * allow-list (plain containers by default; `--allow` adds names, never those that run
 * commands or code). Exit 0 when every file is safe, 1 when one is unsafe, malformed or
 * unreadable (each unreadable file reported, the others still scanned). Meant as an inspection:
 * `run: [intoto, scan-pickle, model.pkl]`.
 * @throws UsageError E_USAGE (a bad --allow)
 */
export async function scanPickleMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = newProgram('intoto scan-pickle', 'Check pickles for imports outside an allow-list, without loading them.')
    .argument('<files...>', 'pickle files (model.pkl, ...)')
    .option('--allow <name>', 'also allow this import (module.name); repeatable', repeatable, [] as string[])
    .option('--json', 'print the results as JSON on standard output');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<{ allow: string[]; json?: boolean }>();
  for (const name of opts.allow) {
    if (!IMPORT_NAME.test(name)) usage(`--allow takes module.name (for example collections.OrderedDict), got ${JSON.stringify(name)}`);
  }
  const allow = new Set([...DEFAULT_PICKLE_ALLOW, ...opts.allow]);
  const quiet = verbosityOf(argv) === 'quiet';
  const results: { file: string; safe: boolean; result: PickleScanResult }[] = [];
  const unreadable: { file: string; error: InTotoError }[] = [];
  for (const file of program.args) {
    try {
      const result = scanPickleFile(file, { allow });
      results.push({ file, safe: result.findings.length === 0, result });
    } catch (thrown) {
      // One unreadable file does not hide the verdict on the others (and --json still lists it).
      unreadable.push({ file, error: asInTotoError(thrown) });
    }
  }
  const safe = unreadable.length === 0 && results.every((r) => r.safe);
  if (opts.json) {
    const json = program.args.map((file) => {
      const bad = unreadable.find((u) => u.file === file);
      if (bad !== undefined) return { file, safe: false, error: { code: bad.error.code, message: bad.error.message } };
      const { safe: ok, result } = results.find((r) => r.file === file) as (typeof results)[number];
      return { file, safe: ok, protocol: result.protocol ?? null, imports: result.globals, findings: result.findings };
    });
    writeJson(json);
    return safe ? 0 : 1;
  }
  for (const { error } of unreadable) reportError('intoto scan-pickle', error, verbosityOf(argv));
  for (const { file, safe: ok, result } of results) {
    const imports = result.globals.length === 0 ? 'no imports' : `imports ${result.globals.join(', ')}`;
    if (ok) {
      if (!quiet) process.stdout.write(`${file}: safe (protocol ${result.protocol ?? '0/1'}, ${imports})\n`);
      continue;
    }
    const first = result.findings[0];
    // A safety finding says more than a malformation that may follow it.
    const shown = result.findings.find((f) => f.kind !== 'malformed') ?? first;
    process.stdout.write(`${file}: UNSAFE: ${shown === undefined ? 'unreadable' : formatPickleFinding(shown)}\n`);
    // The other findings, below the verdict (never the verdict's own again).
    if (!quiet) for (const f of result.findings.filter((f) => f !== shown).slice(0, 20)) process.stdout.write(`  also: ${formatPickleFinding(f)}\n`);
  }
  return safe ? 0 : 1;
}

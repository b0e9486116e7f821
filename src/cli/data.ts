import { checkDvcFile, describeDirChange, describeFinding, hasMismatch, type DataFinding } from '../data/dvc.js';
import { DataError } from '../errors.js';
import { acceptJson, createOutput, newProgram, verbosityOf, writeJson } from './common.js';

/**
 * `intoto data check PATH.dvc|dvc.lock... [--root DIR] [--json]`: recomputes the md5 digests
 * DVC recorded (files, and `.dir` manifests for directories) and lists every mismatch. Exit 0
 * when everything recorded matches, 1 on any mismatch or unreadable file, 2 for bad usage.
 */
export async function dataCheckMain(argv: string[]): Promise<number> {
  acceptJson();
  const program = newProgram('intoto data check', "Recompute DVC's digests of the data a .dvc file or dvc.lock records.")
    .argument('<files...>', '.dvc files or dvc.lock files')
    .option('--root <dir>', 'resolve recorded paths against this directory (default: beside each file, in its stage wdir)')
    .option('--json', 'print the findings as JSON on standard output');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<{ root?: string; json?: boolean }>();
  const out = createOutput('intoto data check', verbosityOf(argv));
  const results: { file: string; findings: DataFinding[] }[] = [];
  for (const file of program.args) results.push({ file, findings: checkDvcFile(file, opts.root === undefined ? {} : { root: opts.root }) });
  const all = results.flatMap((r) => r.findings);
  const failed = hasMismatch(all);
  if (opts.json) {
    const json = results.map(({ file, findings }) => ({
      file,
      findings: findings.map((f) => ({
        kind: f.kind,
        stage: f.entry.stage,
        role: f.entry.role,
        path: f.entry.path,
        recorded: f.entry.md5 ?? null,
        ...(f.kind === 'changed' ? { actual: f.actual, what: f.what, files: f.files } : {}),
        ...(f.kind === 'unchecked' ? { why: f.why } : {}),
      })),
    }));
    writeJson(json);
    return failed ? 1 : 0;
  }
  for (const f of all) {
    if (f.kind === 'ok') {
      out.debug(`${f.entry.stage}: ${f.entry.role} ${f.entry.path}: ok (${f.entry.md5})`);
      continue;
    }
    if (f.kind === 'unchecked') {
      out.warn(describeFinding(f));
      continue;
    }
    process.stdout.write(`${describeFinding(f)}\n`);
    if (f.kind === 'changed') for (const c of f.files) process.stdout.write(`  ${describeDirChange(c)}\n`);
  }
  const checked = all.filter((f) => f.kind !== 'unchecked').length;
  if (failed) {
    const error = new DataError('E_DATA_MISMATCH', `${all.filter((f) => f.kind === 'missing' || f.kind === 'changed').length} of ${checked} recorded entries do not match`);
    process.stderr.write(`intoto data check: error: ${error.message} [${error.code}]\n`);
    return 1;
  }
  out.info(`PASS: ${checked} recorded entr${checked === 1 ? 'y matches' : 'ies match'} (${program.args.join(', ')})`);
  return 0;
}

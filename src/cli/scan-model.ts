import { parse as parseYaml } from 'yaml';
import { InTotoError, UsageError } from '../errors.js';
import { readRegularFileSync } from '../io/files.js';
import { scanModelPaths, type FileScan, type ModelFinding } from '../ml/model-scan.js';
import {
  DEFAULT_POLICY,
  GLOBAL_USES,
  STRICT_POLICY,
  parseAllowedName,
  withAllowed,
  type GlobalUse,
  type ModelPolicy,
  type ParsedName,
} from '../ml/policy.js';
import { acceptJson, newProgram, repeatable, verbosityOf, writeJson } from './common.js';

/**
 * `intoto scan-model PATH... [--policy default|strict|FILE] [--allow MODULE.NAME]... [--json]`
 * (also `intoto scan-pickle`): decides, without loading anything, whether model files are
 * safe to load. PATH is a file or a directory (walked recursively, symbolic links not
 * followed). Exit 0 when every file is safe, 1 when any is unsafe, malformed, of an unknown
 * format or not fully scanned, 2 for bad usage. Meant also as an inspection:
 * `run: [intoto, scan-model, model.pkl]`.
 * @throws UsageError E_USAGE (a bad --policy, --allow or policy file); IoError for a path
 *   that cannot be read
 */
export async function scanModelMain(argv: string[], name = 'scan-model'): Promise<number> {
  acceptJson();
  const program = newProgram(`intoto ${name}`, 'Check model files (pickle, joblib, PyTorch, numpy, safetensors, ONNX, zip) for anything that runs code when loaded, without loading them.')
    .argument('<paths...>', 'model files or directories (scanned recursively)')
    .option('--policy <policy>', 'default|strict|FILE: what real scikit-learn, scipy, numpy, pandas, joblib and PyTorch models import; plain containers and numbers only (strict); or that list plus the names in a YAML FILE', 'default')
    .option('--allow <name>', 'also allow this global (MODULE.NAME, or MODULE:QUAL.NAME for a nested class); repeatable; never-allowed names stay refused', repeatable, [] as string[])
    .option('--json', 'print the results as JSON on standard output');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<{ policy: string; allow: string[]; json?: boolean }>();
  const verbosity = verbosityOf(argv);
  const policy = policyOf(opts.policy, opts.allow);
  const files = scanModelPaths(program.args, { policy });
  if (opts.json) {
    writeJson(jsonReport(files, policy));
  } else {
    for (const file of files) printFile(file, verbosity);
    if (files.length === 0) process.stdout.write('scan-model: no files under the paths given: nothing was scanned, so nothing is vouched for\n');
    else if (files.length !== 1 && verbosity !== 'quiet') process.stdout.write(`${summary(files)}\n`);
  }
  return files.length > 0 && files.every((f) => f.code === undefined) ? 0 : 1;
}

/**
 * The policy `--policy` and `--allow` describe (shared with `intoto pull --scan`).
 * @throws UsageError E_USAGE for a bad name or policy file; IoError for one that cannot be read
 */
export function policyOf(value: string, allow: readonly string[]): ModelPolicy {
  const policy = basePolicy(value);
  return allow.length === 0 ? policy : withAllowed(policy, allow.map((n) => parseAllowedName(n)), `${policy.label} + --allow`);
}

/** The policy `--policy` names. @throws UsageError for a bad policy file */
function basePolicy(value: string): ModelPolicy {
  if (value === 'default') return DEFAULT_POLICY;
  if (value === 'strict') return STRICT_POLICY;
  let text: string;
  try {
    text = readRegularFileSync(value, { maxBytes: 1024 * 1024, what: 'policy file' }).toString('utf8');
  } catch (error) {
    if (error instanceof InTotoError) throw error.withContext('--policy', { file: value });
    throw error;
  }
  return withAllowed(DEFAULT_POLICY, policyFileNames(text, value), `default + ${value}`);
}

/**
 * A policy file: a YAML list, each item `module.Name` (every use) or a map
 * `{name: module.Name, uses: [class, call, value]}`.
 * @throws UsageError E_USAGE naming the item that is wrong
 */
export function policyFileNames(text: string, file: string): ParsedName[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { schema: 'failsafe', uniqueKeys: true, maxAliasCount: 0 });
  } catch (error) {
    throw new UsageError('E_USAGE', `${file}: not valid YAML: ${(error as Error).message.split('\n')[0] ?? ''}`, { context: { file } });
  }
  if (!Array.isArray(doc)) throw new UsageError('E_USAGE', `${file}: a policy file is a YAML list of names (module.Name), not ${typeof doc}`, { context: { file } });
  return doc.map((item: unknown, i) => {
    const where = `${file}: item ${i + 1}`;
    if (typeof item === 'string') return parseAllowedName(item.trim(), undefined, where);
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const map = item as Record<string, unknown>;
      const extra = Object.keys(map).filter((k) => k !== 'name' && k !== 'uses');
      if (extra.length > 0 || typeof map['name'] !== 'string') throw new UsageError('E_USAGE', `${where}: a map takes name and uses only`, { context: { file } });
      const uses = map['uses'] === undefined ? GLOBAL_USES : map['uses'];
      if (!Array.isArray(uses) || uses.length === 0 || !uses.every((u) => (GLOBAL_USES as readonly unknown[]).includes(u))) {
        throw new UsageError('E_USAGE', `${where}: uses is a list of ${GLOBAL_USES.join(', ')}`, { context: { file } });
      }
      return parseAllowedName((map['name'] as string).trim(), new Set(uses as GlobalUse[]), where);
    }
    throw new UsageError('E_USAGE', `${where}: a name or a map of name and uses`, { context: { file } });
  });
}

const VERDICT: Record<NonNullable<FileScan['code']>, string> = {
  E_MODEL_UNSAFE: 'UNSAFE',
  E_MODEL_MALFORMED: 'MALFORMED',
  E_MODEL_FORMAT: 'UNKNOWN FORMAT',
  E_LIMIT: 'NOT FULLY SCANNED',
  E_IO: 'UNREADABLE',
};

/** Where a finding is: `model.pt/archive/data.pkl: offset 81 (REDUCE)`. */
function locate(f: ModelFinding): string {
  const where = f.member === '' ? f.file : `${f.file}/${f.member}`;
  const at = f.offset === undefined ? '' : ` offset ${f.offset}${f.opcode === undefined ? '' : ` (${f.opcode})`}:`;
  return `${where}:${at}`;
}

/** The finding shown first: the most severe code, then the most telling kind. */
function headline(file: FileScan): ModelFinding | undefined {
  const rank = (f: ModelFinding): number =>
    (f.code === file.code ? 100 : 0) + (f.never ? 20 : 0) + (['call', 'instantiate', 'build-global', 'argument', 'external-data'].includes(f.kind) ? 10 : f.kind === 'import' ? 5 : 0);
  let best: ModelFinding | undefined;
  for (const f of file.findings) if (best === undefined || rank(f) > rank(best)) best = f;
  return best;
}

function safeDetail(file: FileScan): string {
  const parts: string[] = [file.format];
  if (file.globals.length > 0) parts.push(`${file.globals.length} global${file.globals.length === 1 ? '' : 's'}, all allowed`);
  else if (['pickle', 'joblib', 'pytorch-zip', 'pytorch-legacy', 'torchscript'].includes(file.format) || file.format.startsWith('joblib')) parts.push('no imports');
  if (file.members.some((m) => m.format === 'storage')) parts.push('tensor data not read');
  else if (file.members.some((m) => m.format === 'array-data')) parts.push('array data not read');
  if (file.format === 'zip' || file.format === 'numpy-npz') parts.push(`${file.members.length} member${file.members.length === 1 ? '' : 's'}`);
  return parts.join(', ');
}

function printFile(file: FileScan, verbosity: string): void {
  if (file.code === undefined) {
    if (verbosity !== 'quiet') process.stdout.write(`${file.file}: safe (${safeDetail(file)})\n`);
    if (verbosity === 'verbose') printDetails(file);
    return;
  }
  const first = headline(file);
  const shown = first === undefined ? 'no reason recorded' : `${locate(first)} ${first.reason}`;
  process.stdout.write(`${file.file}: ${VERDICT[file.code]}: ${shown} [${file.code}]\n`);
  if (verbosity === 'quiet') return;
  const rest = file.findings.filter((f) => f !== first);
  const max = verbosity === 'verbose' ? rest.length : 10;
  for (const f of rest.slice(0, max)) process.stdout.write(`  ${locate(f)} ${f.reason} [${f.code}]\n`);
  if (rest.length > max) process.stdout.write(`  ... ${rest.length - max} more (-v lists them all, --json gives every detail)\n`);
  if (verbosity === 'verbose') printDetails(file);
}

function printDetails(file: FileScan): void {
  for (const m of file.members) process.stdout.write(`  member ${m.name}: ${m.format}, ${m.size} bytes\n`);
  for (const g of file.globals) process.stdout.write(`  global ${g.name} (${g.member || 'file'}): ${g.verdict}${g.allowedUses.length > 0 ? ` as ${g.allowedUses.join(', ')}` : ''}\n`);
  for (const n of file.notes) process.stdout.write(`  note: ${n}\n`);
}

function summary(files: readonly FileScan[]): string {
  const counts = new Map<string, number>();
  for (const f of files) {
    const key = f.code === undefined ? 'safe' : VERDICT[f.code].toLowerCase();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return `scan-model: ${files.length} file${files.length === 1 ? '' : 's'}: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`;
}

function jsonReport(files: readonly FileScan[], policy: ModelPolicy): unknown {
  return {
    policy: policy.label,
    safe: files.length > 0 && files.every((f) => f.code === undefined),
    files: files.map((f) => ({
      file: f.file,
      format: f.format,
      size: f.size,
      safe: f.code === undefined,
      code: f.code ?? null,
      members: f.members,
      globals: f.globals,
      findings: f.findings.map(({ file: _file, ...rest }) => rest),
      notes: f.notes,
    })),
  };
}

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunError, UsageError } from '../errors.js';
import { ensureRecordDatasets, type Dataset } from './datasets.js';
import { compareAlternating, timeCommand, type Comparison, type CommandSpec } from './timing.js';

/**
 * Benchmark of artifact recording against the reference (issue 3, "Benchmark"):
 *   node dist/bench/record.js [DATA_DIR] [--rounds N]
 * Generates (or reuses) the three datasets in DATA_DIR (default: a directory under the system
 * temp dir, kept for the next run), checks once that both sides record the same digests, then
 * times `in-toto-run -n b -k KEY -t ed25519 -p DATASET -x` against a child process running
 * recordArtifacts on the same files, alternately, N rounds (default 5), and prints medians,
 * the ratio and peak RSS.
 */

/** Targets from issue 3: ours / reference. */
const TARGETS: Readonly<Record<string, number>> = { 'one-1GiB': 0.75, 'many-20k': 0.5, 'four-256MiB': 0.45 };
const MAX_RSS_KIB = 150 * 1024;

const CHILD = fileURLToPath(new URL('./record-child.js', import.meta.url));

/** A clean environment for the reference: no IN_TOTO_* and no ~/.in_totorc can change what it records. */
function referenceEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
}

/** Our side of one comparison: a child process running recordArtifacts on the dataset. */
export function oursCommand(dataset: Dataset, extra: readonly string[] = []): CommandSpec {
  return { argv: [process.execPath, CHILD, '--base', dataset.root, ...extra, dataset.name] };
}

/** The reference's side of one comparison; the link goes to `linkDir`, outside the dataset. */
export function referenceCommand(dataset: Dataset, key: string, linkDir: string, home: string): CommandSpec {
  return {
    argv: ['in-toto-run', '-n', 'b', '-k', key, '-t', 'ed25519', '-p', dataset.name, '-d', linkDir, '-x'],
    cwd: dataset.root,
    env: referenceEnv(home),
  };
}

/**
 * Fails unless both sides record the same names and sha256 digests for `dataset`.
 * @throws RunError E_ARTIFACTS_DIFFER, E_COMMAND_FAILED
 */
function checkSameDigests(dataset: Dataset, reference: CommandSpec, linkDir: string): void {
  const printing = oursCommand(dataset, ['--print']);
  const output = execFileSync(printing.argv[0], printing.argv.slice(1), { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ours = new Map(Object.entries((JSON.parse(output) as { digests: Record<string, string> }).digests));
  timeCommand(reference);
  const [linkFile] = readdirSync(linkDir).filter((f) => f.endsWith('.link'));
  const link = JSON.parse(readFileSync(join(linkDir, linkFile!), 'utf8')) as { signed: { products: Record<string, { sha256: string }> } };
  const theirs = new Map(Object.entries(link.signed.products).map(([name, d]) => [name, d.sha256]));
  const names = new Set([...ours.keys(), ...theirs.keys()]);
  for (const name of names) {
    if (ours.get(name) !== theirs.get(name)) {
      throw new RunError('E_ARTIFACTS_DIFFER', `${dataset.name}: ${name} differs from the reference's recording`);
    }
  }
  if (names.size !== dataset.files) {
    throw new RunError('E_ARTIFACTS_DIFFER', `${dataset.name}: recorded ${names.size} files, expected ${dataset.files}`);
  }
}

const fmt = (seconds: number): string => `${seconds.toFixed(3)} s`;
const mib = (kib: number | undefined): string => (kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(0)} MiB`);

/** One line per dataset, with the target and whether it was met. */
export function formatRow(dataset: Dataset, c: Comparison): string {
  const target = TARGETS[dataset.name];
  const met = target === undefined ? '' : c.ratio <= target ? ' (target met)' : ' (TARGET MISSED)';
  const rss = c.oursPeakRssKiB !== undefined && c.oursPeakRssKiB > MAX_RSS_KIB ? ' (RSS OVER 150 MiB)' : '';
  return [
    `${dataset.description}:`,
    `  reference median ${fmt(c.referenceMedian)}, ours median ${fmt(c.oursMedian)}, ratio ${c.ratio.toFixed(2)}${target === undefined ? '' : ` (target <= ${target})`}${met}`,
    `  peak RSS ours ${mib(c.oursPeakRssKiB)}${rss}, reference ${mib(c.referencePeakRssKiB)}`,
    `  CPU (user+sys) median ours ${c.oursCpuMedian?.toFixed(2) ?? 'n/a'} s, reference ${c.referenceCpuMedian?.toFixed(2) ?? 'n/a'} s`,
    `  rounds ours ${c.ours.map((m) => m.seconds.toFixed(3)).join(' ')}; reference ${c.reference.map((m) => m.seconds.toFixed(3)).join(' ')}`,
  ].join('\n');
}

export interface RecordBenchOptions {
  /** Where the datasets live (generated on first use, reused afterwards). */
  readonly dataDir: string;
  readonly rounds: number;
  /** Progress and results, one line at a time. */
  readonly write: (line: string) => void;
}

/**
 * Runs the whole record benchmark and returns each dataset's comparison.
 * @throws RunError E_COMMAND_FAILED when a side fails, E_ARTIFACTS_DIFFER when the two sides
 *   disagree on what they recorded; IoError E_IO when the datasets cannot be written
 */
export function runRecordBench(options: RecordBenchOptions): { dataset: Dataset; comparison: Comparison }[] {
  const work = mkdtempSync(join(tmpdir(), 'intoto-bench-'));
  try {
    const home = join(work, 'home');
    const linkDir = join(work, 'links');
    mkdirSync(home);
    mkdirSync(linkDir);
    const key = join(work, 'key');
    execFileSync('in-toto-keygen', ['-t', 'ed25519', key], { env: referenceEnv(home), stdio: 'pipe' });
    options.write(`datasets in ${options.dataDir} (generated on first use)`);
    const results = [];
    for (const dataset of ensureRecordDatasets(options.dataDir)) {
      const reference = referenceCommand(dataset, key, linkDir, home);
      checkSameDigests(dataset, reference, linkDir);
      const comparison = compareAlternating(() => timeCommand(oursCommand(dataset)), () => timeCommand(reference), options.rounds);
      options.write(formatRow(dataset, comparison));
      results.push({ dataset, comparison });
    }
    return results;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function main(argv: readonly string[]): void {
  let dataDir = join(tmpdir(), 'intoto-bench-data');
  let rounds = 5;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') rounds = Number(argv[++i]);
    else dataDir = argv[i]!;
  }
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new UsageError('E_USAGE', '--rounds must be a positive integer');
  runRecordBench({ dataDir, rounds, write: (line) => process.stdout.write(`${line}\n`) });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2));
}

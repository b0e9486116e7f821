import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { runRecordBench } from './record.js';
import { runSlurmBench } from './slurm.js';
import { runScanBench, SCAN_MAX_SECONDS } from './scan.js';
import { PULL_TARGET, PUSH_TARGET, runRegistryBench } from './registry.js';
import { RUN_MAX_RSS_KIB, RUN_TARGETS, runRunBench } from './run.js';
import type { Comparison } from './timing.js';
import { runVerifyBench, runVerifyMemoryBench, verifyCaseName, VERIFY_MAX_RSS_KIB, VERIFY_MEMORY_ARTIFACTS, VERIFY_TARGET_RATIO } from './verify.js';
import { MODEL_MAX_RSS_KIB, runModelBench } from './model.js';

/**
 * `make bench`: every benchmark against the Python reference, one after the other, then a
 * table on standard output and the same results as Markdown for docs/BENCHMARKS.md:
 *   node dist/bench/main.js [BENCH...] [--rounds N] [--data DIR] [--markdown FILE]
 * BENCH is one of the names in BENCHES (default: all). A benchmark registers itself by adding
 * one entry to BENCHES.
 */

/** One line of the results table. */
export interface BenchRow {
  readonly bench: string;
  readonly case: string;
  readonly comparison: Comparison;
  /** Ours / reference must be at most this. */
  readonly target: number | undefined;
  /** Our peak RSS must be at most this. */
  readonly maxRssKiB: number | undefined;
  /** Ours may take at most this many seconds more than the reference (an overhead target instead of a ratio). */
  readonly maxOverheadSeconds?: number | undefined;
  /** Our median must be at most this many seconds (an absolute target, instead of a ratio). */
  readonly maxSeconds?: number | undefined;
}

/** What every benchmark is given. */
export interface BenchContext {
  readonly dataDir: string;
  readonly rounds: number;
  readonly write: (line: string) => void;
}

/** A registered benchmark. */
export interface Bench {
  readonly name: string;
  readonly title: string;
  readonly run: (context: BenchContext) => BenchRow[];
}

/** Every benchmark `make bench` runs, in order. */
export const BENCHES: readonly Bench[] = [
  {
    name: 'run',
    title: 'intoto-run vs in-toto-run (whole process: hash products, run `true`, sign, write the link)',
    run: (context) =>
      runRunBench(context).map((row) => ({ bench: 'run', case: row.dataset.description, comparison: row.comparison, target: row.target, maxRssKiB: RUN_MAX_RSS_KIB })),
  },
  {
    name: 'record',
    title: 'recording alone (a Node child running recordArtifacts) vs in-toto-run -x',
    run: (context) =>
      runRecordBench(context).map((row) => ({ bench: 'record', case: row.dataset.description, comparison: row.comparison, target: RUN_TARGETS[row.dataset.name], maxRssKiB: RUN_MAX_RSS_KIB })),
  },
  {
    name: 'verify',
    title: 'intoto-verify vs in-toto-verify (3 steps x 50,000 artifacts, MATCH rules; a build of 50,000 sources, MATCH ... IN prefix; ours alone at 1,000,000 per step)',
    run: (context) => [
      { bench: 'verify', case: verifyCaseName('chain', 50_000), comparison: runVerifyBench({ ...context, artifacts: 50_000 }), target: VERIFY_TARGET_RATIO, maxRssKiB: undefined },
      { bench: 'verify', case: verifyCaseName('build', 50_000), comparison: runVerifyBench({ ...context, artifacts: 50_000, shape: 'build' }), target: VERIFY_TARGET_RATIO, maxRssKiB: undefined },
      {
        bench: 'verify',
        case: `${verifyCaseName('chain', VERIFY_MEMORY_ARTIFACTS)} (ours only, peak memory)`,
        comparison: runVerifyMemoryBench({ ...context, artifacts: VERIFY_MEMORY_ARTIFACTS }),
        target: undefined,
        maxRssKiB: VERIFY_MAX_RSS_KIB,
      },
    ],
  },
  {
    name: 'slurm',
    title: 'a pipeline through Slurm (the lab: scripts/slurm-lab.sh) vs the same step commands run back to back here',
    run: (context) =>
      runSlurmBench(context).map((row) => ({ bench: 'slurm', case: row.case, comparison: row.comparison, target: undefined, maxRssKiB: undefined, maxOverheadSeconds: row.maxOverheadSeconds })),
  },
  {
    name: 'model',
    title: 'intoto model sign / verify vs coreutils sha256sum on one thread (the reference column), same files, same run',
    run: (context) =>
      runModelBench(context).map((row) => ({ bench: `model ${row.operation}`, case: row.dataset.description, comparison: row.comparison, target: row.target, maxRssKiB: MODEL_MAX_RSS_KIB })),
  },
  {
    name: 'scan',
    title: 'intoto scan-model on 1 GiB models (whole process) vs a Python peer that only lists the pickle opcodes or reads the header',
    run: (context) =>
      runScanBench(context).map((row) => ({ bench: 'scan', case: row.description, comparison: row.comparison, target: undefined, maxRssKiB: undefined, maxSeconds: SCAN_MAX_SECONDS })),
  },
  {
    name: 'registry',
    title: 'intoto pull (the gate) and intoto push of a 1 GiB model vs curl moving its blobs (reference column: curl)',
    run: (context) => {
      const { pull, push } = runRegistryBench(context);
      return [
        { bench: 'registry', case: 'pull + verify, 4 x 256 MiB', comparison: pull, target: PULL_TARGET, maxRssKiB: undefined },
        { bench: 'registry', case: 'push, 4 x 256 MiB', comparison: push, target: PUSH_TARGET, maxRssKiB: undefined },
      ];
    },
  },
];

const seconds = (s: number): string => `${s.toFixed(3)} s`;
const mib = (kib: number | undefined): string => (kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(0)} MiB`);

function verdict(row: BenchRow): string {
  const c = row.comparison;
  const problems: string[] = [];
  if (row.target !== undefined && !(c.ratio <= row.target)) problems.push('ratio');
  if (row.maxSeconds !== undefined && c.oursMedian > row.maxSeconds) problems.push('time');
  if (row.maxRssKiB !== undefined && c.oursPeakRssKiB !== undefined && c.oursPeakRssKiB > row.maxRssKiB) problems.push('memory');
  if (row.maxOverheadSeconds !== undefined && c.oursMedian - c.referenceMedian > row.maxOverheadSeconds) problems.push('overhead');
  return problems.length === 0 ? 'met' : `MISSED (${problems.join(', ')})`;
}

function cells(row: BenchRow): string[] {
  const c = row.comparison;
  return [
    row.bench,
    row.case,
    Number.isNaN(c.referenceMedian) ? 'not run' : seconds(c.referenceMedian),
    seconds(c.oursMedian),
    Number.isNaN(c.ratio) ? '-' : c.ratio.toFixed(2),
    row.maxSeconds !== undefined ? `<= ${row.maxSeconds} s` : row.target !== undefined ? `<= ${row.target}` : row.maxOverheadSeconds !== undefined ? `<= +${row.maxOverheadSeconds} s` : '-',
    mib(c.oursPeakRssKiB),
    mib(c.referencePeakRssKiB),
    c.oursCpuMedian === undefined ? 'n/a' : `${c.oursCpuMedian.toFixed(2)} / ${c.reference.length === 0 ? '-' : (c.referenceCpuMedian?.toFixed(2) ?? 'n/a')} s`,
    verdict(row),
  ];
}

const HEADER = ['bench', 'case', 'reference median', 'ours median', 'ratio', 'target', 'peak RSS ours', 'peak RSS ref.', 'CPU ours / ref.', 'target'];

/** The results as an aligned plain-text table. */
export function formatTable(rows: readonly BenchRow[]): string {
  const table = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  return table.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** What the numbers were measured on. */
export interface Machine {
  readonly date: string;
  readonly cores: number;
  readonly cpu: string;
  readonly node: string;
  readonly reference: string;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
}

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function referenceVersion(): string {
  const result = spawnSync('in-toto-run', ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : 'not found';
}

/** The results as Markdown, ready for docs/BENCHMARKS.md. */
export function formatMarkdown(rows: readonly BenchRow[], machine: Machine, rounds: number): string {
  const load = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(', ');
  const lines = [
    `Measured ${machine.date} on ${machine.cores} cores (${machine.cpu}), Node ${machine.node}, reference ${machine.reference}.`,
    `Medians of ${rounds} alternating rounds after one warm-up run per side (files in the page cache); whole processes, start-up included.`,
    `Load average (1, 5, 15 min) before: ${load(machine.loadBefore)}; after: ${load(machine.loadAfter)}.`,
    '',
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${cells(row).join(' | ')} |`),
    '',
  ];
  return lines.join('\n');
}

interface Options {
  readonly names: readonly string[];
  readonly rounds: number;
  readonly dataDir: string;
  readonly markdown: string | undefined;
}

function parse(argv: readonly string[]): Options {
  const names: string[] = [];
  let rounds = 5;
  let dataDir = join(tmpdir(), 'intoto-bench-data');
  let markdown: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--rounds') rounds = Number(argv[++i]);
    else if (arg === '--data') dataDir = argv[++i] ?? '';
    else if (arg === '--markdown') markdown = argv[++i];
    else if (BENCHES.some((b) => b.name === arg)) names.push(arg);
    else throw new UsageError('E_USAGE', `unknown argument ${arg} (benchmarks: ${BENCHES.map((b) => b.name).join(', ')})`);
  }
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new UsageError('E_USAGE', '--rounds must be a positive integer');
  if (dataDir === '') throw new UsageError('E_USAGE', '--data needs a directory');
  return { names: names.length === 0 ? BENCHES.map((b) => b.name) : names, rounds, dataDir, markdown };
}

function main(argv: readonly string[]): void {
  const options = parse(argv);
  const write = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const loadBefore = loadavg();
  const rows: BenchRow[] = [];
  for (const bench of BENCHES.filter((b) => options.names.includes(b.name))) {
    write(`== ${bench.name}: ${bench.title}`);
    rows.push(...bench.run({ dataDir: options.dataDir, rounds: options.rounds, write }));
  }
  const machine: Machine = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cores: availableParallelism(),
    cpu: cpuModel(),
    node: process.version,
    reference: referenceVersion(),
    loadBefore,
    loadAfter: loadavg(),
  };
  write('');
  write(formatTable(rows));
  const markdown = formatMarkdown(rows, machine, options.rounds);
  if (options.markdown === undefined) write(`\n${markdown}`);
  else {
    writeFileSync(options.markdown, markdown);
    write(`\nMarkdown written to ${options.markdown}`);
  }
  if (rows.some((row) => verdict(row) !== 'met')) process.exitCode = 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  }
}

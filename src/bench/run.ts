import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunError } from '../errors.js';
import { ensureRecordDatasets, type Dataset } from './datasets.js';
import { compareAlternating, timeCommand, type CommandSpec, type Comparison } from './timing.js';

/**
 * Benchmark of issue 3: the built `intoto-run` against the reference `in-toto-run`, whole
 * processes as a functionary runs them (start-up, hashing the products, running a command,
 * signing, writing the link), alternately on the same files:
 *   intoto-run  -n bench -k KEY -p DATASET -d LINKS -q -- true     (default --sandbox auto)
 *   in-toto-run -n bench -k KEY -t ed25519 -p DATASET -d LINKS -- true
 * Before timing a dataset, both links are checked to be byte-identical (ed25519 signatures
 * are deterministic), so the two sides are known to do the same work.
 */

/** Targets from issue 3 (ours / reference), by dataset name. */
export const RUN_TARGETS: Readonly<Record<string, number>> = { 'one-1GiB': 0.75, 'many-20k': 0.5, 'four-256MiB': 0.45 };
/** Peak resident memory allowed to intoto-run, whatever the dataset. */
export const RUN_MAX_RSS_KIB = 150 * 1024;

const BIN = fileURLToPath(new URL('../bin/intoto-run.js', import.meta.url));

/** A clean environment for both sides: no IN_TOTO_*, no ~/.in_totorc, no secrets. */
function cleanEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
}

/** Our side: the built binary as a user runs it. */
export function oursRunCommand(dataset: Dataset, key: string, linkDir: string, home: string): CommandSpec {
  return {
    argv: [process.execPath, BIN, '-n', 'bench', '-k', key, '-p', dataset.name, '-d', linkDir, '-q', '--', 'true'],
    cwd: dataset.root,
    env: cleanEnv(home),
  };
}

/** The reference's side, with the same files, key and command. */
export function referenceRunCommand(dataset: Dataset, key: string, linkDir: string, home: string): CommandSpec {
  return {
    argv: ['in-toto-run', '-n', 'bench', '-k', key, '-t', 'ed25519', '-p', dataset.name, '-d', linkDir, '--', 'true'],
    cwd: dataset.root,
    env: cleanEnv(home),
  };
}

function onlyLink(dir: string): Buffer {
  const files = readdirSync(dir).filter((f) => f.endsWith('.link'));
  if (files.length !== 1) throw new RunError('E_COMMAND_FAILED', `${dir}: expected one link, found ${files.length}`);
  return readFileSync(join(dir, files[0]!));
}

/**
 * Runs each side once and fails unless their links are the same bytes.
 * @throws RunError E_COMMAND_FAILED (a side failed), E_ARTIFACTS_DIFFER (the links differ)
 */
function checkSameLink(dataset: Dataset, ours: CommandSpec, reference: CommandSpec, oursDir: string, referenceDir: string): void {
  timeCommand(ours);
  timeCommand(reference);
  if (!onlyLink(oursDir).equals(onlyLink(referenceDir))) {
    throw new RunError('E_ARTIFACTS_DIFFER', `${dataset.name}: intoto-run and in-toto-run wrote different links (${oursDir}, ${referenceDir})`);
  }
}

/** One dataset's result. */
export interface RunBenchRow {
  readonly dataset: Dataset;
  readonly comparison: Comparison;
  readonly target: number | undefined;
}

/** Where the datasets are, how many rounds, where progress goes. */
export interface RunBenchOptions {
  /** Where the datasets live (generated on first use, shared with the record benchmark). */
  readonly dataDir: string;
  readonly rounds: number;
  readonly write: (line: string) => void;
}

/**
 * Runs the benchmark on the three datasets and returns their comparisons.
 * @throws RunError E_COMMAND_FAILED when a side fails, E_ARTIFACTS_DIFFER when the links
 *   differ; IoError when the datasets cannot be written
 */
export function runRunBench(options: RunBenchOptions): RunBenchRow[] {
  const work = mkdtempSync(join(tmpdir(), 'intoto-bench-run-'));
  try {
    const home = join(work, 'home');
    const oursDir = join(work, 'ours');
    const referenceDir = join(work, 'reference');
    for (const dir of [home, oursDir, referenceDir]) mkdirSync(dir);
    const key = join(work, 'key');
    execFileSync('in-toto-keygen', ['-t', 'ed25519', key], { env: cleanEnv(home), stdio: 'pipe' });
    options.write(`intoto-run vs in-toto-run: datasets in ${options.dataDir} (generated on first use), ${options.rounds} rounds`);
    const rows: RunBenchRow[] = [];
    for (const dataset of ensureRecordDatasets(options.dataDir)) {
      const ours = oursRunCommand(dataset, key, oursDir, home);
      const reference = referenceRunCommand(dataset, key, referenceDir, home);
      checkSameLink(dataset, ours, reference, oursDir, referenceDir);
      const comparison = compareAlternating(() => timeCommand(ours), () => timeCommand(reference), options.rounds);
      const row = { dataset, comparison, target: RUN_TARGETS[dataset.name] };
      const rounds = (ms: Comparison['ours']): string => ms.map((m) => m.seconds.toFixed(3)).join(' ');
      options.write(`  ${dataset.description}: ours ${comparison.oursMedian.toFixed(3)} s, reference ${comparison.referenceMedian.toFixed(3)} s, ratio ${comparison.ratio.toFixed(2)}`);
      options.write(`    rounds ours ${rounds(comparison.ours)}; reference ${rounds(comparison.reference)}`);
      rows.push(row);
    }
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareAlternating, timeCommand, type Comparison, type CommandSpec } from './timing.js';
import { ensureBuildChain, ensureVerifyChain, type Chain } from './verify-chain.js';

/**
 * Benchmark of final verification against the reference (issues 4 and 18):
 *   node dist/bench/verify.js [DATA_DIR] [--rounds N] [--artifacts N] [--build] [--memory]
 * Generates (or reuses) a supply chain (verify-chain.ts): three steps with N artifacts per
 * step (default 50,000) and MATCH rules between them, or with --build the issue 18 build of N
 * sources into N built files with MATCH ... IN prefix rules; checks that both verifiers pass
 * it, then times `in-toto-verify` and `node dist/bin/intoto-verify.js` on it alternately, N
 * rounds (default 5), and prints medians, the ratio (target: at most 0.1) and peak RSS. With
 * --memory it runs ours only, once, on a chain of N artifacts per step (default 1,000,000),
 * for its peak RSS (target: under 1 GiB).
 */

/** Ours / reference (issue 18: three times faster than the 0.28 and 0.18 it was). */
export const VERIFY_TARGET_RATIO = 0.1;
/** Peak RSS of ours at 1,000,000 artifacts per link (issue 18). */
export const VERIFY_MAX_RSS_KIB = 1024 * 1024;
/** Artifacts per link for the memory case. */
export const VERIFY_MEMORY_ARTIFACTS = 1_000_000;

/** The two chains: issue 4's, and issue 18's build. */
export type VerifyShape = 'chain' | 'build';
const BIN = fileURLToPath(new URL('../bin/intoto-verify.js', import.meta.url));

function cleanEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
}

function args(chain: Chain): string[] {
  return ['-l', chain.layout, '-k', chain.ownerPub, '-t', 'ed25519', '--link-dir', chain.linkDir, '-q'];
}

export function oursCommand(chain: Chain, home: string): CommandSpec {
  return { argv: [process.execPath, BIN, ...args(chain)], cwd: chain.dir, env: cleanEnv(home) };
}

export function referenceCommand(chain: Chain, home: string): CommandSpec {
  return { argv: ['in-toto-verify', ...args(chain)], cwd: chain.dir, env: cleanEnv(home) };
}

const fmt = (seconds: number): string => `${seconds.toFixed(3)} s`;
const mib = (kib: number | undefined): string => (kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(0)} MiB`);

/** What a case is called in the results. */
export function verifyCaseName(shape: VerifyShape, artifacts: number): string {
  const n = artifacts.toLocaleString('en-US');
  return shape === 'build' ? `build: ${n} sources, ${n} built files, MATCH ... IN prefix` : `3 steps x ${n} artifacts`;
}

/** The result lines of one comparison. */
export function formatVerifyResult(shape: VerifyShape, artifacts: number, c: Comparison): string {
  const met = c.ratio <= VERIFY_TARGET_RATIO ? 'target met' : 'TARGET MISSED';
  return [
    `verify, ${verifyCaseName(shape, artifacts)}:`,
    `  reference median ${fmt(c.referenceMedian)}, ours median ${fmt(c.oursMedian)}, ratio ${c.ratio.toFixed(3)} (target <= ${VERIFY_TARGET_RATIO}: ${met})`,
    `  peak RSS ours ${mib(c.oursPeakRssKiB)}, reference ${mib(c.referencePeakRssKiB)}`,
    `  CPU (user+sys) median ours ${c.oursCpuMedian?.toFixed(2) ?? 'n/a'} s, reference ${c.referenceCpuMedian?.toFixed(2) ?? 'n/a'} s` +
      (c.oursCpuMedian !== undefined && c.referenceCpuMedian !== undefined ? `, ratio ${(c.oursCpuMedian / c.referenceCpuMedian).toFixed(3)}` : ''),
    `  rounds ours ${c.ours.map((m) => m.seconds.toFixed(3)).join(' ')}; reference ${c.reference.map((m) => m.seconds.toFixed(3)).join(' ')}`,
  ].join('\n');
}

export interface VerifyBenchOptions {
  readonly dataDir: string;
  readonly rounds: number;
  readonly artifacts: number;
  /** Default 'chain'. */
  readonly shape?: VerifyShape;
  readonly write: (line: string) => void;
}

function chainFor(options: Pick<VerifyBenchOptions, 'dataDir' | 'artifacts' | 'shape'>, home: string): Chain {
  const shape = options.shape ?? 'chain';
  const dir = join(options.dataDir, `verify-${shape}-${options.artifacts}`);
  return shape === 'build' ? ensureBuildChain(dir, options.artifacts, cleanEnv(home)) : ensureVerifyChain(dir, options.artifacts, cleanEnv(home));
}

function homeIn(dataDir: string): string {
  const home = join(dataDir, 'home');
  mkdirSync(home, { recursive: true });
  return home;
}

/**
 * Runs the verify benchmark and returns its comparison.
 * @throws Error when a verifier fails on the chain (timeCommand refuses a non-zero exit)
 */
export function runVerifyBench(options: VerifyBenchOptions): Comparison {
  const home = homeIn(options.dataDir);
  const chain = chainFor(options, home);
  options.write(`verify chain in ${chain.dir} (generated on first use)`);
  const comparison = compareAlternating(
    () => timeCommand(oursCommand(chain, home)),
    () => timeCommand(referenceCommand(chain, home)),
    options.rounds,
  );
  options.write(formatVerifyResult(options.shape ?? 'chain', options.artifacts, comparison));
  return comparison;
}

/**
 * Ours alone, once, on the three-step chain of `artifacts` per step (default 1,000,000): its
 * time and peak RSS, as a Comparison whose reference side was not run (NaN). The reference
 * is left out: at this size it takes minutes a round.
 * @throws Error when our verifier fails on the chain
 */
export function runVerifyMemoryBench(options: Omit<VerifyBenchOptions, 'rounds' | 'shape'>): Comparison {
  const home = homeIn(options.dataDir);
  const chain = chainFor({ ...options, shape: 'chain' }, home);
  options.write(`verify chain in ${chain.dir} (generated on first use: a few minutes, about 600 MB)`);
  const m = timeCommand(oursCommand(chain, home));
  options.write(
    `verify, ${verifyCaseName('chain', options.artifacts)}, ours only: ${fmt(m.seconds)}, peak RSS ${mib(m.maxRssKiB)} (target < ${mib(VERIFY_MAX_RSS_KIB)}), CPU ${m.cpuSeconds?.toFixed(2) ?? 'n/a'} s`,
  );
  return {
    ours: [m],
    reference: [],
    oursMedian: m.seconds,
    referenceMedian: Number.NaN,
    ratio: Number.NaN,
    oursPeakRssKiB: m.maxRssKiB,
    referencePeakRssKiB: undefined,
    oursCpuMedian: m.cpuSeconds,
    referenceCpuMedian: undefined,
  };
}

function main(argv: readonly string[]): void {
  let dataDir = join(tmpdir(), 'intoto-bench-data');
  let rounds = 5;
  let artifacts: number | undefined;
  let shape: VerifyShape = 'chain';
  let memory = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--rounds') rounds = Number(argv[++i]);
    else if (arg === '--artifacts') artifacts = Number(argv[++i]);
    else if (arg === '--build') shape = 'build';
    else if (arg === '--memory') memory = true;
    else if (arg !== undefined) dataDir = arg;
  }
  const n = artifacts ?? (memory ? VERIFY_MEMORY_ARTIFACTS : 50_000);
  if (!Number.isSafeInteger(rounds) || rounds < 1 || !Number.isSafeInteger(n) || n < 1) {
    process.stderr.write('usage: node dist/bench/verify.js [DATA_DIR] [--rounds N] [--artifacts N] [--build] [--memory]\n');
    process.exitCode = 2;
    return;
  }
  const write = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  if (memory) runVerifyMemoryBench({ dataDir, artifacts: n, write });
  else runVerifyBench({ dataDir, rounds, artifacts: n, shape, write });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));

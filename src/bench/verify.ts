import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareAlternating, timeCommand, type Comparison, type CommandSpec } from './timing.js';
import { ensureVerifyChain, type Chain } from './verify-chain.js';

/**
 * Benchmark of final verification against the reference (issue 4, "Benchmark"):
 *   node dist/bench/verify.js [DATA_DIR] [--rounds N] [--artifacts N]
 * Generates (or reuses) a three-step chain with N artifacts per step (default 50,000) and
 * MATCH rules between the steps, checks that both verifiers pass it, then times
 * `in-toto-verify` and `node dist/bin/intoto-verify.js` on it alternately, N rounds (default
 * 5), and prints medians, the ratio (target: at most 0.25) and peak RSS.
 */

export const VERIFY_TARGET_RATIO = 0.25;
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

/** The result lines of one comparison. */
export function formatVerifyResult(artifacts: number, c: Comparison): string {
  const met = c.ratio <= VERIFY_TARGET_RATIO ? 'target met' : 'TARGET MISSED';
  return [
    `verify, 3 steps x ${artifacts} artifacts with MATCH rules:`,
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
  readonly write: (line: string) => void;
}

/**
 * Runs the verify benchmark and returns its comparison.
 * @throws Error when a verifier fails on the chain (timeCommand refuses a non-zero exit)
 */
export function runVerifyBench(options: VerifyBenchOptions): Comparison {
  const dir = join(options.dataDir, `verify-chain-${options.artifacts}`);
  const home = join(options.dataDir, 'home');
  mkdirSync(home, { recursive: true });
  const chain = ensureVerifyChain(dir, options.artifacts, cleanEnv(home));
  options.write(`verify chain in ${dir} (generated on first use)`);
  const comparison = compareAlternating(
    () => timeCommand(oursCommand(chain, home)),
    () => timeCommand(referenceCommand(chain, home)),
    options.rounds,
  );
  options.write(formatVerifyResult(options.artifacts, comparison));
  return comparison;
}

function main(argv: readonly string[]): void {
  let dataDir = join(tmpdir(), 'intoto-bench-data');
  let rounds = 5;
  let artifacts = 50_000;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--rounds') rounds = Number(argv[++i]);
    else if (arg === '--artifacts') artifacts = Number(argv[++i]);
    else if (arg !== undefined) dataDir = arg;
  }
  if (!Number.isSafeInteger(rounds) || rounds < 1 || !Number.isSafeInteger(artifacts) || artifacts < 1) {
    process.stderr.write('usage: node dist/bench/verify.js [DATA_DIR] [--rounds N] [--artifacts N]\n');
    process.exitCode = 2;
    return;
  }
  runVerifyBench({ dataDir, rounds, artifacts, write: (line) => process.stdout.write(`${line}\n`) });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));

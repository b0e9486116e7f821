import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDataset, RECORD_DATASETS, type Dataset } from './datasets.js';
import { compareAlternating, timeCommand, type CommandSpec, type Comparison } from './timing.js';

/**
 * Benchmark of issue 14: `intoto model sign` and `intoto model verify` (whole processes, as a
 * user runs them) against coreutils `sha256sum` hashing the same files on one thread, in the
 * same run, alternately:
 *   intoto model sign   DATASET -k P-256.pem -o SIG
 *   intoto model verify DATASET -k P-256.pub.pem --signature SIG
 *   sha256sum FILE...                                (the dataset's files, relative paths)
 * The signature is written outside the dataset, so every run signs the same files.
 */

/** Targets from issue 14 (ours / sha256sum), by dataset name. */
export const MODEL_TARGETS: Readonly<Record<string, number>> = { 'four-256MiB': 0.55, 'many-20k': 0.5 };
/** Peak resident memory allowed to intoto model sign and verify. */
export const MODEL_MAX_RSS_KIB = 150 * 1024;

const BIN = fileURLToPath(new URL('../bin/intoto.js', import.meta.url));

export interface ModelBenchRow {
  readonly dataset: Dataset;
  readonly operation: 'sign' | 'verify';
  readonly comparison: Comparison;
  readonly target: number | undefined;
}

function filesOf(dir: string, base: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesOf(path, base) : [relative(base, path)];
  });
}

/**
 * Runs sign and verify on the four-256MiB and many-20k datasets.
 * @throws RunError E_COMMAND_FAILED when a side fails; IoError when the datasets cannot be written
 */
export function runModelBench(options: { readonly dataDir: string; readonly rounds: number; readonly write: (line: string) => void }): ModelBenchRow[] {
  const work = mkdtempSync(join(tmpdir(), 'intoto-bench-model-'));
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const key = join(work, 'key.pem');
    const pub = join(work, 'key.pub.pem');
    writeFileSync(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: work, LANG: 'C.UTF-8' };
    const rows: ModelBenchRow[] = [];
    options.write(`intoto model sign/verify vs sha256sum (one thread): datasets in ${options.dataDir}, ${options.rounds} rounds`);
    for (const shape of RECORD_DATASETS.filter((s) => MODEL_TARGETS[s.name] !== undefined)) {
      const dataset = ensureDataset(options.dataDir, shape);
      const dir = join(dataset.root, dataset.name);
      const signature = join(work, `${dataset.name}.sig`);
      const files = filesOf(dir, dir).sort();
      const reference: CommandSpec = { argv: ['sha256sum', ...files] as [string, ...string[]], cwd: dir, env };
      const sign: CommandSpec = { argv: [process.execPath, BIN, 'model', 'sign', dir, '-k', key, '-o', signature, '-q'], env };
      const verify: CommandSpec = { argv: [process.execPath, BIN, 'model', 'verify', dir, '-k', pub, '--signature', signature, '-q'], env };
      for (const [operation, ours] of [['sign', sign], ['verify', verify]] as const) {
        const comparison = compareAlternating(() => timeCommand(ours), () => timeCommand(reference), options.rounds);
        const rounds = (ms: Comparison['ours']): string => ms.map((m) => m.seconds.toFixed(3)).join(' ');
        options.write(`  ${operation} ${dataset.description}: ours ${comparison.oursMedian.toFixed(3)} s, sha256sum ${comparison.referenceMedian.toFixed(3)} s, ratio ${comparison.ratio.toFixed(2)}`);
        options.write(`    rounds ours ${rounds(comparison.ours)}; sha256sum ${rounds(comparison.reference)}`);
        rows.push({ dataset, operation, comparison, target: MODEL_TARGETS[dataset.name] });
      }
    }
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { REPO } from './python.js';

/**
 * The model corpus (test/ml/corpus/make_corpus.py), made at test time by the real Debian
 * libraries under /usr/bin/python3 (not the pyenv python3 that may be first on PATH). It is
 * cached in .cache/model-corpus/<hash of the script> (gitignored), generated into a temporary
 * directory and renamed into place, so test files running in parallel share one copy.
 */

export const DEBIAN_PYTHON = '/usr/bin/python3';
const SCRIPT = join(REPO, 'test', 'ml', 'corpus', 'make_corpus.py');
export const LOADER = join(REPO, 'test', 'ml', 'corpus', 'load_model.py');

export interface CorpusEntry {
  readonly path: string;
  readonly kind: 'honest' | 'malicious';
  readonly code: string | null;
  readonly load: string | null;
  readonly marker: string | null;
  readonly why: string;
}

export interface Corpus {
  readonly dir: string;
  readonly files: readonly CorpusEntry[];
  readonly versions: Readonly<Record<string, string>>;
}

/** True when Debian's python3 has the ML libraries; under CI=true their absence is an error. */
export function mlPythonAvailable(): boolean {
  const ok = existsSync(DEBIAN_PYTHON) && spawnSync(DEBIAN_PYTHON, ['-c', 'import sklearn, joblib, pandas, torch, onnx'], { encoding: 'utf8' }).status === 0;
  if (!ok && process.env['CI'] === 'true') {
    throw new Error('CI=true but /usr/bin/python3 lacks python3-sklearn, -joblib, -pandas, -torch or -onnx (scripts/install-deps.sh installs them)');
  }
  return ok;
}

/**
 * Runs a command without blocking the test worker (a long spawnSync starves vitest's RPC with
 * the main process); resolves with its status and output.
 */
export function runAsync(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

let cached: Corpus | undefined;

/** The corpus, once prepared by {@link prepareCorpus}. @throws Error if it was not */
export function corpus(): Corpus {
  if (cached === undefined) throw new Error('corpus() before prepareCorpus() finished');
  return cached;
}

/** Generates the corpus once per version of the script (cached). @throws Error if generation fails */
export async function prepareCorpus(): Promise<Corpus> {
  if (cached !== undefined) return cached;
  const key = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex').slice(0, 16);
  const dir = join(REPO, '.cache', 'model-corpus', key);
  const manifest = join(dir, 'manifest.json');
  if (!existsSync(manifest)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(join(REPO, '.cache', 'model-corpus'), { recursive: true });
    const run = await runAsync(DEBIAN_PYTHON, [SCRIPT, tmp], { env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: process.env['HOME'] ?? '/tmp' } });
    if (run.status !== 0) throw new Error(`make_corpus.py failed: ${run.stderr.slice(-2000)}`);
    try {
      renameSync(tmp, dir);
    } catch {
      // Another test file generated it first: use theirs.
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { files: CorpusEntry[]; versions: Record<string, string> };
  cached = { dir, files: parsed.files, versions: parsed.versions };
  return cached;
}

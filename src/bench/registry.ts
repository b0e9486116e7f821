import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunError } from '../errors.js';
import { compareAlternating, timeCommand, type CommandSpec, type Comparison } from './timing.js';

/**
 * Benchmark of issue 15: `intoto pull` (the whole gate: resolve, download and hash every blob
 * while it streams, fetch the signature, verify it over the files, one rename) and `intoto
 * push` (upload the blobs, each hashed on the way and checked against the signature, the
 * manifest and the signature) of a 1 GiB model (four 256 MiB shards and a config), signed with
 * `intoto model sign`, against `curl` moving the same blobs to and from the same registry:
 *   pull: curl -o F1 URL1 -o F2 URL2 ...               (the blobs only, digests unchecked)
 *   push: per blob, curl -X POST (upload location) then curl -X PUT -T FILE ...?digest=D
 * The registry is Debian's docker-registry on loopback, started by scripts/registry.sh. Every
 * push round goes to a new repository, so that every blob is really sent. Ours moves several
 * blobs at a time (pull four, push three; docker's own client pulls three and pushes five at a
 * time); curl one after another.
 */

export const PULL_TARGET = 1.3;
export const PUSH_TARGET = 1.3;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'dist', 'bin', 'intoto.js');
const SCRIPT = join(ROOT, 'scripts', 'registry.sh');
const SHARD_BYTES = 256 * 1024 * 1024;
const SHARDS = 4;

export interface RegistryBenchResult {
  readonly pull: Comparison;
  readonly push: Comparison;
}

/** A 1 GiB model of random bytes (nothing compresses or dedupes), made once and kept in the data directory. */
function ensureModel(dataDir: string): string {
  const dir = join(dataDir, 'registry-model-1GiB');
  const done = join(dataDir, 'registry-model-1GiB.done');
  if (existsSync(done)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const chunk = Buffer.alloc(64 << 20);
  for (let shard = 1; shard <= SHARDS; shard++) {
    const file = join(dir, `model-0000${shard}-of-0000${SHARDS}.safetensors`);
    for (let written = 0; written < SHARD_BYTES; written += chunk.length) writeFileSync(file, randomFillSync(chunk), { flag: 'a' });
  }
  writeFileSync(join(dir, 'config.json'), '{"architectures": ["Bench"], "hidden_size": 4096}\n');
  writeFileSync(done, '');
  return dir;
}

/** The model signed as a user would: `intoto keygen -t ecdsa`, `intoto model sign` (OMS v1.0, key method). */
function signBenchModel(dir: string, out: string, env: NodeJS.ProcessEnv): { bundle: string; publicKey: string } {
  const key = join(out, 'signer');
  const bundle = join(out, 'model.sig');
  execFileSync(process.execPath, [BIN, 'keygen', '-q', '-t', 'ecdsa', key], { env });
  execFileSync(process.execPath, [BIN, 'model', 'sign', '-q', dir, '-k', key, '-o', bundle], { env });
  return { bundle, publicKey: `${key}.pub` };
}

/**
 * Each timed run starts with nothing waiting to be written back: both sides write 1 GiB (the
 * registry's storage on push, the pulled files on pull), and without this the kernel flushes
 * the previous round's gigabyte to disk during the next run, on the same two cores, whichever
 * side that run is. Measured by hand at 2026-12-06 23:05Z (9 alternating rounds): ours 1.11 to
 * 1.28 s with it, against curl's 0.90 to 1.00 s; the bench's medians then varied less than
 * before but still from 1.32 to 1.47 (docs/BENCHMARKS.md).
 */
function syncNow(): void {
  execFileSync('sync');
}

/** `run`, after syncNow. */
function settled(run: () => ReturnType<typeof timeCommand>): () => ReturnType<typeof timeCommand> {
  return () => {
    syncNow();
    return run();
  };
}

function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * Runs both comparisons against a registry it starts and stops.
 * @throws RunError E_COMMAND_FAILED when the registry, a push, a pull or curl fails
 */
export function runRegistryBench(context: { dataDir: string; rounds: number; write: (line: string) => void }): RegistryBenchResult {
  const model = ensureModel(context.dataDir);
  const work = mkdtempSync(join(tmpdir(), 'intoto-bench-registry-'));
  const registryDir = join(work, 'registry');
  let address: string;
  try {
    address = execFileSync('bash', [SCRIPT, 'up', registryDir], { encoding: 'utf8' }).trim();
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    throw new RunError('E_COMMAND_FAILED', `cannot start the registry (scripts/registry.sh): ${(error as Error).message}`);
  }
  try {
    const names = ['config.json', ...Array.from({ length: SHARDS }, (_, i) => `model-0000${i + 1}-of-0000${SHARDS}.safetensors`)];
    const blobs = names.map((name) => ({ name, digest: `sha256:${fileSha256(join(model, name))}` }));
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: work, LANG: 'C.UTF-8' };
    const { bundle, publicKey } = signBenchModel(model, work, env);
    const intoto = (args: string[]): CommandSpec => ({ argv: [process.execPath, BIN, ...args], env });

    // Push: a new repository per run, so every blob is sent.
    let pushes = 0;
    const oursPush = () => timeCommand(intoto(['push', '-q', model, `${address}/bench/push-ours-${++pushes}:v1`, '--signature', bundle]));
    const curlPush = () => {
      const repo = `bench/push-curl-${++pushes}`;
      const script = blobs
        .map(
          (b) =>
            `loc=$(curl -fsS -D - -o /dev/null -X POST http://${address}/v2/${repo}/blobs/uploads/ | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p') && ` +
            `curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T '${join(model, b.name)}' "$loc&digest=${b.digest}"`,
        )
        .join(' && ');
      return timeCommand({ argv: ['bash', '-c', script], env });
    };
    context.write(`  push of ${SHARDS} x 256 MiB + config: intoto push vs curl POST+PUT per blob`);
    const push = compareAlternating(settled(oursPush), settled(curlPush), context.rounds);

    // Pull: the model pushed once, then pulled into a fresh directory each run.
    execFileSync(process.execPath, [BIN, 'push', '-q', model, `${address}/bench/model:v1`, '--signature', bundle], { env });
    let pulls = 0;
    const fresh = (): string => {
      const dir = join(work, `pull-${++pulls}`);
      rmSync(join(work, `pull-${pulls - 1}`), { recursive: true, force: true });
      return dir;
    };
    const oursPull = () => {
      const dir = fresh();
      syncNow();
      return timeCommand(intoto(['pull', '-q', `${address}/bench/model:v1`, '-o', dir, '-k', publicKey]));
    };
    const curlPull = () => {
      const dir = fresh();
      mkdirSync(dir);
      syncNow();
      const args = blobs.flatMap((b) => ['-o', join(dir, b.name), `http://${address}/v2/bench/model/blobs/${b.digest}`]);
      return timeCommand({ argv: ['curl', '-fsS', ...args], env });
    };
    context.write(`  pull of the same: intoto pull (gate, -k) vs curl -o per blob`);
    const pull = compareAlternating(oursPull, curlPull, context.rounds);
    return { pull, push };
  } finally {
    try {
      execFileSync('bash', [SCRIPT, 'down', registryDir]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
}

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Keeps the architecture map in the README true: dependencies point one way,
 * errors <- canonical <- io <- crypto <- model <- runner <- (oms, data) <- verify <- (trace,
 * attest) <- pipeline <- engine <- cli <- bin. oms (model signatures) and data (DVC digests) sit
 * beside verify: they use the runner's hashing pool and nothing of verify; the pipeline may sign
 * models. attest writes SLSA provenance and VSAs from what verify established.
 * Nothing imports cli/ but bin/; verify/ reaches the runner only to run inspections.
 * oci/ (the registry client and ModelPack packing) sits on model/, below everything that runs
 * or verifies, so pipelines can keep artifacts in a registry; gate/ (the pull that only
 * materialises what verifies) sits on verify/, ml/ and oci/. engine/ (pipelines on other
 * machines: Slurm, the exports, and `pipeline step`/`publish`/`verify` over a store) uses oci/
 * for the store and gate/'s checked downloads and all-or-nothing output directories.
 */
const SRC = new URL('../src/', import.meta.url).pathname;

const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  canonical: ['errors'],
  io: ['errors', 'canonical'],
  crypto: ['errors', 'canonical', 'io'],
  model: ['errors', 'canonical', 'io', 'crypto'],
  ml: ['errors', 'canonical', 'io'],
  oci: ['errors', 'canonical', 'io', 'crypto', 'model'],
  runner: ['errors', 'canonical', 'io', 'crypto', 'model'],
  oms: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner'],
  data: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner'],
  verify: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner'],
  trace: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner', 'verify'],
  attest: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner', 'verify'],
  gate: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner', 'verify', 'ml', 'oci', 'oms'],
  pipeline: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner', 'verify', 'attest', 'ml', 'oms', 'oci'],
  engine: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner', 'verify', 'attest', 'pipeline', 'ml', 'oms', 'oci', 'gate'],
  bench: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner', 'verify', 'attest', 'pipeline', 'engine', 'ml', 'oms', 'data', 'trace', 'oci', 'gate'],
  cli: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner', 'verify', 'attest', 'pipeline', 'engine', 'ml', 'oms', 'data', 'trace', 'oci', 'gate'],
  bin: ['errors', 'cli'],
  index: ['errors', 'canonical', 'io', 'crypto', 'model', 'runner', 'verify', 'attest', 'pipeline', 'engine', 'ml', 'oms', 'data', 'trace', 'oci', 'gate'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function layerOf(path: string): string {
  const rel = relative(SRC, path);
  const top = rel.split('/')[0] ?? '';
  return top.replace(/\.(ts|js)$/, '');
}

describe('architecture', () => {
  const edges: { from: string; to: string; file: string }[] = [];
  for (const file of files(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
      const target = resolve(dirname(file), match[1]!);
      edges.push({ from: layerOf(file), to: layerOf(target), file: relative(SRC, file) });
    }
  }

  it('finds the import edges (the test can see what it checks)', () => {
    expect(edges.length).toBeGreaterThan(20);
  });

  it('every module belongs to a known layer', () => {
    const unknown = [...new Set(edges.flatMap((e) => [e.from, e.to]))].filter((l) => !(l in ALLOWED));
    expect(unknown).toEqual([]);
  });

  it('dependencies point one way', () => {
    const bad = edges.filter((e) => e.from !== e.to && !(ALLOWED[e.from] ?? []).includes(e.to)).map((e) => `${e.file}: ${e.from} -> ${e.to}`);
    expect(bad).toEqual([]);
  });

  it('imports of relative modules end in .js', () => {
    const bad: string[] = [];
    for (const file of files(SRC)) {
      for (const match of readFileSync(file, 'utf8').matchAll(/from\s+['"](\.[^'"]+)['"]/g)) {
        if (!match[1]!.endsWith('.js')) bad.push(`${relative(SRC, file)}: ${match[1]}`);
      }
    }
    expect(bad).toEqual([]);
  });
});

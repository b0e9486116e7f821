import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, ftruncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordArtifacts } from '../../src/runner/record.js';
import { compiledRecorder, compiledRecorderDir } from './helpers/compiled.js';
import { makeTemp, removeTemp } from './helpers/trees.js';

/**
 * The multi-threaded path, through a compiled build (see helpers/compiled.ts): same output
 * whatever the number of threads, and memory that does not grow with file size.
 */

let root: string;
beforeAll(() => {
  root = makeTemp('intoto-record-workers-');
});
afterAll(() => removeTemp(root));

type Recorded = ReadonlyMap<string, ReadonlyMap<string, string>>;
const flatten = (map: Recorded): [string, string[]][] => [...map].map(([name, d]) => [name, [...d].map(([a, h]) => `${a}:${h}`)]);

describe('hashing on several threads', () => {
  it('gives the same map, in the same order, on 1, 2 and 4 threads and from the sources', async () => {
    const base = join(root, 'many');
    // More files than the size-planning threshold (workers start at once), plus a few files
    // large enough to take the streaming path, scattered among them.
    for (let d = 0; d < 50; d++) {
      mkdirSync(join(base, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) writeFileSync(join(base, `d${d}`, `f${f}`), `${d}/${f}`);
    }
    for (const d of [3, 27, 49]) writeFileSync(join(base, `d${d}`, 'big.bin'), randomBytes(3 * 1024 * 1024 + 5));
    const compiled = await compiledRecorder();
    const options = { basePath: base, algorithms: ['sha256', 'sha512'] as const };
    const one = flatten(await compiled.recordArtifacts(['.'], { ...options, concurrency: 1 }));
    const two = flatten(await compiled.recordArtifacts(['.'], { ...options, concurrency: 2 }));
    const four = flatten(await compiled.recordArtifacts(['.'], { ...options, concurrency: 4 }));
    const fromSources = flatten(await recordArtifacts(['.'], options));
    expect(one).toHaveLength(5003);
    expect(two).toEqual(one);
    expect(four).toEqual(one);
    expect(fromSources).toEqual(one);
    const pool = (await import(pathToFileURL(join(compiledRecorderDir(), 'runner/hash-pool.js')).href)) as typeof import('../../src/runner/hash-pool.js');
    expect(pool.workersAvailable()).toBe(true);
    expect(pool.workerCount()).toBeGreaterThanOrEqual(1); // the pool really ran workers
  });

  it('never hangs or loses a file when a run ends as workers join (many short runs)', async () => {
    const base = join(root, 'short');
    mkdirSync(base);
    const paths = [0, 1, 2].map((i) => {
      writeFileSync(join(base, `s${i}`), `short ${i}`);
      return join(base, `s${i}`);
    });
    const pool = (await import(pathToFileURL(join(compiledRecorderDir(), 'runner/hash-pool.js')).href)) as typeof import('../../src/runner/hash-pool.js');
    const want = paths.map((_, i) => ({ kind: 'ok', digests: [createHash('sha256').update(`short ${i}`).digest('hex')] }));
    // Each run is over almost at once, so workers join just before or just after it closes.
    for (let round = 0; round < 300; round++) {
      const results = await pool.hashFiles(paths, ['sha256'], { threads: 3 });
      expect(paths.map((_, i) => results.outcome(i))).toEqual(want);
    }
  });

  it('hashes large files on worker threads correctly', async () => {
    const base = join(root, 'large');
    mkdirSync(base);
    const expected: Record<string, string> = {};
    for (let i = 0; i < 4; i++) {
      const data = randomBytes(24 * 1024 * 1024 + i);
      writeFileSync(join(base, `f${i}.bin`), data);
      expected[`f${i}.bin`] = createHash('sha256').update(data).digest('hex');
    }
    const compiled = await compiledRecorder();
    const map = await compiled.recordArtifacts(['.'], { basePath: base, concurrency: 3 });
    expect(Object.fromEntries([...map].map(([name, d]) => [name, d.get('sha256')]))).toEqual(expected);
  });

  it('hashes a 300 MB sparse file with peak memory far below its size', () => {
    const base = join(root, 'sparse');
    mkdirSync(base);
    const size = 300 * 1024 * 1024;
    const fd = openSync(join(base, 'model.bin'), 'w');
    ftruncateSync(fd, size);
    closeSync(fd);
    const zeros = Buffer.alloc(1024 * 1024);
    const hash = createHash('sha256');
    for (let i = 0; i < size / zeros.length; i++) hash.update(zeros);
    const recordUrl = pathToFileURL(join(compiledRecorderDir(), 'runner/record.js')).href;
    const script = `
      const { recordArtifacts } = await import(${JSON.stringify(recordUrl)});
      const map = await recordArtifacts(['model.bin'], { basePath: ${JSON.stringify(base)} });
      process.stdout.write(JSON.stringify({ digest: map.get('model.bin').get('sha256'), maxRssKiB: process.resourceUsage().maxRSS }));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as {
      digest: string;
      maxRssKiB: number;
    };
    expect(out.digest).toBe(hash.digest('hex'));
    expect(out.maxRssKiB).toBeLessThan(150 * 1024);
  });
});

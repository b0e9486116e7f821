import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeTemp } from './trees.js';

/**
 * The recorder compiled to JavaScript in a temporary directory. Under vitest the sources run as
 * TypeScript, where worker threads cannot load `hash-worker.ts`, so the pool hashes on the main
 * thread only; tests of the multi-threaded path (and of memory use in a child process) use this
 * build. Only the recorder's own files are compiled, so work in progress elsewhere in src/
 * cannot break these tests.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
let built: string | undefined;

/** Directory holding the compiled `runner/`, `crypto/`, ... (built once per test file). */
export function compiledRecorderDir(): string {
  if (built !== undefined) return built;
  const dir = makeTemp('intoto-record-build-');
  const config = join(dir, 'tsconfig.json');
  writeFileSync(
    config,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: {
        outDir: join(dir, 'out'),
        rootDir: join(ROOT, 'src'),
        typeRoots: [join(ROOT, 'node_modules/@types')],
        declaration: false,
        sourceMap: false,
      },
      include: [],
      files: [join(ROOT, 'src/runner/record.ts'), join(ROOT, 'src/runner/hash-worker.ts')],
    }),
  );
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', config], { stdio: 'pipe' });
  const out = join(dir, 'out');
  if (!existsSync(join(out, 'runner/hash-worker.js'))) throw new Error('compiling the recorder produced no worker');
  built = out;
  return out;
}

type RecordModule = typeof import('../../../src/runner/record.js');

/** The compiled recorder module (with worker threads available). */
export async function compiledRecorder(): Promise<RecordModule> {
  const url = pathToFileURL(join(compiledRecorderDir(), 'runner/record.js')).href;
  return (await import(url)) as RecordModule;
}

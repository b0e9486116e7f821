import { lstatSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { InTotoError, asInTotoError } from '../errors.js';
import { publicKeyToObject, type PublicKey } from '../crypto/keys.js';
import { loadLinkFile, type LoadedFile } from './link-load.js';
import { unpackFile, type PackedFile } from './link-transfer.js';
import type { LinkRequest, LinkResponse } from './link-worker.js';

/**
 * Loads link files, on worker threads when there is enough to load to pay for starting them.
 * Parsing, canonical encoding and checking a link of 100,000 artifacts takes most of a
 * verification; the links of different steps are independent, so on two cores two of them
 * load at once. The verdict cannot depend on scheduling: results come back in request order,
 * and the caller reports the first failure in that order.
 */

export interface LinkFileRequest {
  readonly file: string;
  readonly candidates: readonly PublicKey[];
}

/** Below this many bytes of link files in one layout, everything loads on the main thread. */
export const PARALLEL_MIN_BYTES = 8 * 1024 * 1024;

const WORKER_URL = new URL('./link-worker.js', import.meta.url);
const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * One result per request, in order: the loaded file or the typed error loading it gave.
 * Never throws.
 */
export async function loadLinkFiles(requests: readonly LinkFileRequest[]): Promise<(LoadedFile | InTotoError)[]> {
  const threads = Math.min(availableParallelism(), requests.length);
  if (FROM_SOURCES || threads < 2 || totalBytes(requests) < PARALLEL_MIN_BYTES) return requests.map(loadInline);
  try {
    return await loadOnWorkers(requests, threads);
  } catch {
    // A worker that cannot start (resource limits): the main thread does the work instead.
    return requests.map(loadInline);
  }
}

function loadInline(request: LinkFileRequest): LoadedFile | InTotoError {
  try {
    return loadLinkFile(request.file, request.candidates);
  } catch (error) {
    return asInTotoError(error);
  }
}

function totalBytes(requests: readonly LinkFileRequest[]): number {
  let total = 0;
  for (const { file } of requests) {
    try {
      total += lstatSync(file).size;
    } catch {
      // absent or unreadable: reported when loaded
    }
  }
  return total;
}

async function loadOnWorkers(requests: readonly LinkFileRequest[], threads: number): Promise<(LoadedFile | InTotoError)[]> {
  const { Worker } = await import('node:worker_threads');
  // Largest first, so that the biggest link does not start last and run alone.
  const order = requests.map((_, i) => i).sort((a, b) => size(requests[b]) - size(requests[a]) || a - b);
  const results = new Array<LoadedFile | InTotoError | undefined>(requests.length);
  let next = 0;
  const workers: Worker[] = [];
  try {
    await Promise.all(
      Array.from({ length: threads }, async () => {
        // As the main thread (bin/intoto-verify.ts): a larger young generation, far less time in GC.
        const worker = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 64 } });
        workers.push(worker);
        for (let k = next++; k < order.length; k = next++) {
          const index = order[k] as number;
          const request = requests[index] as LinkFileRequest;
          const packed = await ask(worker, { id: index, file: request.file, candidates: request.candidates.map(publicKeyToObject) });
          results[index] = unpackFile(packed);
        }
      }),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results.map((r, i) => r ?? loadInline(requests[i] as LinkFileRequest));
}

function ask(worker: Worker, request: LinkRequest): Promise<PackedFile> {
  return new Promise((resolve, reject) => {
    const onMessage = (response: LinkResponse): void => {
      if (response.id !== request.id) return;
      cleanup();
      resolve(response.result);
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`link worker exited with ${code}`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(request);
  });
}

function size(request: LinkFileRequest | undefined): number {
  try {
    return request === undefined ? 0 : lstatSync(request.file).size;
  } catch {
    return 0;
  }
}

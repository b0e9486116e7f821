import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { createHashBuffers, type HashBuffers } from '../crypto/hash-file.js';
import type { RecordableHashAlgorithm } from '../model/artifacts.js';
import {
  DIGEST_BYTES,
  SLOT,
  STATUS,
  closeRun,
  createRunMemory,
  hashClaimed,
  workerFailure,
  type HashProblem,
  type HashRequest,
  type RunMemory,
  type WorkerMessage,
} from './hash-job.js';

/**
 * Hashes a list of files on the main thread plus up to `threads - 1` worker threads.
 *
 * Jobs are claimed from a shared counter (Atomics on a SharedArrayBuffer), so the main thread
 * starts at once and workers join when they have booted (about 50 ms) without anyone waiting
 * for a message to get work. Digests land in shared memory by job index (hash-job.ts), which
 * makes the result independent of which thread hashed what.
 *
 * Ending a run without waiting for a worker that has not booted yet: a worker joins a run with a
 * compare-and-swap on one shared word, and the main thread, when it runs out of jobs, closes the
 * run by setting a bit in that same word and reads how many joined. Both are atomic on one word,
 * so a worker either joined before the close (counted: the main thread waits for its `done`) or
 * finds the run closed and leaves without claiming anything or sending anything.
 *
 * Workers are started lazily (node:worker_threads is imported only then), kept for the next run
 * (materials and then products), and unref'd between runs so they never keep the process alive.
 */

let mainBuffers: HashBuffers | undefined;
const workers: Worker[] = [];
let nextRun = 1;

/** The compiled worker next to this module; absent when running from TypeScript sources (tests). */
const WORKER_URL = new URL('./hash-worker.js', import.meta.url);
const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** True when worker threads can be used (false when this module runs from .ts sources). */
export function workersAvailable(): boolean {
  return !FROM_SOURCES;
}

/** Worker threads currently alive (started by an earlier run and kept for the next). */
export function workerCount(): number {
  return workers.length;
}

interface Run {
  readonly id: number;
  readonly memory: RunMemory;
  readonly problems: Map<number, HashProblem>;
  doneCount: number;
  expected: number | undefined;
  failure: Error | undefined;
  settle: (() => void) | undefined;
}

let current: Run | undefined;

function onMessage(message: WorkerMessage): void {
  const run = current;
  if (run === undefined || message.run !== run.id) return;
  if (message.type === 'problems') {
    message.indices.forEach((index, k) => {
      const problem = message.problems[k];
      if (problem !== undefined) run.problems.set(index, problem);
    });
  } else {
    run.doneCount += 1;
  }
  maybeSettle(run);
}

function onWorkerFailure(worker: Worker, error: Error): void {
  const index = workers.indexOf(worker);
  if (index >= 0) workers.splice(index, 1);
  const run = current;
  if (run === undefined) return;
  run.failure ??= error;
  Atomics.store(run.memory.state, SLOT.abort, 1);
  maybeSettle(run);
}

function maybeSettle(run: Run): void {
  if (run.settle === undefined) return;
  if (run.failure !== undefined || (run.expected !== undefined && run.doneCount >= run.expected)) run.settle();
}

async function ensureWorkers(count: number): Promise<readonly Worker[]> {
  if (workers.length < count) {
    const { Worker } = await import('node:worker_threads');
    while (workers.length < count) {
      const worker = new Worker(WORKER_URL);
      worker.on('message', onMessage);
      worker.on('error', (error) => onWorkerFailure(worker, workerFailure(error.message, error)));
      worker.on('exit', (code) => onWorkerFailure(worker, workerFailure(`exited with status ${code}`)));
      workers.push(worker);
    }
  }
  return workers.slice(0, count);
}

/**
 * Starts `count` worker threads now (by default one per core but the main thread's), for a run
 * that comes later: a worker takes tens of milliseconds to boot, which otherwise delays its
 * first file. intoto-run calls this before it loads the rest of the program, and runStep before
 * the step's command, so the workers are ready when the products are hashed; a second call
 * starts nothing new. They are unref'd (they never keep the process alive); nothing happens
 * when running from .ts sources.
 */
export function prewarmHashWorkers(count: number = availableParallelism() - 1): void {
  if (FROM_SOURCES || count <= 0) return;
  ensureWorkers(count).then(
    (started) => {
      // A run that began meanwhile holds a reference of its own and drops it when it ends.
      if (current === undefined) for (const worker of started) worker.unref();
    },
    () => undefined, // a worker that cannot start is reported by the run that needs it
  );
}

/** How to hash one list of files. */
export interface HashFilesOptions {
  /** Threads to hash on, the main thread included. */
  readonly threads: number;
}

/** What one file's hashing came to: its hex digests in the order of the algorithms, or why not. */
export type HashOutcome = { readonly kind: 'ok'; readonly digests: readonly string[] } | HashProblem;

/**
 * The outcomes of a run, by file index, read from the run's shared memory. A file is either
 * hashed (its digests are there), or has a problem, or was never hashed (the run stopped at an
 * error first).
 */
export class HashResults {
  private readonly bytes: Buffer;

  constructor(
    private readonly memory: RunMemory,
    private readonly algorithms: readonly RecordableHashAlgorithm[],
    private readonly problems_: ReadonlyMap<number, HashProblem>,
    readonly length: number,
  ) {
    this.bytes = Buffer.from(memory.digests.buffer, memory.digests.byteOffset, memory.digests.byteLength);
  }

  /** True when file `index` was hashed. */
  hashed(index: number): boolean {
    return this.memory.status[index] === STATUS.ok;
  }

  /** Every file that had a problem, by index. */
  problems(): IterableIterator<[number, HashProblem]> {
    return this.problems_.entries();
  }

  /** Why file `index` was not hashed, if it had a problem. */
  problem(index: number): HashProblem | undefined {
    return this.problems_.get(index);
  }

  /** Digest `k` (in the order of the algorithms) of a hashed file, as lower-case hex. */
  hex(index: number, k: number): string {
    let offset = index * this.memory.stride;
    for (let j = 0; j < k; j++) offset += DIGEST_BYTES[this.algorithms[j]!];
    return this.bytes.toString('hex', offset, offset + DIGEST_BYTES[this.algorithms[k]!]);
  }

  /** The outcome of file `index` as one value (undefined: never hashed). */
  outcome(index: number): HashOutcome | undefined {
    if (this.hashed(index)) return { kind: 'ok', digests: this.algorithms.map((_, k) => this.hex(index, k)) };
    return this.problem(index);
  }
}

/**
 * Hashes every path; the outcome at index i belongs to `paths[i]`. On the first error no new
 * jobs are started, so later files may be left unhashed (the caller reports the first error).
 * @throws InternalError E_INTERNAL when a worker thread dies
 */
export function hashFiles(
  paths: readonly string[],
  algorithms: readonly RecordableHashAlgorithm[],
  options: HashFilesOptions,
): Promise<HashResults> {
  // One run at a time: workers and the shared state belong to the current run.
  const result = queue.then(() => runOnce(paths, algorithms, options));
  queue = result.then(
    () => undefined,
    () => undefined,
  );
  return result;
}

let queue: Promise<void> = Promise.resolve();

async function runOnce(
  paths: readonly string[],
  algorithms: readonly RecordableHashAlgorithm[],
  options: HashFilesOptions,
): Promise<HashResults> {
  const run: Run = {
    id: nextRun++,
    memory: createRunMemory(paths.length, algorithms),
    problems: new Map(),
    doneCount: 0,
    expected: undefined,
    failure: undefined,
    settle: undefined,
  };
  const wanted = FROM_SOURCES ? 0 : Math.min(options.threads - 1, paths.length - 1);
  const helpers = wanted > 0 ? await ensureWorkers(wanted) : [];
  current = run;
  try {
    const { memory } = run;
    const request: HashRequest = {
      type: 'hash',
      run: run.id,
      paths: helpers.length > 0 ? paths.join('\0') : '',
      algorithms,
      state: memory.state.buffer as SharedArrayBuffer,
      status: memory.status.buffer as SharedArrayBuffer,
      digests: memory.digests.buffer as SharedArrayBuffer,
      cores: availableParallelism(),
    };
    for (const worker of helpers) {
      worker.ref();
      worker.postMessage(request);
    }
    await hashOnMainThread(paths, algorithms, run, request.cores);
    run.expected = closeRun(memory.state);
    await new Promise<void>((resolve) => {
      run.settle = resolve;
      maybeSettle(run);
    });
    if (run.failure !== undefined) throw run.failure;
    return new HashResults(memory, algorithms, run.problems, paths.length);
  } finally {
    current = undefined;
    for (const worker of helpers) worker.unref();
  }
}

function hashOnMainThread(
  paths: readonly string[],
  algorithms: readonly RecordableHashAlgorithm[],
  run: Run,
  cores: number,
): Promise<void> {
  mainBuffers ??= createHashBuffers();
  return hashClaimed(paths, algorithms, mainBuffers, { memory: run.memory, cores }, (index, problem) => run.problems.set(index, problem));
}

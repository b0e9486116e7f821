import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { createHashBuffers, type HashBuffers } from '../crypto/hash-file.js';
import type { RecordableHashAlgorithm } from '../model/artifacts.js';
import {
  SLOT,
  SLOT_COUNT,
  closeRun,
  hashOne,
  workerFailure,
  type HashOutcome,
  type HashRequest,
  type WorkerMessage,
} from './hash-job.js';

/**
 * Hashes a list of files on the main thread plus up to `threads - 1` worker threads.
 *
 * Jobs are claimed from a shared counter (Atomics on a SharedArrayBuffer), so the main thread
 * starts at once and workers join when they have booted (about 50 ms) without anyone waiting
 * for a message to get work. Outcomes land in an array by job index, which makes the result
 * independent of which thread hashed what.
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
  readonly outcomes: (HashOutcome | undefined)[];
  readonly state: Int32Array;
  doneCount: number;
  expected: number | undefined;
  failure: Error | undefined;
  settle: (() => void) | undefined;
}

let current: Run | undefined;

function onMessage(message: WorkerMessage): void {
  const run = current;
  if (run === undefined || message.run !== run.id) return;
  if (message.type === 'results') {
    message.indices.forEach((index, k) => {
      run.outcomes[index] = message.outcomes[k];
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
  Atomics.store(run.state, SLOT.abort, 1);
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

/**
 * Hashes every path; the outcome at index i belongs to `paths[i]`. On the first error no new
 * jobs are started, so later entries may be undefined (the caller reports the first error).
 * @throws InternalError E_INTERNAL when a worker thread dies
 */
export function hashFiles(
  paths: readonly string[],
  algorithms: readonly RecordableHashAlgorithm[],
  options: HashFilesOptions,
): Promise<(HashOutcome | undefined)[]> {
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
): Promise<(HashOutcome | undefined)[]> {
  const run: Run = {
    id: nextRun++,
    outcomes: new Array<HashOutcome | undefined>(paths.length),
    state: new Int32Array(new SharedArrayBuffer(SLOT_COUNT * Int32Array.BYTES_PER_ELEMENT)),
    doneCount: 0,
    expected: undefined,
    failure: undefined,
    settle: undefined,
  };
  const wanted = FROM_SOURCES ? 0 : Math.min(options.threads - 1, paths.length - 1);
  const helpers = wanted > 0 ? await ensureWorkers(wanted) : [];
  current = run;
  try {
    const request: HashRequest = {
      type: 'hash',
      run: run.id,
      paths: paths.join('\0'),
      algorithms,
      state: run.state.buffer as SharedArrayBuffer,
      cores: availableParallelism(),
    };
    for (const worker of helpers) {
      worker.ref();
      worker.postMessage(request);
    }
    await hashOnMainThread(paths, algorithms, run, request.cores);
    run.expected = closeRun(run.state);
    await new Promise<void>((resolve) => {
      run.settle = resolve;
      maybeSettle(run);
    });
    if (run.failure !== undefined) throw run.failure;
    return run.outcomes;
  } finally {
    current = undefined;
    for (const worker of helpers) worker.unref();
  }
}

async function hashOnMainThread(
  paths: readonly string[],
  algorithms: readonly RecordableHashAlgorithm[],
  run: Run,
  cores: number,
): Promise<void> {
  mainBuffers ??= createHashBuffers();
  const { state } = run;
  const place = { state, cores };
  while (Atomics.load(state, SLOT.abort) === 0) {
    const i = Atomics.add(state, SLOT.next, 1);
    if (i >= paths.length) return;
    const pending = hashOne(paths[i]!, algorithms, mainBuffers, place);
    const outcome = pending instanceof Promise ? await pending : pending;
    run.outcomes[i] = outcome;
    if (outcome.kind === 'error') Atomics.store(state, SLOT.abort, 1);
  }
}

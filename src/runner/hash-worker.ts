import { parentPort } from 'node:worker_threads';
import { createHashBuffers } from '../crypto/hash-file.js';
import { SLOT, hashOne, joinRun, type HashOutcome, type HashRequest, type WorkerMessage } from './hash-job.js';

/**
 * Entry point of a hashing worker thread (started by hash-pool.ts). `hash.update` runs on the
 * calling thread, so hashing on more than one core needs more than one thread. The worker
 * claims jobs from the shared counter until none are left, and sends outcomes in batches.
 */

/** Outcomes per message: small enough to stream, large enough not to cost per file. */
const BATCH = 512;

const port = parentPort;
const buffers = createHashBuffers();

async function run(request: HashRequest): Promise<void> {
  const state = new Int32Array(request.state);
  // A run the main thread already finished alone: nothing to claim and no one waiting for us.
  if (!joinRun(state)) return;
  const paths = request.paths.split('\0');
  const place = { state, cores: request.cores };
  let indices: number[] = [];
  let outcomes: HashOutcome[] = [];
  const flush = (): void => {
    if (indices.length === 0) return;
    post({ type: 'results', run: request.run, indices, outcomes });
    indices = [];
    outcomes = [];
  };
  while (Atomics.load(state, SLOT.abort) === 0) {
    const i = Atomics.add(state, SLOT.next, 1);
    if (i >= paths.length) break;
    const pending = hashOne(paths[i]!, request.algorithms, buffers, place);
    const big = pending instanceof Promise;
    const outcome = big ? await pending : pending;
    indices.push(i);
    outcomes.push(outcome);
    if (outcome.kind === 'error') Atomics.store(state, SLOT.abort, 1);
    if (big || indices.length >= BATCH || outcome.kind === 'error') flush();
  }
  flush();
  post({ type: 'done', run: request.run });
}

function post(message: WorkerMessage): void {
  port?.postMessage(message);
}

// Requests are handled one at a time, in order: the pool never overlaps two runs.
let queue: Promise<void> = Promise.resolve();
port?.on('message', (request: HashRequest) => {
  queue = queue.then(() => run(request));
});

import { parentPort } from 'node:worker_threads';
import { createHashBuffers } from '../crypto/hash-file.js';
import { hashClaimed, joinRun, runMemoryOf, type HashProblem, type HashRequest, type WorkerMessage } from './hash-job.js';

/**
 * Entry point of a hashing worker thread (started by hash-pool.ts). `hash.update` runs on the
 * calling thread, so hashing on more than one core needs more than one thread. The worker
 * claims jobs from the shared counter until none are left, writes the digests into the run's
 * shared memory, and sends only the files it could not hash, then `done`.
 */

const port = parentPort;
const buffers = createHashBuffers();

async function run(request: HashRequest): Promise<void> {
  const memory = runMemoryOf(request);
  const { state } = memory;
  // A run the main thread already finished alone: nothing to claim and no one waiting for us.
  if (!joinRun(state)) return;
  const paths = request.paths.split('\0');
  const indices: number[] = [];
  const problems: HashProblem[] = [];
  await hashClaimed(paths, request.algorithms, buffers, { memory, cores: request.cores }, (index, problem) => {
    indices.push(index);
    problems.push(problem);
  });
  if (indices.length > 0) post({ type: 'problems', run: request.run, indices, problems });
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

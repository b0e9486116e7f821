import { closeSync } from 'node:fs';
import {
  SYNC_HASH_MAX_BYTES,
  hashOpenFile,
  hashOpenFileSync,
  openForHashing,
  type HashBuffers,
} from '../crypto/hash-file.js';
import { InTotoError, InternalError, IoError, asInTotoError, type IoCode } from '../errors.js';
import type { RecordableHashAlgorithm } from '../model/artifacts.js';

/**
 * Hashing one file of a recording, the same on the main thread and in a worker, and the shared
 * memory its outcome goes to. Every thread of a run writes the digests of the files it hashed
 * into one SharedArrayBuffer, at the file's index, and marks the file done there: no message
 * and no object per file (with tens of thousands of small files, cloning outcomes from the
 * workers and back cost as much as a fifth of the hashing). Only what is rare crosses as a
 * message: a file that is not regular, an error.
 */

/** Raw digest size in bytes per recordable algorithm. */
export const DIGEST_BYTES: Readonly<Record<RecordableHashAlgorithm, number>> = { sha256: 32, sha512: 64 };

/** A file's state in a run's status array. */
export const STATUS = {
  /** Not hashed (yet, or at all when the run stopped at an error). */
  pending: 0,
  /** Hashed: its digests are in the digest array. */
  ok: 1,
  /** Not hashed, for the reason given in the run's problems. */
  problem: 2,
} as const;

/** Why a file has no digests. Plain data: it crosses a thread boundary. */
export type HashProblem =
  | { readonly kind: 'not-regular'; readonly what: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string; readonly file: string | undefined };

/** The problem as an error to throw: our codes keep their class, anything else is internal. */
export function problemError(problem: Extract<HashProblem, { kind: 'error' }>): InTotoError {
  const context = problem.file === undefined ? {} : { file: problem.file };
  if (problem.code === 'E_IO' || problem.code === 'E_NOT_REGULAR_FILE' || problem.code === 'E_FILE_TOO_LARGE' || problem.code === 'E_LIMIT') {
    return new IoError(problem.code satisfies IoCode, problem.message, { context });
  }
  return new InternalError('E_INTERNAL', problem.message, { context });
}

function failed(error: unknown): HashProblem {
  const e = asInTotoError(error);
  return { kind: 'error', code: e.code, message: e.message, file: e.context.file };
}

/** The memory of one run, shared by all its threads (views over SharedArrayBuffers). */
export interface RunMemory {
  /** The run's counters, indexed by {@link SLOT}. */
  readonly state: Int32Array;
  /** One {@link STATUS} per file. */
  readonly status: Int32Array;
  /** `stride` bytes per file: its digests, in the order of the run's algorithms. */
  readonly digests: Uint8Array;
  readonly stride: number;
}

/** Allocates the shared memory of a run of `files` files. */
export function createRunMemory(files: number, algorithms: readonly RecordableHashAlgorithm[]): RunMemory {
  const stride = digestStride(algorithms);
  return {
    state: new Int32Array(new SharedArrayBuffer(SLOT_COUNT * Int32Array.BYTES_PER_ELEMENT)),
    status: new Int32Array(new SharedArrayBuffer(Math.max(files, 1) * Int32Array.BYTES_PER_ELEMENT)),
    digests: new Uint8Array(new SharedArrayBuffer(Math.max(files * stride, 1))),
    stride,
  };
}

/** The same memory seen from another thread, from the buffers of a {@link HashRequest}. */
export function runMemoryOf(request: HashRequest): RunMemory {
  return {
    state: new Int32Array(request.state),
    status: new Int32Array(request.status),
    digests: new Uint8Array(request.digests),
    stride: digestStride(request.algorithms),
  };
}

function digestStride(algorithms: readonly RecordableHashAlgorithm[]): number {
  return algorithms.reduce((sum, algorithm) => sum + DIGEST_BYTES[algorithm], 0);
}

/** Where a thread hashes: the run's shared memory, and how many cores the process may use. */
export interface HashPlace {
  readonly memory: RunMemory;
  readonly cores: number;
}

function store(place: HashPlace, index: number, digests: readonly Buffer[]): void {
  const { memory } = place;
  let offset = index * memory.stride;
  for (const digest of digests) {
    memory.digests.set(digest, offset);
    offset += digest.length;
  }
  Atomics.store(memory.status, index, STATUS.ok);
}

/**
 * Opens and hashes file `index` of the run, stores its digests in the run's memory, and returns
 * undefined, or the problem when it could not be hashed (the caller records it). Small files
 * are read synchronously and the outcome is returned directly (no promise per file: with tens
 * of thousands of small files that overhead would dominate); larger ones stream and return a
 * promise. A large file is read ahead on another thread only while fewer threads of the run
 * hash large files than there are cores: the read-ahead moves the copy out of the page cache
 * to an idle core, and with no core idle it only competes with the hashing (four 256 MiB files
 * on two cores: 0.70 s with inline reads, 0.85 s with read-ahead; one 1 GiB file: 1.15 s with
 * read-ahead, 1.26 s inline). Never throws.
 */
function hashOne(
  path: string,
  index: number,
  algorithms: readonly RecordableHashAlgorithm[],
  buffers: HashBuffers,
  place: HashPlace,
): HashProblem | undefined | Promise<HashProblem | undefined> {
  let opened;
  try {
    opened = openForHashing(path);
  } catch (error) {
    return failed(error);
  }
  if (opened.kind !== 'file') return { kind: 'not-regular', what: opened.what };
  const { fd, size } = opened;
  if (size <= SYNC_HASH_MAX_BYTES) {
    try {
      store(place, index, hashOpenFileSync(fd, algorithms, buffers.first, size, path));
      return undefined;
    } catch (error) {
      return failed(error);
    } finally {
      closeQuietly(fd);
    }
  }
  const { state } = place.memory;
  const { cores } = place;
  Atomics.add(state, SLOT.largeFiles, 1);
  const done = (): void => {
    Atomics.sub(state, SLOT.largeFiles, 1);
    closeQuietly(fd);
  };
  return hashOpenFile(fd, algorithms, buffers, path, () => Atomics.load(state, SLOT.largeFiles) < cores).then(
    (digests): undefined => {
      done();
      store(place, index, digests);
      return undefined;
    },
    (error: unknown): HashProblem => {
      done();
      return failed(error);
    },
  );
}

/**
 * Claims files of the run from its shared counter and hashes them until none are left or the
 * run is aborted: the loop of the main thread and of every worker. Each file that could not be
 * hashed goes to `onProblem`; an error also aborts the run (no thread claims another file).
 */
export async function hashClaimed(
  paths: readonly string[],
  algorithms: readonly RecordableHashAlgorithm[],
  buffers: HashBuffers,
  place: HashPlace,
  onProblem: (index: number, problem: HashProblem) => void,
): Promise<void> {
  const { state } = place.memory;
  while (Atomics.load(state, SLOT.abort) === 0) {
    const i = Atomics.add(state, SLOT.next, 1);
    if (i >= paths.length) return;
    const pending = hashOne(paths[i]!, i, algorithms, buffers, place);
    const problem = pending instanceof Promise ? await pending : pending;
    if (problem === undefined) continue;
    onProblem(i, problem);
    if (problem.kind === 'error') Atomics.store(state, SLOT.abort, 1);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // A descriptor we opened and only read: a close error cannot change what was hashed.
  }
}

/** Internal error for a worker that died or misbehaved; never a verdict. */
export function workerFailure(message: string, cause?: unknown): InternalError {
  return new InternalError('E_INTERNAL', `hashing worker failed: ${message}`, cause === undefined ? {} : { cause });
}

/**
 * The run's counters. Jobs are handed out through a shared counter so that no thread waits for
 * a message to get its next file; see hash-pool.ts for the protocol.
 */
export const SLOT = {
  /** Index of the next unclaimed job (Atomics.add claims one). */
  next: 0,
  /** Set to 1 on the first error: stop claiming. */
  abort: 1,
  /**
   * Membership in one word: the number of workers that joined the run (each will send `done`),
   * plus {@link CLOSED} once the main thread stops admitting workers. One word, so joining
   * (compare-and-swap) and closing (or) cannot interleave.
   */
  members: 2,
  /** Threads hashing a file larger than one chunk right now (see hashOne). */
  largeFiles: 3,
} as const;
/** Int32 slots in a run's state. */
export const SLOT_COUNT = 4;
/** The bit of SLOT.members that closes a run to workers that have not joined yet. */
export const CLOSED = 1 << 30;

/**
 * A worker's attempt to join a run: true if it joined (and must send `done`), false if the run
 * was already closed (it must not claim jobs, and sends nothing).
 */
export function joinRun(state: Int32Array): boolean {
  for (;;) {
    const members = Atomics.load(state, SLOT.members);
    if ((members & CLOSED) !== 0) return false;
    if (Atomics.compareExchange(state, SLOT.members, members, members + 1) === members) return true;
  }
}

/** Closes a run to late workers; returns how many joined before it closed. */
export function closeRun(state: Int32Array): number {
  return Atomics.or(state, SLOT.members, CLOSED) & ~CLOSED;
}

/** Main thread -> worker: hash the jobs of one run. */
export interface HashRequest {
  readonly type: 'hash';
  readonly run: number;
  /** Paths to open, joined with NUL (cheaper to clone than an array; paths cannot hold NUL). */
  readonly paths: string;
  readonly algorithms: readonly RecordableHashAlgorithm[];
  readonly state: SharedArrayBuffer;
  readonly status: SharedArrayBuffer;
  readonly digests: SharedArrayBuffer;
  /** Cores the process may use (see HashPlace). */
  readonly cores: number;
}

/** Worker -> main thread. */
export type WorkerMessage =
  | { readonly type: 'problems'; readonly run: number; readonly indices: readonly number[]; readonly problems: readonly HashProblem[] }
  | { readonly type: 'done'; readonly run: number };

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
 * Hashing one file of a recording, the same on the main thread and in a worker, and the
 * plain-data form of its outcome (it crosses a thread boundary, so no class instances).
 */

/** What became of one file. Digests are in the order of the requested algorithms. */
export type HashOutcome =
  | { readonly kind: 'ok'; readonly digests: readonly string[] }
  | { readonly kind: 'not-regular'; readonly what: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string; readonly file: string | undefined };

/** The outcome as an error to throw: our codes keep their class, anything else is internal. */
export function outcomeError(outcome: Extract<HashOutcome, { kind: 'error' }>): InTotoError {
  const context = outcome.file === undefined ? {} : { file: outcome.file };
  if (outcome.code === 'E_IO' || outcome.code === 'E_NOT_REGULAR_FILE' || outcome.code === 'E_FILE_TOO_LARGE' || outcome.code === 'E_LIMIT') {
    return new IoError(outcome.code satisfies IoCode, outcome.message, { context });
  }
  return new InternalError('E_INTERNAL', outcome.message, { context });
}

function failed(error: unknown): HashOutcome {
  const e = asInTotoError(error);
  return { kind: 'error', code: e.code, message: e.message, file: e.context.file };
}

/** Where a thread hashes: the run's shared state, and how many cores the process may use. */
export interface HashPlace {
  readonly state: Int32Array;
  readonly cores: number;
}

/**
 * Opens and hashes one file. Small files are read synchronously and the outcome is returned
 * directly (no promise per file: with tens of thousands of small files that overhead would
 * dominate); larger ones stream and return a promise. A large file is read ahead on another
 * thread only while fewer threads of the run hash large files than there are cores: the
 * read-ahead moves the copy out of the page cache to an idle core, and with no core idle it
 * only competes with the hashing (four 256 MiB files on two cores: 0.70 s with inline reads,
 * 0.85 s with read-ahead; one 1 GiB file: 1.15 s with read-ahead, 1.26 s inline). Never throws.
 */
export function hashOne(
  path: string,
  algorithms: readonly RecordableHashAlgorithm[],
  buffers: HashBuffers,
  place: HashPlace,
): HashOutcome | Promise<HashOutcome> {
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
      return { kind: 'ok', digests: hashOpenFileSync(fd, algorithms, buffers.first, size, path) };
    } catch (error) {
      return failed(error);
    } finally {
      closeQuietly(fd);
    }
  }
  const { state, cores } = place;
  Atomics.add(state, SLOT.largeFiles, 1);
  const done = (): void => {
    Atomics.sub(state, SLOT.largeFiles, 1);
    closeQuietly(fd);
  };
  return hashOpenFile(fd, algorithms, buffers, path, () => Atomics.load(state, SLOT.largeFiles) < cores).then(
    (digests): HashOutcome => {
      done();
      return { kind: 'ok', digests };
    },
    (error: unknown): HashOutcome => {
      done();
      return failed(error);
    },
  );
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
 * The wire format between the pool and its workers. Jobs are handed out through a shared
 * counter so that no thread waits for a message to get its next file; see hash-pool.ts for
 * the protocol.
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
/** Int32 slots in a run's shared state. */
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
  /** Cores the process may use (see HashPlace). */
  readonly cores: number;
}

/** Worker -> main thread. */
export type WorkerMessage =
  | { readonly type: 'results'; readonly run: number; readonly indices: readonly number[]; readonly outcomes: readonly HashOutcome[] }
  | { readonly type: 'done'; readonly run: number };

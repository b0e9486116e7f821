import { Worker } from 'node:worker_threads';
import { IoError } from '../errors.js';
import type { BlobSink } from '../oci/client.js';

/**
 * Downloads written and hashed on a worker thread: the main thread only receives (Node's HTTP
 * client) and hands each chunk over by transferring its memory, while the worker hashes it and
 * writes it to its file, so a large pull uses two cores instead of one (SHA-256 alone is about
 * 0.8 s per GiB). Each file is created new (O_EXCL, O_NOFOLLOW, mode 0644); at most 4 MiB per
 * file is in flight between the threads, so memory stays bounded whatever the download's speed.
 */

const MAX_IN_FLIGHT = 4 * 1024 * 1024;

/** The worker, as CommonJS source (no file of its own to find next to a bundled command). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
const files = new Map();
parentPort.on('message', (m) => {
  const f = files.get(m.id);
  try {
    if (m.op === 'open') {
      files.set(m.id, { fd: fs.openSync(m.path, FLAGS, 0o644), hash: createHash('sha256') });
    } else if (f === undefined) {
      return;
    } else if (m.op === 'data') {
      const b = Buffer.from(m.buf, 0, m.length);
      f.hash.update(b);
      for (let o = 0; o < b.length; ) o += fs.writeSync(f.fd, b, o);
      parentPort.postMessage({ op: 'ack', id: m.id, bytes: b.length });
    } else if (m.op === 'end') {
      files.delete(m.id);
      fs.closeSync(f.fd);
      parentPort.postMessage({ op: 'done', id: m.id, digest: 'sha256:' + f.hash.digest('hex') });
    } else if (m.op === 'abort') {
      files.delete(m.id);
      fs.closeSync(f.fd);
    }
  } catch (e) {
    if (f !== undefined) { files.delete(m.id); try { fs.closeSync(f.fd); } catch {} }
    parentPort.postMessage({ op: 'error', id: m.id, message: String((e && e.message) || e), code: e && e.code });
  }
});
`;

interface SinkState {
  readonly path: string;
  inFlight: number;
  error: IoError | undefined;
  wake: (() => void) | undefined;
  done: { resolve: (digest: string) => void; reject: (error: unknown) => void } | undefined;
}

/** One worker thread writing and hashing any number of files. */
export class FileSinkWorker {
  private readonly worker: Worker;
  private readonly sinks = new Map<number, SinkState>();
  private nextId = 1;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.on('message', (message: { op: string; id: number; bytes?: number; digest?: string; message?: string; code?: string }) => this.onMessage(message));
    this.worker.on('error', (error) => {
      for (const state of this.sinks.values()) this.fail(state, new IoError('E_IO', `${state.path}: the writer thread failed: ${error.message}`, { cause: error }));
    });
  }

  /** Stops the worker (pending files are closed with it). */
  async close(): Promise<void> {
    await this.worker.terminate();
  }

  /** A sink writing a new file at `path` (its directory must exist). */
  sink(path: string): BlobSink {
    const id = this.nextId++;
    const state: SinkState = { path, inFlight: 0, error: undefined, wake: undefined, done: undefined };
    this.sinks.set(id, state);
    this.worker.postMessage({ op: 'open', id, path });
    return {
      push: async (chunk) => {
        if (state.error !== undefined) throw state.error;
        // Transfer the chunk's memory when the chunk is all of it (what Node's HTTP client
        // gives for body reads); otherwise a private copy is transferred (never a pooled buffer).
        const owned = chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length && !(chunk.buffer instanceof SharedArrayBuffer) ? chunk : new Uint8Array(chunk);
        const buffer = owned.buffer as ArrayBuffer;
        state.inFlight += owned.length;
        this.worker.postMessage({ op: 'data', id, buf: buffer, length: owned.length }, [buffer]);
        while (state.inFlight > MAX_IN_FLIGHT && state.error === undefined) await new Promise<void>((resolve) => (state.wake = resolve));
        if (state.error !== undefined) throw state.error;
      },
      finish: () =>
        new Promise<string>((resolve, reject) => {
          if (state.error !== undefined) {
            reject(state.error);
            return;
          }
          state.done = { resolve, reject };
          this.worker.postMessage({ op: 'end', id });
        }),
      abort: () => {
        this.sinks.delete(id);
        this.worker.postMessage({ op: 'abort', id });
      },
    };
  }

  private onMessage(message: { op: string; id: number; bytes?: number; digest?: string; message?: string; code?: string }): void {
    const state = this.sinks.get(message.id);
    if (state === undefined) return;
    if (message.op === 'ack') {
      state.inFlight -= message.bytes ?? 0;
      const wake = state.wake;
      state.wake = undefined;
      wake?.();
    } else if (message.op === 'done') {
      this.sinks.delete(message.id);
      state.done?.resolve(message.digest ?? '');
    } else if (message.op === 'error') {
      const errno = message.code === undefined ? '' : ` (${message.code})`;
      this.fail(state, new IoError('E_IO', `${state.path}: cannot write${errno}: ${message.message ?? ''}`, { context: { file: state.path } }));
    }
  }

  private fail(state: SinkState, error: IoError): void {
    state.error ??= error;
    const wake = state.wake;
    state.wake = undefined;
    wake?.();
    state.done?.reject(state.error);
  }
}

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
const BATCH_BYTES = 1024 * 1024;

/** The worker, as CommonJS source (no file of its own to find next to a bundled command). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
const files = new Map();
// Hashing here, writing on the thread pool: each file's writes chained in order.
const write = (fd, bufs, total) => new Promise((resolve, reject) => {
  fs.writev(fd, bufs, null, (e, n) => {
    if (e) return reject(e);
    if (n === total) return resolve();
    const rest = Buffer.concat(bufs).subarray(n);
    const from = (o) => fs.write(fd, rest, o, rest.length - o, null, (e2, k) => (e2 ? reject(e2) : o + k < rest.length ? from(o + k) : resolve()));
    from(0);
  });
});
const fail = (id, f, e) => {
  if (f !== undefined) { files.delete(id); try { fs.closeSync(f.fd); } catch {} }
  parentPort.postMessage({ op: 'error', id, message: String((e && e.message) || e), code: e && e.code });
};
parentPort.on('message', (m) => {
  const f = files.get(m.id);
  try {
    if (m.op === 'open') {
      files.set(m.id, { fd: fs.openSync(m.path, FLAGS, 0o644), hash: createHash('sha256'), chain: Promise.resolve() });
    } else if (f === undefined) {
      return;
    } else if (m.op === 'data') {
      const bufs = m.bufs.map((buf, i) => Buffer.from(buf, 0, m.lengths[i]));
      let total = 0;
      for (const b of bufs) { f.hash.update(b); total += b.length; }
      f.chain = f.chain.then(() => write(f.fd, bufs, total)).then(() => parentPort.postMessage({ op: 'ack', id: m.id, bytes: total }));
      f.chain.catch((e) => { if (files.get(m.id) === f) fail(m.id, f, e); });
    } else if (m.op === 'end') {
      f.chain.then(() => {
        if (files.get(m.id) !== f) return;
        files.delete(m.id);
        fs.closeSync(f.fd);
        parentPort.postMessage({ op: 'done', id: m.id, digest: 'sha256:' + f.hash.digest('hex') });
      }).catch(() => undefined);
    } else if (m.op === 'abort') {
      files.delete(m.id);
      f.chain.finally(() => { try { fs.closeSync(f.fd); } catch {} }).catch(() => undefined);
    }
  } catch (e) {
    fail(m.id, f, e);
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
    // Chunks go over in batches of about 1 MiB: one message per batch, not per 64 KiB.
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    const send = (): void => {
      if (batch.length === 0) return;
      const bufs = batch.map((c) => c.buffer as ArrayBuffer);
      this.worker.postMessage({ op: 'data', id, bufs, lengths: batch.map((c) => c.length) }, bufs);
      state.inFlight += batchBytes;
      batch = [];
      batchBytes = 0;
    };
    return {
      push: async (chunk) => {
        if (state.error !== undefined) throw state.error;
        // Transfer the chunk's memory when the chunk is all of it (what Node's HTTP client
        // gives for body reads); otherwise a private copy is transferred (never a pooled buffer).
        const owned = chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length && !(chunk.buffer instanceof SharedArrayBuffer) ? chunk : new Uint8Array(chunk);
        batch.push(owned);
        batchBytes += owned.length;
        if (batchBytes < BATCH_BYTES) return;
        send();
        while (state.inFlight > MAX_IN_FLIGHT && state.error === undefined) await new Promise<void>((resolve) => (state.wake = resolve));
        if (state.error !== undefined) throw state.error;
      },
      finish: () =>
        new Promise<string>((resolve, reject) => {
          if (state.error !== undefined) {
            reject(state.error);
            return;
          }
          send();
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

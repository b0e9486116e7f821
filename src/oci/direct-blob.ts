import { closeSync, constants, ftruncateSync, openSync, statfsSync, unlinkSync, write, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { RegistryError, ioError } from '../errors.js';
import { giveBackAligned, takeAligned } from './aligned-memory.js';
import { describeNetworkError } from './transport.js';

/**
 * A large blob from a plain-HTTP registry straight into a new file, hashed as it arrives. Why
 * not Node's HTTP client: it reads the socket into a fresh 64 KiB buffer each time, and on a
 * 1 GiB blob those 16,000 new buffers (allocation, first-touch page faults, garbage
 * collection) cost 1.0 to 1.3 s of CPU here, where a socket reading into memory it reuses
 * (`net`'s `onread`) costs 0.25 to 0.35 s: the difference between meeting and missing the
 * pull target on a two-core machine. So this reads the socket into a ring of slots of shared
 * memory; each full slot is hashed by a worker thread (one of two, each download on one; in
 * place: the worker sees the same memory) while it is written at its file position on the
 * thread pool, and is reused once both are done; the socket pauses when the slot it would fill
 * next is still busy (at most 8 MiB in flight per download, whatever its speed). Hashing on the
 * thread that reads would stop the reads for 0.8 s per GiB, and the registry with them:
 * measured, 2.6 to 3.5 s instead of 1.3 s.
 *
 * The file is written unbuffered (O_DIRECT: from the slot to the disk, no copy into the page
 * cache) on a local disk file system that allows it (ext4, XFS, btrfs), from page-aligned
 * memory (aligned-memory.ts); else through the page cache. On a virtual machine whose fresh
 * page-cache pages each cost the host a fault, writing 1 GiB into the page cache took 0.3 to
 * 4 s of system time from one run to the next (dd, 2026-12-06), and pulls took 1.9 to 2.8 s;
 * unbuffered, 1.2 to 1.5 s (docs/BENCHMARKS.md). A pull also leaves the page cache to what the
 * machine was doing, whatever the model's size. The last write is padded to a whole block, and
 * the file cut to the blob's size after it.
 *
 * It only ever takes the simple case: `200` with a `Content-Length` equal to the blob's size, no
 * `Transfer-Encoding`, no `Content-Encoding` but identity, a well-formed head under 64 KiB.
 * Anything else (a redirect, an authentication challenge, an error, a chunked body, no answer)
 * is handed back untouched, before any file exists, for the regular client to deal with under
 * its policies (redirects, credentials, retries, typed errors).
 */

export interface DirectBlobRequest {
  /** An `http:` URL on the registry's own origin. */
  readonly url: URL;
  /** Request headers (credentials for this origin included); no CR or LF in any value. */
  readonly headers: Readonly<Record<string, string>>;
  readonly size: number;
  readonly timeoutMs: number;
  /** The file to create: it must not exist (O_EXCL), never followed through a symlink. */
  readonly path: string;
  /** What the download is, in messages (`blob models/x@sha256:...`). */
  readonly what: string;
  /** Slots in the ring (default 16 of 256 KiB; unbuffered, 4 of 2 MiB); fewer make the socket pause more often (tests). */
  readonly slots?: number;
  /** Write through the page cache even where unbuffered writes are possible (tests). */
  readonly buffered?: boolean;
}

/**
 * Either the SHA-256 of every byte written (`sha256:<hex>`) and whether the file was written
 * unbuffered, or why the regular client must do it.
 */
export type DirectBlobResult = { readonly digest: string; readonly unbuffered: boolean } | { readonly fallback: string };

/**
 * Buffered: slots of 256 KiB, sixteen of them (4 MiB per download). Each slot is written from
 * memory the hashing thread has just read, and a slot that fits in a core's L2 cache (512 KiB
 * there) is copied into the page cache at half the system time of 1 MiB slots (medians of 8
 * alternating 1 GiB pulls: 0.68 s against 1.15 s); smaller ones cost more in messages and
 * system calls.
 */
const SLOT = 256 * 1024;
const SLOTS = 16;
/**
 * Unbuffered (O_DIRECT) writes go from the slot to the disk without a copy into the page cache,
 * so the L2 argument does not hold for them, and fewer, larger slots cost fewer messages, system
 * calls and disk requests: 2 MiB, four of them (8 MiB per download). 1 GiB pulls, 2026-12-06:
 * 256 KiB slots 1.59 to 1.77 s (system 0.7 to 0.9 s), 1 or 2 MiB slots 1.20 to 1.51 s (system
 * 0.34 to 0.51 s), 4 MiB no better.
 */
const DIRECT_SLOT = 2 * 1024 * 1024;
const DIRECT_SLOTS = 4;

/** The hashing thread, as CommonJS source (no file of its own to find beside a bundled command). */
const HASHER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'open') { jobs.set(m.id, { hash: createHash('sha256'), ring: new Uint8Array(m.ring) }); return; }
  const job = jobs.get(m.id);
  if (job === undefined) return;
  if (m.op === 'update') {
    job.hash.update(job.ring.subarray(m.start, m.start + m.length));
    parentPort.postMessage({ op: 'hashed', id: m.id, slot: m.slot });
  } else if (m.op === 'digest') {
    jobs.delete(m.id);
    parentPort.postMessage({ op: 'digest', id: m.id, digest: 'sha256:' + job.hash.digest('hex') });
  } else if (m.op === 'drop') {
    jobs.delete(m.id);
  }
});
`;

type HasherMessage = { op: 'hashed'; id: number; slot: number } | { op: 'digest'; id: number; digest: string };

/**
 * Hashing threads shared by every download of the process, each download on one of them in
 * turn, started on first use; each keeps the process alive only while a hash is open. Two (one
 * on a one-core machine): a pull of four 256 MiB blobs hashes on both cores while the registry
 * sends, at 1.32 s against 1.36 s with one thread (medians of 10 alternating 1 GiB pulls,
 * 2026-12-06; 1.46 s against 1.54 s in another 8); more threads than cores would only take
 * turns.
 */
const HASHING_THREADS = Math.min(2, availableParallelism());

class Hasher {
  private static readonly pool: (Hasher | undefined)[] = [];
  private static turn = 0;
  private readonly worker = new Worker(HASHER_SOURCE, { eval: true });
  private readonly listeners = new Map<number, (message: HasherMessage) => void>();
  private nextId = 1;

  /** The next thread in turn. */
  static get(): Hasher {
    const index = Hasher.turn++ % HASHING_THREADS;
    return (Hasher.pool[index] ??= new Hasher(index));
  }

  /** Starts every thread now. */
  static startAll(): void {
    for (let index = 0; index < HASHING_THREADS; index++) Hasher.pool[index] ??= new Hasher(index);
  }

  private constructor(index: number) {
    this.worker.unref();
    this.worker.on('message', (message: HasherMessage) => this.listeners.get(message.id)?.(message));
    this.worker.on('error', () => {
      Hasher.pool[index] = undefined;
      for (const listener of this.listeners.values()) listener({ op: 'digest', id: 0, digest: '' });
    });
  }

  /** A hash over `ring`; `onMessage` hears when each update is done, and the digest. */
  open(ring: SharedArrayBuffer, onMessage: (message: HasherMessage) => void): { update(slot: number, start: number, length: number): void; digest(): void; drop(): void } {
    const id = this.nextId++;
    const close = (): void => {
      this.listeners.delete(id);
      if (this.listeners.size === 0) this.worker.unref();
    };
    this.listeners.set(id, (message) => {
      if (message.op === 'digest') close();
      onMessage(message);
    });
    this.worker.ref();
    this.worker.postMessage({ op: 'open', id, ring });
    return {
      update: (slot, start, length) => this.worker.postMessage({ op: 'update', id, slot, start, length }),
      digest: () => this.worker.postMessage({ op: 'digest', id }),
      drop: () => {
        close();
        this.worker.postMessage({ op: 'drop', id });
      },
    };
  }
}

/** Unbuffered (O_DIRECT) writes need memory, positions and lengths aligned to the device's block; 4096 covers 512 and 4K. */
const DIRECT_ALIGN = 4096;

/**
 * The file systems written unbuffered: local disk file systems, where O_DIRECT is a plain
 * transfer to the device. Elsewhere it is refused (tmpfs before Linux 6.6), pointless (tmpfs,
 * overlayfs) or slow (NFS and other network file systems send each direct write on its own).
 * statfs(2) magic numbers: ext2/3/4, XFS, btrfs.
 */
const UNBUFFERED_FILE_SYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e]);

/** Whether `dir` is on a file system from UNBUFFERED_FILE_SYSTEMS. */
function localDisk(dir: string): boolean {
  try {
    return UNBUFFERED_FILE_SYSTEMS.has(statfsSync(dir).type);
  } catch {
    return false;
  }
}

/**
 * Creates the file (O_EXCL, O_NOFOLLOW, 0644): unbuffered when `ring` is page-aligned, the
 * directory is on a local disk file system and it takes O_DIRECT, else buffered. Returns the
 * descriptor and whether it is unbuffered. The unbuffered one is tried with one block of zeros
 * at position 0 (later overwritten by the blob's first bytes): where even that is refused, the
 * file is created again, buffered.
 */
function createTarget(path: string, ring: Buffer, aligned: boolean): { fd: number; unbuffered: boolean } {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  if (aligned && constants.O_DIRECT !== undefined && localDisk(dirname(path))) {
    let fd: number | undefined;
    try {
      fd = openSync(path, flags | constants.O_DIRECT, 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, ring.fill(0, 0, DIRECT_ALIGN), 0, DIRECT_ALIGN, 0);
        return { fd, unbuffered: true };
      } catch (error) {
        closeSync(fd);
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
        unlinkSync(path);
      }
    }
  }
  return { fd: openSync(path, flags, 0o644), unbuffered: false };
}

const MAX_HEAD = 64 * 1024;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;

interface Head {
  readonly status: number;
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

/** Parses a response head (status line and header lines, without the blank line); undefined when malformed. */
function parseHead(text: string): Head | undefined {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] ([1-5][0-9]{2})(?: .*)?$/.exec(lines[0] ?? '');
  if (status === null) return undefined;
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const match = HEADER_LINE.exec(line);
    if (match === null) return undefined; // an obsolete folded line, a bare CR, junk
    const name = match[1]!.toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), match[2]!]);
  }
  return { status: Number(status[1]), headers };
}

/** Why the answer is not the simple case, or undefined when it is. */
function notSimple(head: Head, size: number): string | undefined {
  if (head.status !== 200) return `HTTP ${head.status}`;
  const length = head.headers.get('content-length');
  if (length === undefined || length.length !== 1 || !/^[0-9]{1,16}$/.test(length[0]!)) return 'no single Content-Length';
  if (Number(length[0]) !== size) return `Content-Length ${length[0]}, not ${size}`;
  if (head.headers.has('transfer-encoding')) return 'a Transfer-Encoding';
  const encoding = head.headers.get('content-encoding');
  if (encoding !== undefined && !(encoding.length === 1 && encoding[0]!.toLowerCase() === 'identity')) return 'a Content-Encoding';
  return undefined;
}

/** Starts the hashing threads now (each boots in about 30 ms), so that the first downloads do not wait for them. */
export function prepareDirectDownloads(): void {
  Hasher.startAll();
}

/**
 * Downloads one blob as described in the module comment.
 * @throws RegistryError E_BLOB_SIZE (the body broke off, stalled past the timeout, or ran past
 *   the size), E_REGISTRY (no answer at all within the timeout); IoError E_IO when the file
 *   cannot be created or written
 */
export function directBlobToFile(request: DirectBlobRequest): Promise<DirectBlobResult> {
  const { url, size, what } = request;
  for (const value of Object.values(request.headers)) if (/[\r\n]/.test(value)) return Promise.resolve({ fallback: 'a header value with a line break' });
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, ...Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''];

  const bufferedSlots = Math.max(2, request.slots ?? SLOTS);
  const directSlots = Math.max(2, request.slots ?? DIRECT_SLOTS);
  const bufferedBytes = SLOT * bufferedSlots;
  return new Promise<DirectBlobResult>((resolve, reject) => {
    // Page-aligned memory when it can be had, room for either layout (the file system may still
    // refuse unbuffered writes); else ordinary shared memory, for buffered writes only.
    const region = request.buffered === true ? undefined : takeAligned(Math.max(bufferedBytes, DIRECT_SLOT * directSlots));
    const shared = region?.buffer ?? new SharedArrayBuffer(bufferedBytes);
    const ringStart = region?.offset ?? 0;
    const ring = Buffer.from(shared, ringStart, region?.length ?? bufferedBytes);
    // The slots' size and number are settled when the file is created: buffered, or unbuffered.
    let slotBytes = SLOT;
    let slots = bufferedSlots;
    /** Opened O_DIRECT: each write is whole blocks (the last one padded), the file cut to `size` at the end. */
    let unbuffered = false;
    /** Per slot: how many of its two jobs (hash, write) are still running. */
    const busy = new Array<number>(Math.max(bufferedSlots, directSlots)).fill(0);
    let slot = 0;
    let fill = 0;
    let head: Buffer | undefined = Buffer.alloc(0);
    let received = 0;
    let fd: number | undefined;
    let filePosition = 0;
    let writing = 0;
    let hashing = 0;
    let waitingFor: number | undefined;
    let settled = false;
    let digestAsked = false;
    const hasher = Hasher.get().open(shared, (message) => {
      if (message.op === 'hashed') {
        hashing -= 1;
        release(message.slot);
      } else if (message.op === 'digest') {
        if (message.digest === '') finish({ error: new RegistryError('E_BLOB_SIZE', `${what}: the hashing thread failed`) });
        else finish({ result: { digest: message.digest, unbuffered } });
      }
    });

    /** One of a slot's jobs is done: reuse it when both are, and go on when everything is. */
    const release = (index: number): void => {
      busy[index] = busy[index]! - 1;
      if (settled) {
        if (writing === 0) closeAfterWrites();
        return;
      }
      if (busy[index] === 0 && waitingFor === index) {
        waitingFor = undefined;
        socket.resume();
      }
      if (received === size && writing === 0 && hashing === 0 && !digestAsked) {
        digestAsked = true;
        hasher.digest();
      }
    };

    const finish = (outcome: { result: DirectBlobResult } | { error: unknown }): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (!digestAsked || 'error' in outcome) hasher.drop();
      const close = (): void => {
        if (fd !== undefined && unbuffered && 'result' in outcome && 'digest' in outcome.result) {
          try {
            ftruncateSync(fd, size);
          } catch (error) {
            outcome = { error: ioError(request.path, error, 'cannot write') };
          }
        }
        if (fd !== undefined) {
          try {
            closeSync(fd);
          } catch {
            // Already reporting the outcome; a close error changes nothing about it.
          }
          fd = undefined;
        }
        if (region !== undefined) giveBackAligned(region);
        if ('error' in outcome) reject(outcome.error);
        else resolve(outcome.result);
      };
      // Never close the file under a write still on the thread pool.
      if (writing === 0) close();
      else afterWrites = close;
    };
    const closeAfterWrites = (): void => {
      const then = afterWrites;
      afterWrites = undefined;
      then?.();
    };
    let afterWrites: (() => void) | undefined;

    const submit = (index: number, length: number): void => {
      const position = filePosition;
      filePosition += length;
      busy[index] = 2;
      writing += 1;
      hashing += 1;
      const start = index * slotBytes;
      hasher.update(index, ringStart + start, length);
      // Unbuffered writes are whole blocks: the last slot's tail is padded, and cut off at the end.
      const extent = unbuffered ? Math.ceil(length / DIRECT_ALIGN) * DIRECT_ALIGN : length;
      const step = (offset: number): void => {
        write(fd!, ring, start + offset, extent - offset, position + offset, (error, written) => {
          if (error === null && offset + written < extent && written > 0) {
            step(offset + written);
            return;
          }
          writing -= 1;
          if (!settled && (error !== null || written === 0)) finish({ error: ioError(request.path, error ?? new Error('wrote nothing'), 'cannot write') });
          release(index);
        });
      };
      step(0);
    };

    /** `n` body bytes arrived at the current slot's fill point. Returns false to pause the socket. */
    const body = (n: number): boolean => {
      if (received + n > size) {
        finish({ error: new RegistryError('E_BLOB_SIZE', `${what}: the registry sent more than the ${size} bytes the descriptor names`) });
        return false;
      }
      received += n;
      fill += n;
      if (received === size) {
        submit(slot, fill);
        return false;
      }
      if (fill < slotBytes) return true;
      submit(slot, fill);
      slot = (slot + 1) % slots;
      fill = 0;
      if (busy[slot] === 0) return true;
      waitingFor = slot;
      return false;
    };

    const onRead = (nread: number): boolean => {
      if (settled) return false;
      if (head === undefined) return body(nread);
      // The head: gathered aside (it is small), the slot reused until it is complete.
      head = Buffer.concat([head, ring.subarray(fill, fill + nread)]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1 ? head.length > MAX_HEAD : end > MAX_HEAD) {
        finish({ result: { fallback: 'an answer head over 64 KiB' } });
        return false;
      }
      if (end === -1) return true;
      const parsed = parseHead(head.subarray(0, end).toString('latin1'));
      const why = parsed === undefined ? 'a malformed answer head' : notSimple(parsed, size);
      if (why !== undefined) {
        finish({ result: { fallback: why } });
        return false;
      }
      try {
        const opened = createTarget(request.path, ring, region !== undefined);
        fd = opened.fd;
        if (opened.unbuffered) {
          unbuffered = true;
          slotBytes = DIRECT_SLOT;
          slots = directSlots;
        }
      } catch (error) {
        finish({ error: ioError(request.path, error, 'cannot create') });
        return false;
      }
      const rest = head.subarray(end + 4);
      head = undefined;
      slot = 0;
      fill = 0;
      rest.copy(ring, 0);
      if (rest.length > 0) return body(rest.length);
      if (size > 0) return true;
      digestAsked = true; // an empty blob: nothing to read
      hasher.digest();
      return false;
    };

    const socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      onread: { buffer: () => ring.subarray(slot * slotBytes + fill, (slot + 1) * slotBytes), callback: onRead },
    });
    socket.setNoDelay(true);
    socket.setTimeout(request.timeoutMs, () => socket.destroy(Object.assign(new Error(`no data for ${request.timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    socket.on('connect', () => socket.write(lines.join('\r\n')));
    socket.on('error', (error) => {
      // A registry that does not answer within the timeout is not asked again (by the regular client) for as long.
      if (head !== undefined && (error as NodeJS.ErrnoException).code === 'ETIMEDOUT') finish({ error: new RegistryError('E_REGISTRY', `GET ${what}: no answer from ${url.host}: ${describeNetworkError(error)}`, { cause: error }) });
      else if (head !== undefined) finish({ result: { fallback: `no answer (${describeNetworkError(error)})` } });
      else finish({ error: new RegistryError('E_BLOB_SIZE', `${what}: the download broke off after ${received} of ${size} bytes: ${describeNetworkError(error)}`, { cause: error }) });
    });
    socket.on('close', () => {
      if (settled || received === size) return;
      if (head !== undefined) finish({ result: { fallback: 'the connection closed before an answer' } });
      else finish({ error: new RegistryError('E_BLOB_SIZE', `${what}: the download ended after ${received} of ${size} bytes`) });
    });
  });
}

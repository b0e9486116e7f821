import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/oci/client.js';
import { parseRegistryHost } from '../../src/oci/reference.js';
import { codeOfAsync } from '../helpers/errors.js';
import { tempDir } from '../helpers/reference.js';

/**
 * The direct download of a large blob into a file (`fetchBlobToFile`, src/oci/direct-blob.ts):
 * our own reading of an HTTP answer over a plain socket, so every way an answer can differ
 * from the simple case is tried here, from a local server. It must either write exactly the
 * blob and check its digest, fail with a typed error, or hand the request back (false) before
 * creating anything, for the regular client and its policies.
 */

const dir = tempDir('intoto-direct-blob-');
const sha = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const BIG = randomBytes(20 * 1024 * 1024 + 12_345);
const BIG_DIGEST = sha(BIG);

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let http: Server;
let raw: NetServer;
let httpHost: string;
let rawHost: string;
const handler: { current: Handler } = { current: (_req, res) => res.end() };
const rawHandler: { current: (socket: Socket, request: string) => void } = { current: (socket) => socket.end() };
const seen: { url: string; authorization: string | undefined }[] = [];
const rawSockets: Socket[] = [];

beforeAll(async () => {
  http = createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    handler.current(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpHost = `127.0.0.1:${(http.address() as AddressInfo).port}`;
  // A server that writes exactly the bytes a test gives, for answers Node's server would not send.
  raw = createNetServer((socket) => {
    rawSockets.push(socket);
    let request = '';
    socket.on('data', (chunk) => {
      request += chunk.toString('latin1');
      if (request.includes('\r\n\r\n')) rawHandler.current(socket, request);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  rawHost = `127.0.0.1:${(raw.address() as AddressInfo).port}`;
});
afterAll(async () => {
  http.closeAllConnections();
  await new Promise((r) => http.close(r));
  for (const socket of rawSockets) socket.destroy();
  await new Promise((r) => raw.close(r));
});

let files = 0;
const target = (): string => join(dir, `blob-${++files}`);

/**
 * Whether this test's directory takes unbuffered writes: a local disk file system (ext4, XFS,
 * btrfs by statfs magic) that opens with O_DIRECT. Where it does, the direct download must
 * write unbuffered; elsewhere (tmpfs, overlayfs, NFS), buffered.
 */
function takesUnbuffered(dir: string): boolean {
  if (![0xef53, 0x58465342, 0x9123683e].includes(statfsSync(dir).type)) return false;
  const probe = join(dir, 'o-direct-probe');
  try {
    closeSync(openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw error;
  } finally {
    rmSync(probe, { force: true });
  }
}
const WRITTEN = takesUnbuffered(dir) ? 'unbuffered' : 'buffered';

async function direct(
  host: string,
  descriptor: { digest: string; size: number },
  options: ConstructorParameters<typeof RegistryClient>[1] & { slots?: number; buffered?: boolean } = {},
): Promise<{ result: false | 'unbuffered' | 'buffered' | string; path: string }> {
  const { slots, buffered, ...clientOptions } = options;
  const client = new RegistryClient(parseRegistryHost(host), { retryDelayMs: 10, ...clientOptions });
  const path = target();
  try {
    const result = await client.fetchBlobToFile('m', descriptor, path, { ...(slots === undefined ? {} : { slots }), ...(buffered === undefined ? {} : { buffered }) });
    return { result, path };
  } catch (error) {
    const code = await codeOfAsync(Promise.reject(error));
    return { result: code ?? 'no code', path };
  } finally {
    await client.close();
  }
}

const serveBig: Handler = (_req, res) => {
  res.writeHead(200, { 'content-length': String(BIG.length) });
  res.end(BIG);
};

describe('fetchBlobToFile: the simple case', () => {
  // Unbuffered (where the file system allows) and buffered: the same bytes either way. BIG is
  // not a whole number of 4 KiB blocks, so the unbuffered last write is padded and the file cut.
  for (const buffered of [false, true]) {
    const how = buffered ? 'buffered' : WRITTEN;
    it(`writes the blob byte for byte and checks its digest (20 MiB: the ring of slots wraps around), ${how}`, async () => {
      handler.current = serveBig;
      const { result, path } = await direct(httpHost, { digest: BIG_DIGEST, size: BIG.length }, { buffered });
      expect(result).toBe(how);
      expect(statSync(path).size).toBe(BIG.length);
      expect(readFileSync(path).equals(BIG)).toBe(true);
    });

    it(`with a ring of two slots (the socket pauses until a slot is hashed and written), still exact, ${how}`, async () => {
      handler.current = serveBig;
      const { result, path } = await direct(httpHost, { digest: BIG_DIGEST, size: BIG.length }, { slots: 2, buffered });
      expect(result).toBe(how);
      expect(readFileSync(path).equals(BIG)).toBe(true);
    });

    it(`blobs smaller than one block and of exactly one block, ${how}`, async () => {
      for (const bytes of [randomBytes(100), randomBytes(4096)]) {
        handler.current = (_req, res) => {
          res.writeHead(200, { 'content-length': String(bytes.length) });
          res.end(bytes);
        };
        const { result, path } = await direct(httpHost, { digest: sha(bytes), size: bytes.length }, { buffered });
        expect(result).toBe(how);
        expect(readFileSync(path).equals(bytes)).toBe(true);
      }
    });

    it(`four downloads at once, each exact (the aligned memory is shared out and reused), ${how}`, async () => {
      handler.current = serveBig;
      for (let round = 0; round < 2; round++) {
        const all = await Promise.all(Array.from({ length: 4 }, () => direct(httpHost, { digest: BIG_DIGEST, size: BIG.length }, { buffered })));
        for (const { result, path } of all) {
          expect(result).toBe(how);
          expect(readFileSync(path).equals(BIG)).toBe(true);
        }
      }
    });
  }

  it('sends the credentials the client holds for the registry (after a challenge was answered once)', async () => {
    const expected = `Basic ${Buffer.from('u:p').toString('base64')}`;
    handler.current = (req, res) => {
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-length': '0' });
        res.end();
        return;
      }
      serveBig(req, res);
    };
    seen.length = 0;
    const client = new RegistryClient(parseRegistryHost(httpHost), { credentials: { kind: 'basic', username: 'u', password: 'p' } });
    try {
      // No credentials yet: the 401 is handed back, nothing created.
      const first = target();
      expect(await client.fetchBlobToFile('m', { digest: BIG_DIGEST, size: BIG.length }, first)).toBe(false);
      expect(existsSync(first)).toBe(false);
      // The regular client answers the challenge ...
      await client.fetchBlob('m', { digest: BIG_DIGEST, size: BIG.length }, () => undefined);
      // ... and the direct download then carries the same credentials.
      const second = target();
      expect(await client.fetchBlobToFile('m', { digest: BIG_DIGEST, size: BIG.length }, second)).toBe(WRITTEN);
      expect(readFileSync(second).equals(BIG)).toBe(true);
      expect(seen[seen.length - 1]!.authorization).toBe(expected);
    } finally {
      await client.close();
    }
  });

  it('on tmpfs (/dev/shm): buffered, exact (unbuffered only on local disk file systems)', async () => {
    const shm = mkdtempSync('/dev/shm/intoto-direct-');
    try {
      expect(statfsSync(shm).type).toBe(0x01021994); // tmpfs: this machine's /dev/shm, and CI's
      handler.current = serveBig;
      const client = new RegistryClient(parseRegistryHost(httpHost), { retryDelayMs: 10 });
      try {
        const path = join(shm, 'blob');
        expect(await client.fetchBlobToFile('m', { digest: BIG_DIGEST, size: BIG.length }, path)).toBe('buffered');
        expect(readFileSync(path).equals(BIG)).toBe(true);
      } finally {
        await client.close();
      }
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });

  it('an empty blob', async () => {
    handler.current = (_req, res) => {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    };
    const { result, path } = await direct(httpHost, { digest: sha(Buffer.alloc(0)), size: 0 });
    expect(result).toBe(WRITTEN);
    expect(readFileSync(path).length).toBe(0);
  });
});

describe('fetchBlobToFile: typed failures', () => {
  it('wrong bytes for the digest: E_DIGEST_MISMATCH', async () => {
    handler.current = (_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length) });
      res.end(Buffer.concat([BIG.subarray(0, 5_000_000), Buffer.alloc(BIG.length - 5_000_000, 1)]));
    };
    expect((await direct(httpHost, { digest: BIG_DIGEST, size: BIG.length })).result).toBe('E_DIGEST_MISMATCH');
  });

  it('a body cut short: E_BLOB_SIZE', async () => {
    handler.current = (_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length) });
      res.write(BIG.subarray(0, 3_000_000));
      setTimeout(() => res.destroy(), 20);
    };
    expect((await direct(httpHost, { digest: BIG_DIGEST, size: BIG.length })).result).toBe('E_BLOB_SIZE');
  });

  it('more bytes than Content-Length: E_BLOB_SIZE (the extra bytes are never written)', async () => {
    rawHandler.current = (socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG.length}\r\n\r\n`);
      socket.end(Buffer.concat([BIG, Buffer.alloc(1_000_000, 7)]));
    };
    const { result, path } = await direct(rawHost, { digest: BIG_DIGEST, size: BIG.length });
    expect(result).toBe('E_BLOB_SIZE');
    expect(readFileSync(path).length).toBeLessThanOrEqual(BIG.length);
  });

  it('no answer at all within the timeout: E_REGISTRY at once (not handed back to wait as long again)', async () => {
    rawHandler.current = () => undefined; // reads the request, never answers
    const started = Date.now();
    const { result, path } = await direct(rawHost, { digest: BIG_DIGEST, size: BIG.length }, { timeoutMs: 300 });
    expect(result).toBe('E_REGISTRY');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(existsSync(path)).toBe(false);
  });

  it('an empty blob announced, with bytes after the head: E_BLOB_SIZE', async () => {
    rawHandler.current = (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra');
    expect((await direct(rawHost, { digest: sha(Buffer.alloc(0)), size: 0 })).result).toBe('E_BLOB_SIZE');
  });

  it('a body that stalls: E_BLOB_SIZE after the timeout, not a hang', async () => {
    handler.current = (_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length) });
      res.write(BIG.subarray(0, 1_000_000));
    };
    const started = Date.now();
    expect((await direct(httpHost, { digest: BIG_DIGEST, size: BIG.length }, { timeoutMs: 300 })).result).toBe('E_BLOB_SIZE');
    expect(Date.now() - started).toBeLessThan(10_000);
    http.closeAllConnections();
  });
});

describe('fetchBlobToFile: anything but the simple case is handed back before a file exists', () => {
  const answers: readonly [string, Handler][] = [
    ['a redirect', (_req, res) => res.writeHead(307, { location: 'http://127.0.0.2/x', 'content-length': '0' }).end()],
    ['a server error', (_req, res) => res.writeHead(500, { 'content-length': '2' }).end('no')],
    ['not found', (_req, res) => res.writeHead(404, { 'content-length': '2' }).end('no')],
    ['a chunked body', (_req, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.end(BIG.subarray(0, 1000));
    }],
    ['another Content-Length than the descriptor', (_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length - 1) });
      res.end(BIG.subarray(1));
    }],
    ['a compressed body', (_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length), 'content-encoding': 'gzip' });
      res.end(BIG);
    }],
  ];
  it.each(answers)('%s', async (_name, answer) => {
    handler.current = answer;
    const { result, path } = await direct(httpHost, { digest: BIG_DIGEST, size: BIG.length });
    expect(result).toBe(false);
    expect(existsSync(path)).toBe(false);
  });

  const rawAnswers: readonly [string, string][] = [
    ['two Content-Length headers', `HTTP/1.1 200 OK\r\nContent-Length: ${BIG.length}\r\nContent-Length: ${BIG.length}\r\n\r\n`],
    ['a folded header line', `HTTP/1.1 200 OK\r\nContent-Length: ${BIG.length}\r\nX-A: b\r\n c\r\n\r\n`],
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['a head over 64 KiB', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\nContent-Length: ${BIG.length}\r\n\r\n`],
  ];
  it.each(rawAnswers)('%s', async (_name, head) => {
    rawHandler.current = (socket) => socket.end(head);
    const { result, path } = await direct(rawHost, { digest: BIG_DIGEST, size: BIG.length });
    expect(result).toBe(false);
    expect(existsSync(path)).toBe(false);
  });

  it('no registry listening: handed back (the regular client retries and names the failure)', async () => {
    const closed = createNetServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { result } = await direct(`127.0.0.1:${port}`, { digest: BIG_DIGEST, size: BIG.length });
    expect(result).toBe(false);
  });

  it('an HTTPS registry: never tried (TLS stays with the regular client)', async () => {
    const client = new RegistryClient(parseRegistryHost('registry.example.com'));
    const path = target();
    expect(await client.fetchBlobToFile('m', { digest: BIG_DIGEST, size: BIG.length }, path)).toBe(false);
    await client.close();
    expect(existsSync(path)).toBe(false);
  });
});

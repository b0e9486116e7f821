import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/errors.js';
import { pullModel } from '../../src/gate/pull.js';
import { RegistryClient } from '../../src/oci/client.js';
import { serializeImageManifest } from '../../src/oci/manifest.js';
import { parseReference, parseRegistryHost } from '../../src/oci/reference.js';
import { codeOfAsync } from '../helpers/errors.js';
import { tempDir } from '../helpers/reference.js';

/**
 * Registry misbehaviour the real registry cannot be made to show, from a small local server:
 * wrong bytes for a digest, a body cut short, a body that never ends, 500s, redirects to
 * another host, authentication challenges. Each must end in a typed error, with bounded memory
 * and nothing written.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function listen(host: string, handler: { current: Handler }): Promise<Server> {
  const server = createServer((req, res) => handler.current(req, res));
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}

const sha = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const BLOB = Buffer.alloc(200_000, 5);
const BLOB_DIGEST = sha(BLOB);

describe('registry faults (local test server)', () => {
  const faultDir = tempDir('intoto-gate-fault-');
  const handler: { current: Handler } = { current: (_req, res) => res.end() };
  const elsewhere: { current: Handler } = { current: (_req, res) => res.end() };
  let server: Server;
  let other: Server;
  let host: string;
  let otherOrigin: string;
  const seen: { url: string; method: string; authorization: string | undefined }[] = [];
  const seenElsewhere: { url: string; authorization: string | undefined }[] = [];

  beforeAll(async () => {
    server = await listen('127.0.0.1', {
      get current() {
        return (req: IncomingMessage, res: ServerResponse) => {
          seen.push({ url: req.url ?? '', method: req.method ?? '', authorization: req.headers.authorization });
          handler.current(req, res);
        };
      },
    });
    // "Another host": a second loopback address, so it is another origin with no credentials.
    other = await listen('127.0.0.2', {
      get current() {
        return (req: IncomingMessage, res: ServerResponse) => {
          seenElsewhere.push({ url: req.url ?? '', authorization: req.headers.authorization });
          elsewhere.current(req, res);
        };
      },
    });
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    otherOrigin = `http://127.0.0.2:${(other.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    other.closeAllConnections();
    await new Promise((r) => server.close(r));
    await new Promise((r) => other.close(r));
  });
  afterEach(() => {
    seen.length = 0;
    seenElsewhere.length = 0;
  });

  const client = (options: ConstructorParameters<typeof RegistryClient>[1] = {}) => new RegistryClient(parseRegistryHost(host), { retryDelayMs: 10, ...options });
  const sink = () => {
    let bytes = 0;
    return {
      write: (chunks: readonly Buffer[]) => void (bytes += chunks.reduce((n, c) => n + c.length, 0)),
      get bytes() {
        return bytes;
      },
    };
  };

  it('wrong bytes for the digest: E_DIGEST_MISMATCH', async () => {
    handler.current = (_req, res) => res.end(Buffer.alloc(BLOB.length, 6));
    const c = client();
    expect(await codeOfAsync(c.fetchBlob('m', { digest: BLOB_DIGEST, size: BLOB.length }, sink().write))).toBe('E_DIGEST_MISMATCH');
    await c.close();
  });

  it('a body cut short: E_BLOB_SIZE', async () => {
    handler.current = (_req, res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 1000));
      setTimeout(() => res.destroy(), 20);
    };
    const c = client();
    expect(await codeOfAsync(c.fetchBlob('m', { digest: BLOB_DIGEST, size: BLOB.length }, sink().write))).toBe('E_BLOB_SIZE');
    await c.close();
  });

  it('a body that never ends: E_BLOB_SIZE once past the descriptor size, having kept at most that much', async () => {
    let sent = 0;
    let stopped = false;
    handler.current = (_req, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = (): void => {
        while (!stopped && sent < 4 * 1024 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
      };
      res.on('close', () => (stopped = true));
      pump();
    };
    const c = client();
    const out = sink();
    expect(await codeOfAsync(c.fetchBlob('m', { digest: BLOB_DIGEST, size: BLOB.length }, out.write))).toBe('E_BLOB_SIZE');
    expect(out.bytes).toBeLessThanOrEqual(BLOB.length);
    await c.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it('a body that stalls: a typed error after the timeout, not a hang', async () => {
    handler.current = (_req, res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 1000));
    };
    const c = client({ timeoutMs: 300 });
    const started = Date.now();
    expect(await codeOfAsync(c.fetchBlob('m', { digest: BLOB_DIGEST, size: BLOB.length }, sink().write))).toBe('E_BLOB_SIZE');
    expect(Date.now() - started).toBeLessThan(10_000);
    handler.current = () => undefined; // no answer at all
    expect(await codeOfAsync(c.getManifest('m', 'v1'))).toBe('E_REGISTRY');
    await c.close();
  });

  it('a manifest that never ends: E_MANIFEST at 4 MiB', async () => {
    handler.current = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (res.write(chunk));
        res.once('drain', pump);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    };
    const c = client();
    expect(await codeOfAsync(c.getManifest('m', 'v1'))).toBe('E_MANIFEST');
    await c.close();
  });

  it('500 on a GET: retried, then E_REGISTRY naming the status and the registry error code', async () => {
    handler.current = (_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'storage failed' }] }));
    };
    const c = client({ retries: 2 });
    const error = await c.getManifest('m', 'v1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('E_REGISTRY');
    expect((error as RegistryError).status).toBe(500);
    expect((error as RegistryError).registryCode).toBe('UNKNOWN');
    expect((error as RegistryError).message).toContain('HTTP 500 UNKNOWN');
    expect(seen.filter((r) => r.method === 'GET')).toHaveLength(3);
    await c.close();
  });

  it('a 503 that passes: the GET succeeds on the retry', async () => {
    let calls = 0;
    const manifest = serializeImageManifest({ config: { mediaType: 'x/y', digest: BLOB_DIGEST, size: 1 }, layers: [] });
    handler.current = (_req, res) => {
      calls += 1;
      if (calls === 1) {
        res.writeHead(503);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(manifest);
    };
    const c = client();
    expect((await c.getManifest('m', 'v1')).digest).toBe(sha(manifest));
    await c.close();
  });

  it('500 on an upload: not re-sent (E_REGISTRY after one PUT)', async () => {
    handler.current = (req, res) => {
      req.resume();
      if (req.method === 'HEAD') {
        res.writeHead(404);
        res.end();
      } else if (req.method === 'POST') {
        res.writeHead(202, { location: `/v2/m/blobs/uploads/1?state=x` });
        res.end();
      } else {
        res.writeHead(500);
        res.end();
      }
    };
    const c = client();
    expect(await codeOfAsync(c.pushBytes('m', BLOB))).toBe('E_REGISTRY');
    expect(seen.filter((r) => r.method === 'PUT')).toHaveLength(1);
    await c.close();
  });

  it('an upload location on another origin is refused (credentials stay home)', async () => {
    handler.current = (req, res) => {
      req.resume();
      if (req.method === 'HEAD') {
        res.writeHead(404);
        res.end();
      } else {
        res.writeHead(202, { location: `${otherOrigin}/v2/m/blobs/uploads/1` });
        res.end();
      }
    };
    const c = client({ credentials: { kind: 'basic', username: 'u', password: 'p' } });
    expect(await codeOfAsync(c.pushBytes('m', BLOB))).toBe('E_REDIRECT');
    expect(seenElsewhere).toHaveLength(0);
    await c.close();
  });

  it('a blob redirected to another host is fetched there without credentials, and checked all the same', async () => {
    handler.current = (req, res) => {
      if (req.headers.authorization !== 'Basic dTpw') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' });
        res.end();
        return;
      }
      res.writeHead(307, { location: `${otherOrigin}/bucket/blob?signature=abc` });
      res.end();
    };
    elsewhere.current = (_req, res) => res.end(BLOB);
    const c = client({ credentials: { kind: 'basic', username: 'u', password: 'p' } });
    const out = sink();
    await c.fetchBlob('m', { digest: BLOB_DIGEST, size: BLOB.length }, out.write);
    expect(out.bytes).toBe(BLOB.length);
    expect(seenElsewhere.map((r) => r.authorization)).toEqual([undefined]);
    elsewhere.current = (_req, res) => res.end(Buffer.alloc(BLOB.length, 9));
    expect(await codeOfAsync(c.fetchBlob('m', { digest: BLOB_DIGEST, size: BLOB.length }, sink().write))).toBe('E_DIGEST_MISMATCH');
    await c.close();
  });

  it('a manifest redirected to another host is refused; so is a redirect loop', async () => {
    handler.current = (_req, res) => {
      res.writeHead(302, { location: `${otherOrigin}/v2/m/manifests/v1` });
      res.end();
    };
    const c = client();
    expect(await codeOfAsync(c.getManifest('m', 'v1'))).toBe('E_REDIRECT');
    expect(seenElsewhere).toHaveLength(0);
    handler.current = (req, res) => {
      res.writeHead(307, { location: req.url ?? '/' });
      res.end();
    };
    expect(await codeOfAsync(c.fetchBlob('m', { digest: BLOB_DIGEST, size: BLOB.length }, sink().write))).toBe('E_REDIRECT');
    await c.close();
  });

  it('bearer tokens: fetched from the realm with the credentials, then used; a refusal is E_REGISTRY_AUTH', async () => {
    const manifest = serializeImageManifest({ config: { mediaType: 'x/y', digest: BLOB_DIGEST, size: 1 }, layers: [] });
    let tokenOk = true;
    handler.current = (req, res) => {
      if (req.url?.startsWith('/token')) {
        const url = new URL(req.url, 'http://x');
        if (!tokenOk || req.headers.authorization !== 'Basic dTpw' || url.searchParams.get('scope') !== 'repository:m:pull') {
          res.writeHead(401);
          res.end();
          return;
        }
        res.end(JSON.stringify({ token: 'tok123' }));
        return;
      }
      if (req.headers.authorization !== 'Bearer tok123') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="test",scope="repository:m:pull"` });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(manifest);
    };
    const c = client({ credentials: { kind: 'basic', username: 'u', password: 'p' } });
    expect((await c.getManifest('m', 'v1')).digest).toBe(sha(manifest));
    await c.close();
    tokenOk = false;
    const refused = client({ credentials: { kind: 'basic', username: 'u', password: 'p' } });
    expect(await codeOfAsync(refused.getManifest('m', 'v1'))).toBe('E_REGISTRY_AUTH');
    await refused.close();
  });

  it('a token realm over plain HTTP on another host is refused before any credential is sent', async () => {
    handler.current = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://auth.example.invalid/token",service="x"' });
      res.end();
    };
    const c = client({ credentials: { kind: 'basic', username: 'u', password: 'p' } });
    expect(await codeOfAsync(c.getManifest('m', 'v1'))).toBe('E_INSECURE');
    await c.close();
  });

  it('registry error documents become typed errors with the registry code (404 MANIFEST_UNKNOWN)', async () => {
    handler.current = (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    };
    const c = client();
    const error = (await c.getManifest('m', 'v9').catch((e: unknown) => e)) as RegistryError;
    expect([error.code, error.status, error.registryCode]).toEqual(['E_NOT_FOUND', 404, 'MANIFEST_UNKNOWN']);
    await c.close();
  });

  it('a registry off this machine is spoken to over HTTPS only, unless --insecure', () => {
    expect(new RegistryClient(parseRegistryHost('registry.example.com')).origin).toBe('https://registry.example.com');
    expect(new RegistryClient(parseRegistryHost('registry.example.com:5000'), { insecure: true }).origin).toBe('http://registry.example.com:5000');
    expect(new RegistryClient(parseRegistryHost('localhost:5000')).origin).toBe('http://localhost:5000');
  });

  it('the gate: a model whose blob is served wrong leaves nothing, not even its work directory', async () => {
    const config = Buffer.from(JSON.stringify({ descriptor: {}, modelfs: { type: 'layers', diffIds: [BLOB_DIGEST] }, config: {} }));
    const manifest = serializeImageManifest({
      artifactType: 'application/vnd.cncf.model.manifest.v1+json',
      config: { mediaType: 'application/vnd.cncf.model.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: BLOB_DIGEST, size: BLOB.length, annotations: { 'org.cncf.model.filepath': 'w.bin' } }],
    });
    handler.current = (req, res) => {
      if (req.url?.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        res.end(manifest);
      } else if (req.url?.endsWith(sha(config))) res.end(config);
      else {
        res.writeHead(200, { 'content-length': String(BLOB.length) });
        res.end(Buffer.concat([BLOB.subarray(0, 1000), Buffer.alloc(BLOB.length - 1000, 3)]));
      }
    };
    const dir = faultDir;
    const out = join(dir, 'model');
    const c = client();
    const code = await codeOfAsync(pullModel(c, { reference: parseReference(`${host}/m:v1`), destination: out, trust: { method: 'key', key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey } }));
    await c.close();
    expect(code).toBe('E_DIGEST_MISMATCH');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});

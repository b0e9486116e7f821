import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeImageManifest } from '../../src/oci/manifest.js';
import { binPath } from '../helpers/bin.js';
import { makeSigningKey } from '../helpers/oms-sign.js';
import { tempDir } from '../helpers/reference.js';

/**
 * Ctrl-C (SIGINT) or a cancellation (SIGTERM) in the middle of `intoto pull`, sent to the built
 * binary: the private work directory beside DIR is removed, DIR never appears, one line says
 * what was interrupted, exit status 130 (with --json, also one JSON document). The registry is
 * a small local server that sends half of a 40 MiB blob and then stalls: the one fault the real
 * registry cannot be made to show on demand, a download that is still running when the signal
 * arrives.
 */

const work = tempDir('intoto-pull-interrupt-');
const BLOB = Buffer.alloc(40 * 1024 * 1024, 5);
const sha = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

let server: Server;
let host: string;
const stalled: ServerResponse[] = [];

beforeAll(async () => {
  const config = Buffer.from(JSON.stringify({ descriptor: {}, modelfs: { type: 'layers', diffIds: [sha(BLOB)] }, config: {} }));
  const manifest = serializeImageManifest({
    artifactType: 'application/vnd.cncf.model.manifest.v1+json',
    config: { mediaType: 'application/vnd.cncf.model.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: sha(BLOB), size: BLOB.length, annotations: { 'org.cncf.model.filepath': 'weights/w.bin' } }],
  });
  server = createServer((req, res) => {
    if (req.url?.includes('/manifests/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': String(manifest.length) });
      res.end(manifest);
    } else if (req.url?.endsWith(sha(config))) {
      res.writeHead(200, { 'content-length': String(config.length) });
      res.end(config);
    } else if (req.url?.endsWith(sha(BLOB))) {
      // Half of the blob, then nothing more: the pull is mid-download when the signal comes.
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, BLOB.length / 2));
      stalled.push(res);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  writeFileSync(join(work, 'signer.pub'), makeSigningKey('P-256').publicPem);
});

afterAll(async () => {
  for (const res of stalled) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function until(condition: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The pull's work directories beside the output directory. */
const workDirs = (parent: string): string[] => readdirSync(parent).filter((n) => n.startsWith('.intoto-pull-'));

/** Runs `intoto pull` on the stalling server, waits until half the blob is on disk, sends `signal`. */
async function interruptedPull(name: string, signal: NodeJS.Signals, extra: readonly string[] = []): Promise<{ status: number | null; stdout: string; stderr: string; parent: string; out: string }> {
  const parent = join(work, name);
  mkdirSync(parent);
  const out = join(parent, 'model');
  const child = spawn(process.execPath, [binPath('intoto'), 'pull', `${host}/m:v1`, '-o', out, '-k', join(work, 'signer.pub'), ...extra], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: work, TMPDIR: work, LANG: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const ended = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const partial = (): boolean => {
    const [dir] = workDirs(parent);
    if (dir === undefined) return false;
    const file = join(parent, dir, 'model', 'weights', 'w.bin');
    return existsSync(file) && statSync(file).size >= 16 * 1024 * 1024;
  };
  try {
    await until(partial, `half of the blob to be written (stderr so far: ${stderr})`);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  child.kill(signal);
  const status = await ended;
  return { status, stdout, stderr, parent, out };
}

describe('intoto pull interrupted mid-download (a real signal to the built binary)', () => {
  it('SIGINT: the work directory is removed, DIR never appears, one line, exit 130', async () => {
    const result = await interruptedPull('sigint', 'SIGINT');
    expect(result.status, result.stderr).toBe(130);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[lines.length - 1]).toBe(`intoto pull: interrupted by SIGINT while pulling ${host}/m:v1; ${result.out} left untouched; temporary files removed [E_INTERRUPTED]`);
    expect(workDirs(result.parent)).toEqual([]);
    expect(existsSync(result.out)).toBe(false);
    expect(readdirSync(result.parent)).toEqual([]);
  });

  it('SIGTERM with --json: the same clean-up, and the outcome is one JSON document', async () => {
    const result = await interruptedPull('sigterm', 'SIGTERM', ['--json']);
    expect(result.status).toBe(130);
    expect(JSON.parse(result.stdout)).toMatchObject({ passed: false, failure: { code: 'E_INTERRUPTED', message: expect.stringContaining('interrupted by SIGTERM while pulling') } });
    expect(readdirSync(result.parent)).toEqual([]);
  });
});

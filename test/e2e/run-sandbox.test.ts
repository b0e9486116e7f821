import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binPath, runBin } from '../helpers/bin.js';
import { bwrapAvailable, tempDir } from '../helpers/reference.js';
import { cleanEnv, linkIn, makeKey, sha256 } from './helpers/step.js';

/**
 * intoto-run through the built binary, under bubblewrap: each test is an attack from
 * THREATS.md ("The runner") with a control that shows the test could fail.
 */

const haveBwrap = bwrapAvailable();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function workspace(root: string, name: string): string {
  const ws = join(root, name);
  mkdirSync(ws, { recursive: true });
  writeFileSync(join(ws, 'input.csv'), 'a,b\n1,2\n');
  return ws;
}

describe.skipIf(!haveBwrap)('intoto-run under bubblewrap (end to end)', () => {
  const root = tempDir('intoto-e2e-sandbox-');
  const keyDir = join(root, 'keys');
  const key = makeKey(keyDir, 'alice');
  const secret = JSON.parse(readFileSync(key, 'utf8')) as { keyval: { private: string } };
  const run = (ws: string, args: string[], env: NodeJS.ProcessEnv = cleanEnv()): ReturnType<typeof runBin> =>
    runBin('intoto-run', ['-n', 'step', '-k', key, ...args], { cwd: ws, env });

  it('attack: the step cannot read the signing key file, nor list its directory', () => {
    const ws = workspace(root, 'key-hidden');
    const cmd = `cat ${key} 2>&1; ls -a ${keyDir} 2>&1; true`;
    const result = run(ws, ['-s', '-p', '.', '--', 'sh', '-c', cmd]);
    expect(result.status, result.stderr).toBe(0);
    const { link } = linkIn(ws, 'step');
    expect(String(link.signed.byproducts['stdout'])).not.toContain(secret.keyval.private);
    expect(String(link.signed.byproducts['stdout'])).not.toContain('alice.pub');
    expect(result.stdout).not.toContain(secret.keyval.private);
    // Control: without the sandbox the same command prints the key.
    const control = run(ws, ['-s', '--sandbox', 'none', '-p', '.', '--', 'sh', '-c', cmd]);
    expect(control.stdout).toContain(secret.keyval.private);
  });

  it('attack: a key inside the workspace cannot be read by the step either', () => {
    const ws = workspace(root, 'key-inside');
    const inside = makeKey(ws, 'bob');
    const bobSecret = (JSON.parse(readFileSync(inside, 'utf8')) as { keyval: { private: string } }).keyval.private;
    const result = runBin('intoto-run', ['-n', 'step', '-k', 'bob', '-s', '--', 'sh', '-c', 'cat bob 2>&1; true'], { cwd: ws, env: cleanEnv() });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).not.toContain(bobSecret);
    expect(readFileSync(linkIn(ws, 'step').path, 'utf8')).not.toContain(bobSecret);
  });

  it('attack: PATH with ".", "" or a relative entry never resolves the command to a file planted in the workspace', () => {
    for (const [i, path] of ['.:/usr/bin:/bin', ':/usr/bin:/bin', 'bin:/usr/bin:/bin'].entries()) {
      const ws = workspace(root, `path-${i}`);
      mkdirSync(join(ws, 'bin'));
      for (const planted of [join(ws, 'ls'), join(ws, 'bin', 'ls')]) writeFileSync(planted, '#!/bin/sh\necho planted\n', { mode: 0o755 });
      for (const sandbox of ['bwrap', 'none']) {
        const result = run(ws, ['-s', '--sandbox', sandbox, '--', 'ls', '-d', 'input.csv'], cleanEnv({ PATH: path }));
        expect(result.status, result.stderr).toBe(0);
        expect(String(linkIn(ws, 'step').link.signed.byproducts['stdout'])).toBe('input.csv\n');
      }
    }
  });

  it('attack: secret variables reach neither the step nor the link; --env passes one by name', () => {
    const ws = workspace(root, 'secrets');
    const env = cleanEnv({ GITHUB_TOKEN: 'ghp_secret123', AWS_SECRET_ACCESS_KEY: 'aws-secret-456', IN_TOTO_X: 'x', CHOSEN: 'chosen-789' });
    const result = run(ws, ['-s', '--env', 'CHOSEN', '-p', '.', '--', 'env'], env);
    expect(result.status, result.stderr).toBe(0);
    const text = readFileSync(linkIn(ws, 'step').path, 'utf8');
    for (const leaked of ['ghp_secret123', 'aws-secret-456', 'IN_TOTO_X']) {
      expect(text).not.toContain(leaked);
      expect(result.stdout).not.toContain(leaked);
    }
    expect(text).toContain('CHOSEN=chosen-789');
    expect(text).toContain('PATH=');
  });

  it('attack: a network connection fails in the sandbox (and works with --share-net and without the sandbox)', async () => {
    const server = createServer((socket) => socket.end()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    const probe = ['python3', '-c', `import socket\ntry:\n socket.create_connection(("127.0.0.1", ${port}), 3)\n print("connected")\nexcept OSError as e:\n print("failed", e)`];
    const ws = workspace(root, 'network');
    // Spawned asynchronously: the listener lives in this process's event loop.
    const go = (args: string[]): Promise<string> =>
      new Promise((resolveRun) => {
        execFile(process.execPath, [binPath('intoto-run'), '-n', 'step', '-k', key, '-s', ...args, '--', ...probe], { cwd: ws, env: cleanEnv() }, (_error, stdout) => resolveRun(stdout));
      });
    try {
      expect(await go([])).toContain('failed');
      expect(await go(['--sandbox', 'none'])).toContain('connected');
      expect(await go(['--share-net'])).toContain('connected');
    } finally {
      server.close();
    }
  });

  it('attack: a write outside the base path fails; inside it succeeds', () => {
    const ws = workspace(root, 'writes');
    const outside = join(root, 'outside.txt');
    const result = run(ws, ['-p', '.', '--', 'sh', '-c', `echo x > ${outside}; echo y > inside.txt; exit 0`]);
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(outside)).toBe(false);
    expect(linkIn(ws, 'step').link.signed.products['inside.txt']).toEqual({ sha256: sha256('y\n') });
  });

  it('warns when the command runs outside the base path, where it cannot write under the sandbox', () => {
    const ws = workspace(root, 'outside-base');
    mkdirSync(join(ws, 'proj'));
    const result = run(ws, ['--base-path', 'proj', '-p', '.', '--', 'sh', '-c', 'touch here.txt; touch proj/there.txt; true']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/the command runs in .*outside-base, outside the base path .*proj: only the base path is writable/);
    expect(existsSync(join(ws, 'here.txt'))).toBe(false);
    expect(Object.keys(linkIn(ws, 'step').link.signed.products)).toEqual(['there.txt']);
  });

  it('attack: a detached child that rewrites a product afterwards leaves no stale hash', async () => {
    const ws = workspace(root, 'detached');
    const script = `(setsid sh -c 'sleep 1; echo evil > model.pkl' > /dev/null 2>&1 &); echo honest > model.pkl`;
    const result = run(ws, ['-p', 'model.pkl', '--', 'sh', '-c', script]);
    expect(result.status, result.stderr).toBe(0);
    await sleep(2000);
    const onDisk = readFileSync(join(ws, 'model.pkl'), 'utf8');
    expect(onDisk).toBe('honest\n');
    expect(linkIn(ws, 'step').link.signed.products['model.pkl']).toEqual({ sha256: sha256(onDisk) });
  });

  it('attack: a FIFO among the products does not hang the run; it is skipped with a warning', () => {
    const ws = workspace(root, 'fifo');
    execFileSync('mkfifo', [join(ws, 'pipe')]);
    const result = run(ws, ['-m', '.', '-p', '.', '--', 'true']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/pipe: is a FIFO, skipped/);
    const { link } = linkIn(ws, 'step');
    expect(Object.keys(link.signed.products)).toEqual(['input.csv']);
  });

  it('attack: a symlink out of the tree is not followed (a symlink inside it is)', () => {
    const ws = workspace(root, 'symlinks');
    writeFileSync(join(root, 'secret-outside.txt'), 'outside\n');
    symlinkSync(join(root, 'secret-outside.txt'), join(ws, 'escape'));
    symlinkSync('input.csv', join(ws, 'alias.csv'));
    const result = run(ws, ['-p', '.', '--', 'true']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/escape: resolves to .* outside the base path; not followed/);
    const { products } = linkIn(ws, 'step').link.signed;
    expect(Object.keys(products).sort()).toEqual(['alias.csv', 'input.csv']);
    expect(products['alias.csv']).toEqual(products['input.csv']);
  });

  it('attack: a step that never ends is stopped at --timeout with everything it started; the link is written, exit 1', async () => {
    const ws = workspace(root, 'timeout');
    const result = run(ws, ['--timeout', '1', '-p', '.', '--', 'sh', '-c', '(sleep 3; touch late) & sleep 60']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[E_TIMEOUT]');
    const { link } = linkIn(ws, 'step');
    expect(link.signed.byproducts['return-value']).toBeLessThan(0);
    await sleep(3500);
    expect(existsSync(join(ws, 'late'))).toBe(false);
  });

  it('a failing command still gets its signed link, and intoto-run exits 1 with the reason', () => {
    const ws = workspace(root, 'failing');
    const result = run(ws, ['-s', '-p', '.', '--', 'sh', '-c', 'echo partial > out.txt; echo broken >&2; exit 3']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/exited with status 3; the link recording that was written to .*step\.[0-9a-f]{8}\.link \[E_COMMAND_FAILED\]/);
    const { link } = linkIn(ws, 'step');
    expect(link.signed.byproducts).toEqual({ 'return-value': 3, stderr: 'broken\n', stdout: '' });
    expect(link.signatures).toHaveLength(1);
    expect(link.signed.products['out.txt']).toEqual({ sha256: sha256('partial\n') });
  });
});

describe('intoto-run without bubblewrap (PATH lacking bwrap)', () => {
  const root = tempDir('intoto-e2e-nobwrap-');
  const key = makeKey(join(root, 'keys'));
  const noBwrapEnv = cleanEnv({ PATH: join(root, 'empty-path'), GITHUB_TOKEN: 'ghp_secret123' });
  mkdirSync(join(root, 'empty-path'));

  it('--sandbox bwrap fails with E_SANDBOX_UNAVAILABLE before running or writing anything', () => {
    const ws = workspace(root, 'required');
    const result = runBin('intoto-run', ['-n', 'step', '-k', key, '--sandbox', 'bwrap', '-p', '.', '--', '/bin/sh', '-c', 'touch ran'], { cwd: ws, env: noBwrapEnv });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[E_SANDBOX_UNAVAILABLE]');
    expect(existsSync(join(ws, 'ran'))).toBe(false);
  });

  it('--sandbox auto warns, runs the command, and still scrubs the environment', () => {
    const ws = workspace(root, 'auto');
    const result = runBin('intoto-run', ['-n', 'step', '-k', key, '-s', '-p', '.', '--', '/usr/bin/env'], { cwd: ws, env: noBwrapEnv });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/warning: bwrap not found.*WITHOUT isolation/);
    const { link } = linkIn(ws, 'step');
    expect(String(link.signed.byproducts['stdout'])).toContain(`PATH=${join(root, 'empty-path')}`);
    expect(String(link.signed.byproducts['stdout'])).not.toContain('ghp_secret123');
  });
});

import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import { executeCommand, longTimeout, resolveExecutable, type ExecOptions } from '../../src/runner/exec.js';
import { allowedEnvironment, bwrapArgs } from '../../src/runner/sandbox.js';
import { bwrapAvailable, tempDir } from '../helpers/reference.js';

const haveBwrap = bwrapAvailable();
const warnings: string[] = [];
const base = (dir: string, overrides: Partial<ExecOptions>): ExecOptions => ({
  argv: ['true'],
  cwd: dir,
  writable: [dir],
  sandbox: 'none',
  recordStreams: true,
  echo: false,
  warn: (m) => warnings.push(m),
  ...overrides,
});

describe('longTimeout', () => {
  afterEach(() => vi.useRealTimers());
  it('waits a delay longer than 2^31 - 1 ms in steps, and fires once at the end', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let fired = 0;
    longTimeout(() => fired++, 40 * 86_400_000);
    vi.advanceTimersByTime(2 ** 31);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(40 * 86_400_000 - 2 ** 31 - 1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(2);
    expect(fired).toBe(1);
  });
  it('can be cancelled in any step', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let fired = 0;
    const timer = longTimeout(() => fired++, 60 * 86_400_000);
    vi.advanceTimersByTime(2 ** 31 + 10);
    timer.cancel();
    vi.advanceTimersByTime(60 * 86_400_000);
    expect(fired).toBe(0);
  });
});

describe('environment allow-list', () => {
  it('keeps PATH, HOME, LANG, TERM and named variables only', () => {
    const env = allowedEnvironment({ PATH: '/bin', HOME: '/h', GITHUB_TOKEN: 't', AWS_SECRET_ACCESS_KEY: 's', IN_TOTO_ARTIFACT_EXCLUDE_PATTERNS: 'x', KEEP: 'k' }, ['KEEP']);
    expect({ ...env }).toEqual({ PATH: '/bin', HOME: '/h', KEEP: 'k' });
  });
});

describe('commands are never resolved through an empty, . or relative PATH entry', () => {
  const dir = tempDir();
  const trap = join(dir, 'trap-marker');
  // A program planted in the working directory (the step's workspace) under a common name.
  for (const name of ['ls', 'only-here']) {
    writeFileSync(join(dir, name), `#!/bin/sh\ntouch ${trap}\necho planted\n`, { mode: 0o755 });
  }

  it.each([['.:/usr/bin:/bin'], [':/usr/bin:/bin'], ['/usr/bin::/bin'], ['sub/..:/usr/bin:/bin']])(
    'attack: PATH=%j with a planted ls in the working directory runs /usr/bin/ls, never ./ls',
    async (path) => {
      const result = await executeCommand(base(dir, { argv: ['ls', '-d', '.'], sourceEnv: { PATH: path } }));
      expect(result.stdout).toBe('.\n');
      expect(existsSync(trap)).toBe(false);
    },
  );

  it('attack: a command found only through PATH=. is not found (E_COMMAND_NOT_FOUND), and the message names the entry', async () => {
    const failure = await executeCommand(base(dir, { argv: ['only-here'], sourceEnv: { PATH: '.:/usr/bin' } })).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'E_COMMAND_NOT_FOUND' });
    expect((failure as Error).message).toContain('"."');
    expect(existsSync(trap)).toBe(false);
    expect(() => resolveExecutable('only-here', dir, '')).toThrow(expect.objectContaining({ code: 'E_COMMAND_NOT_FOUND' }));
  });

  it('the step\'s own PATH keeps only absolute entries (its children cannot be hijacked either); ./prog still runs', async () => {
    const result = await executeCommand(base(dir, { argv: ['sh', '-c', 'echo "$PATH"; ls -d .'], sourceEnv: { PATH: '.:/usr/bin::bin:/bin' } }));
    expect(result.stdout).toBe('/usr/bin:/bin\n.\n');
    expect(existsSync(trap)).toBe(false);
    expect({ ...allowedEnvironment({ PATH: '.::x' }, []) }).toEqual({});
    const explicit = await executeCommand(base(dir, { argv: ['./only-here'], sourceEnv: { PATH: '/usr/bin' } }));
    expect(explicit.stdout).toBe('planted\n');
  });
});

describe('bwrap arguments', () => {
  it('hide the key directory, or only the key file when the directory holds the workspace', () => {
    const separate = bwrapArgs({ writable: ['/work/ws'], cwd: '/work/ws', hidden: ['/keys/alice'], env: {}, shareNet: false });
    expect(separate.join(' ')).toContain('--tmpfs /keys');
    const inside = bwrapArgs({ writable: ['/work/ws'], cwd: '/work/ws', hidden: ['/work/alice'], env: {}, shareNet: false });
    expect(inside.join(' ')).toContain('--ro-bind /dev/null /work/alice');
    expect(inside.join(' ')).not.toContain('--tmpfs /work ');
  });
  it('re-expose only directories under /tmp, read-only', () => {
    const args = bwrapArgs({ writable: ['/w'], cwd: '/w', hidden: [], env: {}, shareNet: false, keepVisible: ['/usr/bin', '/tmp/checkout/dist/bin'] }).join(' ');
    expect(args).toContain('--ro-bind /tmp/checkout/dist/bin /tmp/checkout/dist/bin');
    expect(args).not.toContain('--ro-bind /usr/bin');
    expect(args.indexOf('--tmpfs /tmp')).toBeLessThan(args.indexOf('/tmp/checkout'));
  });
  it('drop capabilities and unshare the network unless asked', () => {
    const args = bwrapArgs({ writable: ['/w'], cwd: '/w', hidden: [], env: {}, shareNet: false }).join(' ');
    expect(args).toContain('--cap-drop ALL');
    expect(args).toContain('--unshare-all');
    expect(args).not.toContain('--share-net');
  });
});

describe('executeCommand without a sandbox', () => {
  const dir = tempDir();
  it('records the exit code and both streams', async () => {
    const result = await executeCommand(base(dir, { argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] }));
    expect(result).toMatchObject({ returnValue: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false, sandboxed: false });
  });
  it('reports a missing command before running anything', async () => {
    await expect(executeCommand(base(dir, { argv: ['no-such-command-xyz'] }))).rejects.toMatchObject({ code: 'E_COMMAND_NOT_FOUND' });
    expect(() => resolveExecutable('./nope', dir, '/bin')).toThrow(InTotoError);
  });
  it('attack: a secret variable does not reach the step', async () => {
    const result = await executeCommand(base(dir, { argv: ['sh', '-c', 'env'], sourceEnv: { PATH: process.env['PATH'] ?? '', MY_TOKEN: 'hunter2' } }));
    expect(result.stdout).not.toContain('hunter2');
    expect(result.stdout).toContain('PATH=');
  });
  it('attack: a step that never ends is killed at the timeout, with its group', async () => {
    const marker = join(dir, 'late');
    const result = await executeCommand(base(dir, { argv: ['sh', '-c', `(sleep 2; touch ${marker}) & sleep 60`], timeoutSeconds: 1 }));
    expect(result.timedOut).toBe(true);
    expect(result.returnValue).toBeLessThan(0);
    await new Promise((r) => setTimeout(r, 2500));
    expect(existsSync(marker)).toBe(false);
  });
  it('a time limit past Node\'s 24.8-day timer range does not fire at once (it used to kill the step after 1 ms)', async () => {
    const result = await executeCommand(base(dir, { argv: ['sh', '-c', 'sleep 0.3; echo done'], timeoutSeconds: 30 * 86_400 }));
    expect(result).toMatchObject({ returnValue: 0, timedOut: false, stdout: 'done\n' });
  });
  it('attack: a background child in the group is killed when the step ends', async () => {
    const product = join(dir, 'product.txt');
    writeFileSync(product, 'good\n');
    const result = await executeCommand(base(dir, { argv: ['sh', '-c', `(sleep 1; echo evil > ${product}) & exit 0`] }));
    expect(result.returnValue).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    expect(readFileSync(product, 'utf8')).toBe('good\n');
  });
  it('caps recorded output and says so', async () => {
    const result = await executeCommand(base(dir, { argv: ['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" a'], maxRecordedBytes: 1000 }));
    expect(result.truncated).toBe(true);
    expect(result.stdout.startsWith('a'.repeat(1000))).toBe(true);
    expect(result.stdout).toContain('truncated after 1000 bytes');
  });
});

describe.skipIf(!haveBwrap)('executeCommand under bwrap', () => {
  const dir = tempDir();
  const ws = join(dir, 'ws');
  const keys = join(dir, 'keys');
  mkdirSync(ws);
  mkdirSync(keys);
  writeFileSync(join(keys, 'alice'), 'PRIVATE KEY MATERIAL');
  const sandboxed = (argv: string[], extra: Partial<ExecOptions> = {}): Promise<Awaited<ReturnType<typeof executeCommand>>> =>
    executeCommand(base(ws, { argv, cwd: ws, writable: [ws], hidden: [join(keys, 'alice')], sandbox: 'bwrap', ...extra }));

  it('attack: the step cannot read the signing key', async () => {
    const result = await sandboxed(['sh', '-c', `cat ${join(keys, 'alice')}; ls ${keys}`]);
    expect(result.sandboxed).toBe(true);
    expect(result.stdout).not.toContain('PRIVATE');
  });
  it('attack: PATH=. with a planted ls in the workspace runs the real ls inside the sandbox too', async () => {
    writeFileSync(join(ws, 'ls'), '#!/bin/sh\necho planted\n', { mode: 0o755 });
    const result = await sandboxed(['ls', '-d', '.'], { sourceEnv: { PATH: '.:/usr/bin:/bin' } });
    expect(result.sandboxed).toBe(true);
    expect(result.stdout).toBe('.\n');
  });
  it('attack: a write outside the workspace fails; inside succeeds', async () => {
    const result = await sandboxed(['sh', '-c', `echo x > ${join(dir, 'outside')}; echo y > inside; echo done`]);
    expect(result.stdout).toContain('done'); // the command ran on after the refused write
    expect(existsSync(join(dir, 'outside'))).toBe(false);
    expect(readFileSync(join(ws, 'inside'), 'utf8')).toBe('y\n');
  });
  it('attack: a network connection fails (while the same connection works unsandboxed)', async () => {
    const server = createServer((socket) => socket.end()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    const probe = ['python3', '-c', `import socket\ntry:\n socket.create_connection(("127.0.0.1", ${port}), 2)\n print("connected")\nexcept OSError as e:\n print("failed", e)`];
    try {
      const control = await executeCommand(base(ws, { argv: probe, sandbox: 'none' }));
      expect(control.stdout).toContain('connected');
      const result = await sandboxed(probe);
      expect(result.stdout).toContain('failed');
    } finally {
      server.close();
    }
  });
  it('a program that lives under /tmp still runs (the private /tmp keeps its directory visible, read-only)', async () => {
    const tools = join(dir, 'tools');
    mkdirSync(tools);
    writeFileSync(join(tools, 'hello'), '#!/bin/sh\necho hello from tmp\n', { mode: 0o755 });
    const result = await sandboxed([join(tools, 'hello')]);
    expect(result.returnValue).toBe(0);
    expect(result.stdout).toBe('hello from tmp\n');
    const write = await sandboxed(['sh', '-c', `echo x > ${join(tools, 'new')} 2>/dev/null; echo $?`]);
    expect(existsSync(join(tools, 'new'))).toBe(false);
    expect(write.stdout.trim()).not.toBe('0');
  });
  it('attack: a child that leaves the session is killed with the PID namespace', async () => {
    const product = join(ws, 'model.pkl');
    writeFileSync(product, 'honest\n');
    await sandboxed(['sh', '-c', `(setsid sh -c 'sleep 1; echo evil > ${product}' &) ; exit 0`]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(readFileSync(product, 'utf8')).toBe('honest\n');
  });
});

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binPath, runBin } from '../helpers/bin.js';
import { bwrapAvailable, tempDir } from '../helpers/reference.js';
import { makeProject } from '../pipeline/helpers.js';

/**
 * Issue 18, item 3: Ctrl-C (SIGINT) or a cancellation (SIGTERM) stops the running step's whole
 * process group, removes every temporary file, leaves --out untouched (or complete, once it
 * was published), prints one line saying what was interrupted, and exits 130. And no failure
 * of any kind leaves temporary files behind. Each case runs the built binary with a private
 * TMPDIR, so "no temporary files" is checked exactly: the directory must be empty afterwards.
 */
bwrapAvailable(); // fails under CI=true without bubblewrap; the cases hold with or without it
const root = tempDir('intoto-interrupt-');
makeProject(root, ['alice', 'owner']);

/** A sleep whose argument marks it, so that it can be found among all processes. */
function sleeper(seconds: string): string[] {
  return ['sleep', seconds];
}

function layout(name: string, step: readonly string[], inspection: readonly string[] | undefined): string {
  const file = join(root, `${name}.yaml`);
  const inspect = inspection === undefined ? '' : `inspections:\n  - name: look\n    run: ${JSON.stringify(inspection)}\n    materials: ["ALLOW *"]\n    products: ["ALLOW *"]\n`;
  writeFileSync(
    file,
    `expires_in: 30d
functionaries: {alice: keys/alice.pub}
steps:
  - name: slow
    functionaries: [alice]
    run: ${JSON.stringify(step)}
    materials: ["DISALLOW *"]
    products: ["CREATE out.txt", "DISALLOW *"]
${inspect}`,
  );
  return file;
}

/** A fresh, empty TMPDIR for one case. */
function privateTmp(name: string): string {
  const dir = join(root, `tmp-${name}`);
  mkdirSync(dir);
  return dir;
}

/**
 * The PIDs of processes whose command line is exactly `argv`, the program named as given or by
 * the absolute path it was found at: the runner runs what it resolved through PATH, and under
 * bubblewrap (0.8 has no --argv0) the program sees that path as its argv[0] (docs/RUN.md).
 */
function processesRunning(argv: readonly string[]): number[] {
  const [program = '', ...args] = argv;
  const rest = `${args.map((a) => `\u0000${a}`).join('')}\u0000`;
  return readdirSync('/proc')
    .filter((entry) => /^[0-9]+$/.test(entry))
    .filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        if (!cmdline.endsWith(rest)) return false;
        const argv0 = cmdline.slice(0, cmdline.length - rest.length);
        return argv0 === program || (argv0.startsWith('/') && argv0.endsWith(`/${program}`));
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function until(condition: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts one of our binaries, waits until `marker` (a process it starts) runs, sends `signal`,
 * and returns how it ended.
 */
async function interrupt(name: string, args: readonly string[], options: { tmp: string; marker: readonly string[]; signal: NodeJS.Signals; cwd?: string }): Promise<{ status: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [binPath(name), ...args], {
    cwd: options.cwd ?? root,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root', TMPDIR: options.tmp, LANG: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const ended = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await until(() => processesRunning(options.marker).length > 0, `${options.marker.join(' ')} to start (stderr so far: ${stderr})`);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  child.kill(options.signal);
  const status = await ended;
  return { status, stderr, stdout };
}

describe('pipeline run interrupted (issue 18.3)', () => {
  it('SIGINT during a step: the step dies with its group, the temporary workspace goes, --out is untouched, one line, exit 130', async () => {
    const marker = sleeper('31.25');
    const file = layout('slow-step', ['sh', '-c', `echo made > out.txt; exec ${marker.join(' ')}`], undefined);
    const tmp = privateTmp('step');
    const out = join(root, 'out-step');
    const result = await interrupt('intoto', ['pipeline', 'run', file, '--keys', join(root, 'keys'), '--out', out], { tmp, marker, signal: 'SIGINT' });
    expect(result.status, result.stderr).toBe(130);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[lines.length - 1]).toBe(
      `intoto pipeline run: interrupted by SIGINT while running step 'slow' (functionary alice); stopped the command and everything it started; ${out} left untouched; temporary workspace removed [E_INTERRUPTED]`,
    );
    expect(readdirSync(tmp)).toEqual([]);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(root).filter((f) => f.startsWith('.out-step'))).toEqual([]);
    await until(() => processesRunning(marker).length === 0, 'the step to be gone', 5000);
  });

  it('SIGTERM during the verification: --out is complete (it was published first), the verifier\'s work area goes too', async () => {
    const marker = sleeper('32.25');
    const file = layout('slow-inspection', ['sh', '-c', 'echo made > out.txt'], marker);
    const tmp = privateTmp('verify');
    const out = join(root, 'out-verify');
    const result = await interrupt('intoto', ['pipeline', 'run', file, '--keys', join(root, 'keys'), '--out', out], { tmp, marker, signal: 'SIGTERM' });
    expect(result.status, result.stderr).toBe(130);
    expect(result.stderr).toMatch(new RegExp(`interrupted by SIGTERM while verifying the chain in ${out}; .*${out} is complete, but its verification did not finish; temporary workspace removed \\[E_INTERRUPTED\\]\\n$`));
    expect(readdirSync(tmp)).toEqual([]);
    const files = readdirSync(out);
    expect(files).toHaveLength(3);
    expect(files).toEqual(expect.arrayContaining(['out.txt', 'root.layout', expect.stringMatching(/^slow\.[0-9a-f]{8}\.link$/)]));
    await until(() => processesRunning(marker).length === 0, 'the inspection to be gone', 5000);
  });

  it('a workspace given with --workspace is kept, and the line says where; with --json the outcome is one JSON document', async () => {
    const marker = sleeper('33.25');
    const file = layout('slow-kept', ['sh', '-c', `exec ${marker.join(' ')}`], undefined);
    const tmp = privateTmp('kept');
    const work = join(root, 'work-kept');
    const result = await interrupt('intoto', ['pipeline', 'run', file, '--keys', join(root, 'keys'), '--out', join(root, 'out-kept'), '--workspace', work, '--json'], { tmp, marker, signal: 'SIGINT' });
    expect(result.status).toBe(130);
    expect(JSON.parse(result.stdout)).toMatchObject({ passed: false, failure: { code: 'E_INTERRUPTED', message: expect.stringContaining('interrupted by SIGINT') } });
    expect(result.stderr).toContain(`workspace kept: ${work}`);
    expect(existsSync(join(work, 'runs', 'slow', 'alice'))).toBe(true);
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('the in-toto tools interrupted', () => {
  it('intoto run: SIGINT stops the command and its group; no link, exit 130', async () => {
    const marker = sleeper('34.25');
    const dir = join(root, 'run-dir');
    mkdirSync(dir);
    const tmp = privateTmp('run');
    const result = await interrupt('intoto-run', ['-n', 'slow', '-k', join(root, 'keys', 'alice'), '--', ...marker], { tmp, marker, signal: 'SIGINT', cwd: dir });
    expect(result.status).toBe(130);
    expect(result.stderr).toMatch(/^intoto-run: interrupted by SIGINT; stopped the command and everything it started \[E_INTERRUPTED\]$/m);
    expect(readdirSync(dir)).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
    await until(() => processesRunning(marker).length === 0, 'the command to be gone', 5000);
  });

  it('intoto verify: SIGINT during an inspection removes its scratch directory; exit 130', async () => {
    const marker = sleeper('35.25');
    const file = layout('verify-later', ['sh', '-c', 'echo made > out.txt'], marker);
    // Produce a chain whose inspection is slow, without waiting for it: run with a short
    // inspection timeout (the verification fails, the chain is complete), then verify it again.
    const out = join(root, 'out-verify-later');
    runBin('intoto', ['pipeline', 'run', file, '--keys', join(root, 'keys'), '--out', out, '-q'], { env: { ...process.env, TMPDIR: privateTmp('prep') }, timeout: 5000 });
    expect(existsSync(join(out, 'root.layout'))).toBe(true);
    const tmp = privateTmp('verify-cli');
    const result = await interrupt('intoto', ['verify', '-l', 'root.layout', '-k', join(root, 'keys', 'owner.pub')], { tmp, marker, signal: 'SIGINT', cwd: out });
    expect(result.status).toBe(130);
    expect(result.stderr).toMatch(/^intoto verify: interrupted by SIGINT while running the inspections of the root layout; stopped the command and everything it started \[E_INTERRUPTED\]$/m);
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('no temporary files after any failure (issue 18.3)', () => {
  const keys = join(root, 'keys');
  const good = layout('quick', ['sh', '-c', 'echo made > out.txt'], undefined);

  const failures: readonly { name: string; args: (tmp: string) => string[]; code: RegExp }[] = [
    { name: 'a non-empty --out', args: () => ['--out', root], code: /\[E_USAGE\]/ },
    { name: '--out where nothing can be created', args: () => ['--out', '/proc/nope/out'], code: /\[E_IO\]/ },
    { name: '--workspace where nothing can be created', args: () => ['--workspace', '/proc/nope'], code: /\[E_IO\]/ },
    { name: 'a key directory that is a file', args: () => ['--keys', good], code: /--keys .*: not a directory \[E_IO\]/ },
    { name: 'a functionary key that is not the one the layout names', args: () => ['--keys', join(root, 'wrong-keys')], code: /\[E_KEYID_MISMATCH\]/ },
  ];
  mkdirSync(join(root, 'wrong-keys'));
  writeFileSync(join(root, 'wrong-keys', 'alice'), readFileSync(join(keys, 'owner')));
  writeFileSync(join(root, 'wrong-keys', 'owner'), readFileSync(join(keys, 'owner')));

  it.each(failures)('$name: one error line, nothing left in TMPDIR', ({ name, args, code }) => {
    const tmp = privateTmp(`fail-${name.replace(/[^a-z]+/g, '-')}`);
    const result = runBin('intoto', ['pipeline', 'run', good, '--keys', keys, '--out', join(root, 'never'), ...args(tmp)], { env: { ...process.env, TMPDIR: tmp }, timeout: 20_000 });
    expect(result.status, result.stderr).not.toBe(0);
    expect(result.stderr.trimEnd().split('\n').filter((l) => l.includes('error:'))).toHaveLength(1);
    expect(result.stderr).toMatch(code);
    expect(readdirSync(tmp)).toEqual([]);
    expect(existsSync(join(root, 'never'))).toBe(false);
  });

  it('a failing step keeps the temporary workspace as evidence, and the error line names it', () => {
    const failing = layout('failing', ['sh', '-c', 'echo no space left >&2; exit 3'], undefined);
    const tmp = privateTmp('step-fails');
    const result = runBin('intoto', ['pipeline', 'run', failing, '--keys', keys, '--out', join(root, 'never2')], { env: { ...process.env, TMPDIR: tmp }, timeout: 20_000 });
    expect(result.status).toBe(1);
    const kept = readdirSync(tmp);
    expect(kept).toHaveLength(1);
    expect(result.stderr).toContain(`(workspace kept: ${join(tmp, kept[0]!)}) [E_STEP_FAILED]`);
    expect(result.stderr).toContain('no space left');
    expect(existsSync(join(root, 'never2'))).toBe(false);
  });
});

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binPath, runBin } from '../helpers/bin.js';
import { bwrapAvailable, tempDir } from '../helpers/reference.js';
import { makeProject } from '../pipeline/helpers.js';

/**
 * Issue 18, "found when tried as a new user would": each finding reproduced through the built
 * binaries, as a user meets it (items 3 and 11 have their own files: interrupt.test.ts and
 * readme-quickstart.test.ts).
 */
const haveBwrap = bwrapAvailable();
const root = tempDir('intoto-new-user-');
makeProject(root, ['alice', 'owner']);
const keys = join(root, 'keys');
// A private TMPDIR: a failing run keeps its temporary workspace as evidence, and it must not
// outlive this file.
mkdirSync(join(root, 'tmp'));
const env = { ...process.env, CI: process.env['CI'] ?? '', TMPDIR: join(root, 'tmp') };
let counter = 0;

/** A one-step layout whose step runs `run` (a JSON list), plus any extra step fields and inspections. */
function layout(run: readonly string[], extra = '', inspections = ''): string {
  const file = join(root, `layout-${counter++}.yaml`);
  writeFileSync(
    file,
    `expires_in: 30d
functionaries: {alice: keys/alice.pub}
steps:
  - name: make
    functionaries: [alice]
    run: ${JSON.stringify(run)}
    materials: ["DISALLOW *"]
    products: ["ALLOW out.txt", "DISALLOW *"]
${extra}${inspections}`,
  );
  return file;
}

function pipeline(file: string, args: readonly string[] = [], extraEnv: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string; out: string } {
  const out = join(root, `out-${counter++}`);
  const result = runBin('intoto', ['pipeline', 'run', file, '--keys', keys, '--out', out, ...args], { env: { ...env, ...extraEnv } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, out };
}

function linkEnvironment(out: string): unknown {
  const link = readdirSync(out).find((f) => f.startsWith('make.'));
  return (JSON.parse(readFileSync(join(out, link ?? 'missing'), 'utf8')) as { signed: { environment: unknown } }).signed.environment;
}

describe('1. durations: one cap everywhere, no timer overflow', () => {
  it.each([
    ['intoto run --timeout', ['run', '-n', 'x', '-k', join(keys, 'alice'), '--timeout', '31536001', '-x']],
    ['intoto verify --inspection-timeout', ['verify', '-l', 'x', '-k', join(keys, 'owner.pub'), '--inspection-timeout', '99999999']],
    ['intoto pipeline run --timeout', ['pipeline', 'run', 'x.yaml', '--keys', keys, '--timeout', '2147484000']],
  ])('%s past 365 days is bad usage (exit 2), with the rule', (_name, args) => {
    const result = runBin('intoto', args, { env });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/must be a positive number of seconds, at most 31536000 \(365 days\).*\[E_USAGE\]/);
  });

  it('a YAML timeout past Node\'s 24.8-day timer range lets the step run (it was killed after 1 ms)', () => {
    const result = pipeline(layout(['sh', '-c', 'sleep 0.2; echo ok > out.txt'], '    timeout: 2500000\n'));
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(result.out, 'out.txt'), 'utf8')).toBe('ok\n');
  });

  it('layout check refuses a YAML timeout past the cap', () => {
    const result = runBin('intoto', ['layout', 'check', layout(['true'], '    timeout: 31536001\n')], { env });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/timeout: must be a positive number of seconds, at most 31536000 \(365 days\), got "31536001" \[schema\]/);
  });
});

describe('5. key errors: one exit status per kind of fault', () => {
  it.each([
    ['a missing private key (intoto run)', ['run', '-n', 'x', '-k', join(keys, 'nobody'), '-x'], /nobody: no such file \(ENOENT\) \[E_IO\]/],
    ['a missing private key (intoto layout sign)', ['layout', 'sign', join(root, 'layout-0.yaml'), '-k', join(keys, 'nobody')], /no such file.*\[E_IO\]/],
    ['a missing functionary key (pipeline run)', ['pipeline', 'run', join(root, 'layout-0.yaml'), '--keys', join(root, 'src')], /no such file .*src\/alice \[E_IO\]/],
    ['a missing owner key (pipeline run)', ['pipeline', 'run', join(root, 'layout-0.yaml'), '--keys', keys, '--owner-key', join(keys, 'nobody')], /nobody: no such file: the layout owner's key.*\[E_IO\]/],
    ['--keys naming a file', ['pipeline', 'run', join(root, 'layout-0.yaml'), '--keys', join(keys, 'alice')], /--keys .*alice: not a directory \[E_IO\]/],
    ['--keys naming nothing', ['pipeline', 'run', join(root, 'layout-0.yaml'), '--keys', join(root, 'nosuchdir')], /--keys .*nosuchdir: no such directory \[E_IO\]/],
  ])('%s: exit 1, E_IO', (_name, args, message) => {
    const result = runBin('intoto', args, { env });
    expect(result.stderr).toMatch(message);
    expect(result.status).toBe(1);
  });

  it('a missing public key (intoto verify) is the same: exit 1, E_IO', () => {
    const result = runBin('intoto', ['verify', '-l', 'x', '-k', join(keys, 'nobody.pub')], { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/FAIL E_IO: .*nobody\.pub: no such file/);
  });
});

describe('6. --json: every outcome is one JSON document on stdout', () => {
  const huge = join(root, 'huge.yaml');
  writeFileSync(huge, `readme: "${'x'.repeat(4 * 1024 * 1024)}"\n`);
  it.each([
    ['layout check, a missing file', ['layout', 'check', join(root, 'missing.yaml'), '--json'], 'E_IO'],
    ['layout check, an oversized file', ['layout', 'check', huge, '--json'], 'E_FILE_TOO_LARGE'],
    ['pipeline run, a missing file', ['pipeline', 'run', join(root, 'missing.yaml'), '--keys', keys, '--json'], 'E_IO'],
    ['pipeline run, an oversized file', ['pipeline', 'run', huge, '--keys', keys, '--json'], 'E_FILE_TOO_LARGE'],
    ['pipeline run, bad usage', ['pipeline', 'run', huge, '--keys', keys, '--json', '--timeout', 'soon'], 'E_USAGE'],
    ['verify, a missing layout key', ['verify', '-l', 'x', '-k', 'nobody.pub', '--json'], 'E_IO'],
  ])('%s', (_name, args, code) => {
    const result = runBin('intoto', args, { env });
    expect(result.status).not.toBe(0);
    const document = JSON.parse(result.stdout) as { passed: boolean; failure: { code: string; message: string } };
    expect(document.passed).toBe(false);
    expect(document.failure.code).toBe(code);
  });

  it('scan-model (and its alias scan-pickle) lists an unreadable path as an entry, beside the verdicts on the others', () => {
    for (const command of ['scan-model', 'scan-pickle']) {
      const result = runBin('intoto', [command, join(root, 'missing.pkl'), join(root, 'src', 'hello.txt'), '--json'], { env });
      expect(result.status).toBe(1);
      const report = JSON.parse(result.stdout) as { safe: boolean; files: { file: string; safe: boolean; code: string | null }[] };
      expect(report.safe).toBe(false);
      expect(report.files.map((e) => [e.safe, e.code])).toEqual([
        [false, 'E_IO'],
        [true, null],
      ]);
    }
  });
});

describe('7 and 8: messages and help speak our language, one way', () => {
  it('two YAML documents: our words, not the parser library\'s advice', () => {
    const file = join(root, 'two.yaml');
    writeFileSync(file, 'steps: []\n---\nsteps: []\n');
    const result = runBin('intoto', ['layout', 'check', file], { env });
    expect(result.stdout).toMatch(/two\.yaml:2:1: error: a second YAML document starts here .*\[yaml-multiple-documents\]/);
    expect(result.stdout).not.toMatch(/parseAllDocuments|YAML\.parse/);
  });

  const HELPS: readonly string[][] = [
    ['keygen'], ['sign'], ['run'], ['record', 'start'], ['record', 'stop'], ['mock'], ['match-products'], ['verify'],
    ['layout', 'check'], ['layout', 'sign'], ['pipeline', 'run'], ['pipeline', 'export'], ['pipeline', 'publish'], ['pipeline', 'step'], ['pipeline', 'verify'],
    ['scan-model'], ['scan-pickle'],
    ['model', 'sign'], ['model', 'verify'], ['data', 'check'], ['trace'], ['push'], ['pull'], ['versions'],
  ];
  it.each(HELPS)('intoto %s --help: usage first, -h first among the options, each default said once', (...command) => {
    const result = runBin('intoto', [...command, '--help'], { env });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^usage: /);
    expect(result.stdout).toMatch(/\nOptions:\n {2}-h, --help {12}show this help message and exit\n/);
    expect(result.stdout).not.toMatch(/\(default: \[\]\)|output the version number|^Usage:/m);
    for (const entry of result.stdout.split(/\n(?= {2}-)/)) expect(entry.match(/default/gi)?.length ?? 0, entry).toBeLessThanOrEqual(1);
  });

  it('help does not describe what a command lacks', () => {
    const match = runBin('intoto', ['match-products', '--help'], { env }).stdout;
    expect(match).not.toMatch(/sandbox|the command's output/);
    const start = runBin('intoto', ['record', 'start', '--help'], { env }).stdout;
    expect(start).not.toMatch(/after the command has exited|before the command runs|writable directory in the sandbox/);
  });

  it('intoto layout --help and intoto pipeline --help describe their group', () => {
    expect(runBin('intoto', ['layout', '--help'], { env }).stdout).toMatch(/^usage: intoto layout <check\|sign>/);
    expect(runBin('intoto', ['pipeline', '--help'], { env }).stdout).toMatch(/^usage: intoto pipeline <run\|export\|publish\|step\|verify>/);
  });

  it('messages start with the command as typed', () => {
    expect(runBin('intoto', ['verify', '-l', 'x'], { env }).stderr).toMatch(/^intoto verify: error: /);
    expect(runBin('intoto-verify', ['-l', 'x'], { env }).stderr).toMatch(/^intoto-verify: error: /);
    expect(runBin('intoto', ['pipeline', 'run', 'x.yaml'], { env }).stderr).toMatch(/^intoto pipeline run: error: /);
  });

  it('an error is one line; -v adds details without repeating it', () => {
    const file = join(root, 'two-errors.yaml');
    writeFileSync(file, 'readme: !x a\nsteps: !y []\n');
    const plain = runBin('intoto', ['layout', 'sign', file, '-k', join(keys, 'owner')], { env });
    expect(plain.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(plain.stderr).toMatch(/tag !x refused.*\(and 1 more error\(s\)\) \[E_LAYOUT_SOURCE\]$/m);
    const verbose = runBin('intoto', ['layout', 'sign', file, '-k', join(keys, 'owner'), '-v'], { env });
    const lines = verbose.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/tag !y refused/);
  });
});

describe('9. a failed inspection says why, in its own words', () => {
  it('the message ends with the inspection\'s last output line; --json has its last lines', () => {
    const file = layout(['sh', '-c', 'echo ok > out.txt'], '', 'inspections:\n  - name: scan\n    run: [sh, -c, "echo scanning; echo \'out.txt: UNSAFE: imports os.system\' >&2; exit 1"]\n    materials: ["ALLOW *"]\n    products: ["ALLOW *"]\n');
    const result = pipeline(file);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/inspection 'scan': .* exited with 1: out\.txt: UNSAFE: imports os\.system \(workspace kept: [^)]+\) \[E_INSPECTION_FAILED\]/);
    const json = pipeline(file, ['--json']);
    const report = JSON.parse(json.stdout) as { verification: { layout: { inspections: { output: { stdout: string[]; stderr: string[] } }[] } } };
    expect(report.verification.layout.inspections[0]?.output).toEqual({ stdout: ['scanning'], stderr: ['out.txt: UNSAFE: imports os.system'] });
  });
});

describe('10. a step\'s environment variables, network and devices', () => {
  it('env: passes the named variable (its name, never its value, in the link); the grants are in the signed layout', () => {
    const result = pipeline(layout(['sh', '-c', 'echo "$MODEL_CACHE" > out.txt'], '    env: [MODEL_CACHE]\n    devices: [/dev/null]\n'), [], { MODEL_CACHE: '/data/cache-42' });
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(result.out, 'out.txt'), 'utf8')).toBe('/data/cache-42\n');
    expect(linkEnvironment(result.out)).toEqual({ devices: ['/dev/null'], env: ['MODEL_CACHE'] });
    const layoutText = readFileSync(join(result.out, 'root.layout'), 'utf8');
    expect(layoutText).toContain('Step grants (pipeline run gives these steps more than the sandbox default):\\n  make: env MODEL_CACHE; devices /dev/null');
    expect(layoutText).not.toContain('cache-42');
  });

  it('refused before anything runs: a variable that is not set, a device this machine lacks', () => {
    const unset = pipeline(layout(['sh', '-c', 'echo > out.txt'], '    env: [NOT_SET_ANYWHERE_42]\n'));
    expect(unset.status).toBe(1);
    expect(unset.stderr).toMatch(/step 'make' asks for the environment variable NOT_SET_ANYWHERE_42, which is not set here \[E_STEP_ENVIRONMENT\]/);
    const device = pipeline(layout(['sh', '-c', 'echo > out.txt'], '    devices: [/dev/no-such-gpu9]\n'));
    expect(device.status).toBe(1);
    expect(device.stderr).toMatch(/asks for the device \/dev\/no-such-gpu9, which this machine does not have \[E_STEP_ENVIRONMENT\]/);
    expect(existsSync(device.out)).toBe(false);
  });

  it.skipIf(!haveBwrap)('network: true lets the step connect; without it the sandbox has no network', async () => {
    const server = createServer((socket) => socket.end()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    const probe = ['python3', '-c', `import socket\ntry:\n socket.create_connection(("127.0.0.1", ${port}), 3)\n r = "connected"\nexcept OSError:\n r = "failed"\nopen("out.txt", "w").write(r)`];
    // Asynchronously: the listener lives in this process's event loop.
    const go = (file: string, out: string): Promise<string> =>
      new Promise((resolveRun) => {
        execFile(process.execPath, [binPath('intoto'), 'pipeline', 'run', file, '--keys', keys, '--out', out, '--sandbox', 'bwrap'], { env }, () =>
          resolveRun(existsSync(join(out, 'out.txt')) ? readFileSync(join(out, 'out.txt'), 'utf8') : 'no output'),
        );
      });
    try {
      const withNet = join(root, 'out-net');
      expect(await go(layout(probe, '    network: true\n'), withNet)).toBe('connected');
      expect(linkEnvironment(withNet)).toEqual({ network: true });
      expect(await go(layout(probe), join(root, 'out-no-net'))).toBe('failed');
      expect(linkEnvironment(join(root, 'out-no-net'))).toEqual({});
    } finally {
      server.close();
    }
  });
});

describe('issue 19: a 3.9 MB file of broken lines, through every command that reads YAML', () => {
  const heavy = join(root, 'heavy.yaml');
  writeFileSync(heavy, `steps:\n  - name: x\n   bad: [unclosed\n${'x: ]\n'.repeat(780_000)}`);
  it('layout check lists 100 problems and one line that says it stopped', () => {
    const result = runBin('intoto', ['layout', 'check', heavy], { env });
    expect(result.status).toBe(1);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(102);
    expect(lines[100]).toMatch(/stopped reading after 100 problem\(s\); there may be more: fix the ones above first \[too-many-errors\]$/);
  });
  it.each([
    ['layout sign', ['layout', 'sign', heavy, '-k', join(keys, 'owner')]],
    ['pipeline run', ['pipeline', 'run', heavy, '--keys', keys]],
  ])('%s stops with one line that counts the others', (_name, args) => {
    const result = runBin('intoto', args, { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^intoto [a-z ]+: error: .*heavy\.yaml:\d+:\d+: .* \(and more than 99 other error\(s\); run intoto layout check\) \[E_LAYOUT_SOURCE\]\n$/);
  });
});

describe('12. small ones', () => {
  it('--force replaces an earlier output; without it the run is refused before any step', () => {
    const file = layout(['sh', '-c', 'echo new > out.txt']);
    const out = join(root, 'out-force');
    expect(runBin('intoto', ['pipeline', 'run', file, '--keys', keys, '--out', out, '-q'], { env }).status).toBe(0);
    writeFileSync(join(out, 'stale.link'), 'old');
    const refused = runBin('intoto', ['pipeline', 'run', file, '--keys', keys, '--out', out], { env });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/is not empty: give a new or empty directory, or --force to replace it/);
    const forced = runBin('intoto', ['pipeline', 'run', file, '--keys', keys, '--out', out, '--force'], { env });
    expect(forced.status, forced.stderr).toBe(0);
    expect(readdirSync(out)).not.toContain('stale.link');
    expect(readFileSync(join(out, 'out.txt'), 'utf8')).toBe('new\n');
  });

  it('attack on your own files: --force never deletes a directory that is not an earlier output, or that holds the keys or the current directory', () => {
    const file = layout(['sh', '-c', 'echo new > out.txt']);
    const notOutput = join(root, 'my-data');
    mkdirSync(notOutput);
    writeFileSync(join(notOutput, 'thesis.tex'), 'years of work');
    const data = runBin('intoto', ['pipeline', 'run', file, '--keys', keys, '--out', notOutput, '--force'], { env });
    expect(data.status).toBe(2);
    expect(data.stderr).toMatch(/--force replaces only an earlier pipeline output, and .*my-data holds no root\.layout/);
    expect(readFileSync(join(notOutput, 'thesis.tex'), 'utf8')).toBe('years of work');
    writeFileSync(join(root, 'root.layout'), '{}');
    const self = runBin('intoto', ['pipeline', 'run', file, '--keys', keys, '--out', root, '--force'], { env, cwd: join(root, 'src') });
    expect(self.status).toBe(2);
    expect(self.stderr).toMatch(/--force would delete .*, which is inside .*: choose another --out/);
    expect(existsSync(join(root, 'keys', 'alice'))).toBe(true);
  });

  it('--link-dir that does not exist says so, instead of "link missing"', () => {
    const result = runBin('intoto', ['verify', '-l', 'root.layout', '-k', join(keys, 'owner.pub'), '--link-dir', join(root, 'nonexistent')], { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`FAIL E_IO: --link-dir ${join(root, 'nonexistent')}: no such directory\n`);
  });

  it('a misspelt field gets a did-you-mean', () => {
    const file = join(root, 'typo.yaml');
    writeFileSync(file, readFileSync(layout(['true']), 'utf8').replace('functionaries: {', 'functionaires: {'));
    expect(runBin('intoto', ['layout', 'check', file], { env }).stdout).toContain('unknown field "functionaires" (did you mean "functionaries"?)');
  });
});

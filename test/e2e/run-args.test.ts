import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseArguments, type Parsed, type ParserSpec } from '../../src/cli/argparse.js';
import { MOCK_SPEC } from '../../src/cli/mock.js';
import { START_SPEC, STOP_SPEC } from '../../src/cli/record.js';
import { RUN_SPEC } from '../../src/cli/run.js';
import { commandOf, refuseRepeatedLists } from '../../src/cli/step-options.js';
import { binPath, runBin } from '../helpers/bin.js';
import { REFERENCE_PYTHON, referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { cleanEnv, makeKey } from './helpers/step.js';

/**
 * Command lines, table-driven against the reference's own argparse parsers (in-toto 1.3.1's
 * create_parser, run by /usr/bin/python3): every line the reference parses must parse here to
 * the same values, every line it refuses must be refused with its message, except the lines
 * listed as STRICTER, where argparse silently does something the user did not mean and we
 * refuse with a clear usage error.
 */

type Outcome = { ok: Record<string, unknown> } | { error: string } | { exit: number };

const HELPER = new URL('./helpers/parse_reference.py', import.meta.url).pathname;
const haveReference = referenceAvailable();

function reference(tool: 'run' | 'record' | 'mock', cases: readonly (readonly string[])[]): Outcome[] {
  const result = run(REFERENCE_PYTHON, [HELPER, tool], { input: JSON.stringify(cases) });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as Outcome[];
}

const list = (p: Parsed, dest: string): unknown => (p.values.get(dest) as string[] | undefined) ?? null;
const value = (p: Parsed, dest: string): unknown => p.values.get(dest) ?? null;

function ours(spec: ParserSpec, argv: readonly string[], namespace: (p: Parsed) => Record<string, unknown>): Outcome {
  try {
    const parsed = parseArguments(spec, argv);
    if (parsed.action !== undefined) return { exit: 0 };
    refuseRepeatedLists(parsed, spec.options);
    return { ok: namespace(parsed) };
  } catch (error) {
    if (error instanceof UsageError) return { error: error.message };
    throw error;
  }
}

const common = (p: Parsed): Record<string, unknown> => ({
  step_name: value(p, 'stepName'),
  key: value(p, 'key'),
  key_type: value(p, 'keyType') ?? 'rsa',
  password: value(p, 'password'),
  gpg: value(p, 'gpg'),
  gpg_home: value(p, 'gpgHome'),
  exclude_patterns: list(p, 'exclude'),
  base_path: value(p, 'basePath'),
  lstrip_paths: list(p, 'lstripPaths'),
  verbose: p.values.get('verbose') === true,
  quiet: p.values.get('quiet') === true,
});

const runNamespace = (p: Parsed): Record<string, unknown> => ({
  ...common(p),
  materials: list(p, 'materials'),
  products: list(p, 'products'),
  record_streams: p.values.get('recordStreams') === true,
  no_command: p.values.get('noCommand') === true,
  metadata_directory: value(p, 'metadataDirectory'),
  link_cmd: commandOf(p, 'intoto-run'),
});

/** in-toto-run command lines: [argv, expected difference] (undefined: identical to the reference). */
const RUN_CASES: readonly (readonly [readonly string[], RegExp?])[] = [
  [['-n', 'a', '-k', 'k', '--', 'echo', 'hi']],
  [['-n', 'a', '-k', 'k', 'echo', 'hi']],
  [['-n', 'a', '-k', 'k', '-m', 'x', 'y', 'echo', 'hi']],
  [['-n', 'a', '-k', 'k', '-m', 'x', '--', 'echo', 'hi']],
  [['-n', 'a', '-k', 'k', '--', 'echo', '--', 'x']],
  [['-n', 'a', '-k', 'k', '--', '-x']],
  [['-n', 'a', '-k', 'k', '--', 'echo', 'hi', '-n', 'b']],
  [['-n', 'a', '-k', 'k', '-x']],
  [['-n', 'a', '-k', 'k', '-x', '--', 'echo', 'hi']],
  [['-n', 'a', '-k', 'k', '-P', '--', 'echo']],
  [['-n', 'a', '-k', 'k', '-P', 'pw', '--', 'echo']],
  [['-n', 'a', '-k', 'k', '-Ppw', '--', 'echo']],
  [['-n', 'a', '-k', 'k', '-P=pw', '-x']],
  [['-n', 'a', '-k', 'k', '-P', '-x']],
  [['-n', 'a', '-k', 'k', '-P', '-m', 'x', '--', 'true']],
  [['-n', 'a', '-k', 'k', '-P', '--password', 'y', '-x']],
  [['-n', 'a', '-k', 'k', '-P', '-', '-x']],
  [['-na', '-kk', '-x']],
  [['-n=a', '-k', 'k', '-x']],
  [['-sxna', '-k', 'k']],
  [['-n', 'a', '-k', 'k', '-sx']],
  [['-n', 'a', '-k', 'k', '-sz']],
  [['--step-name=a', '--key', 'k', '-x']],
  [['--step-name=', '--key', 'k', '-x']],
  [['--step', 'a', '-k', 'k', '-x']],
  [['-n', 'a', '-k', 'k', '--meta', 'd', '-x']],
  [['-n', 'a', '-k', 'k', '--no-c']],
  [['-n', 'a', '-k', 'k', '--record-streams=x', '-x']],
  [['-n', 'a', '-k', 'k', '--gp', '-x']],
  [['-n', 'a', '-k', 'k', '--gpg', '-x']],
  [['-n', 'a', '-k', 'k', '-g', 'ABCD', '-x']],
  [['-n', 'a', '-k', 'k', '-t', 'ed25519', '-x']],
  [['-n', 'a', '-k', 'k', '-t', 'foo', '-x']],
  [['-n', 'a', '-k', 'k', '-t', 'ecdsa', '-t', 'rsa', '-x']],
  [['-n', 'a', '-k', 'k', '-x', '-m']],
  [['-n', 'a', '-k', 'k', '-m', '-x']],
  [['-n', 'a', '-k', 'k', '-m', '-1', '-x']],
  [['-n', 'a', '-k', 'k', '-m', '-a b', '-x']],
  [['-n', 'a', '-k', 'k', '-m', '-', '-x']],
  [['-n', '-k', 'k', '-x']],
  [['-n', 'a', '-k']],
  [['-k', 'k', '-x']],
  [[]],
  [['-n', 'a', '-k', 'k', '-vq', '-x']],
  [['-n', 'a', '-k', 'k', '-v', '-x']],
  [['-n', 'a', '-k', 'k', '-x', '--foo']],
  [['-n', 'a', '-k', 'k', '-s', '-x', '--exclude', '*.a', 'b', '-d', 'out']],
  [['-n', 'a', '-k', 'k', '-m', 'a', 'b', '-p', 'c', '--', 'ls']],
  [['-n', 'a', '-k', 'k', '--lstrip-paths', 'a/', 'b/', '-x']],
  [['-n', 'a', '-k', 'k', '--base-path', 'b', '--base-path', 'c', '-x']],
  [['-n', 'a', '-n', 'b', '-k', 'k', '-x']],
  [['-n', 'a', '-k', 'k', '-mx', '-p', 'y', '-x']],
  [['-n', '', '-k', 'k', '-x']],
  [['-n', 'a', '-k', 'k', '-h']],
  [['-h', '--foo']],
  [['--version']],
  [['-n', 'a', '-k', 'k', '--', '--version']],
  // Stricter, on purpose:
  [['-n', 'a', '-k', 'k', 'echo', '-n', 'hi'], /option -n comes after the command word 'echo'/],
  [['-n', 'a', 'echo', '-k', 'k'], /option -k comes after the command word 'echo'/],
  [['-n', 'a', '-k', 'k', 'echo', '--', '-x'], /command words both before and after '--'/],
  [['-n', 'a', '-k', 'k', '-m', 'a', '-m', 'b', '-x'], /-m\/--materials given more than once/],
  [['-n', 'a', '-k', 'k', '-x', '-p', '.', '-p', 'sub'], /-p\/--products given more than once/],
  [['-n', 'a', '-k', 'k', '--materials=x', 'y', '-x'], /option -x comes after the command word 'y'/],
];

describe.skipIf(!haveReference)('intoto-run parses command lines as in-toto-run 1.3.1 does', () => {
  const expected = reference(
    'run',
    RUN_CASES.map(([argv]) => argv),
  );
  RUN_CASES.forEach(([argv, stricter], i) => {
    it(`${JSON.stringify(argv)}${stricter ? ' (stricter)' : ''}`, () => {
      const got = ours(RUN_SPEC, argv, runNamespace);
      const want = expected[i]!;
      if (stricter) {
        expect(want).toHaveProperty('ok');
        expect(got).toEqual({ error: expect.stringMatching(stricter) as string });
      } else if ('ok' in want) {
        expect(got).toEqual({ ok: { ...want.ok } });
      } else {
        expect(got).toEqual(want);
      }
    });
  });
});

const RECORD_CASES: readonly (readonly string[])[] = [
  ['start', '-n', 'a', '-k', 'k', '-m', 'x', 'y'],
  ['stop', '-n', 'a', '-k', 'k', '-p', '.', '-d', 'out'],
  ['stop', '-n', 'a', '-k', 'k', '-m', 'x'],
  ['start', '-n', 'a', '-k', 'k', '-p', 'x'],
  ['start', '-na', '-kk', '-Ppw', '--exclude', '*.x', '--base-path', 'b', '--lstrip-paths', 'p/'],
  ['start', '-n', 'a', '-k', 'k', 'extra'],
  ['stop', '-n', 'a', '-k', 'k', '-vq'],
  ['stop', '-k', 'k'],
  ['start', '-n', 'a', '--st', 'b', '-k', 'k'],
  ['start', '-h'],
];

describe.skipIf(!haveReference)('intoto-record parses command lines as in-toto-record 1.3.1 does', () => {
  const expected = reference('record', RECORD_CASES);
  RECORD_CASES.forEach((argv, i) => {
    it(JSON.stringify(argv), () => {
      const [sub, ...rest] = argv;
      const spec = sub === 'start' ? START_SPEC : STOP_SPEC;
      const got = ours(spec, rest, (p) => ({
        command: sub,
        ...common(p),
        ...(sub === 'start' ? { materials: list(p, 'materials') } : { products: list(p, 'products'), metadata_directory: value(p, 'metadataDirectory') }),
      }));
      const want = expected[i]!;
      expect(got).toEqual('ok' in want ? { ok: { ...want.ok } } : want);
    });
  });
});

const MOCK_CASES: readonly (readonly string[])[] = [
  ['-n', 'foo', '--', 'touch', 'bar'],
  ['--name', 'foo', 'touch', 'bar'],
  ['--na=foo', '--', 'sh', '-c', 'x -- y'],
  ['-n', 'foo'],
  ['touch', 'bar'],
];

describe.skipIf(!haveReference)('intoto-mock parses command lines as in-toto-mock 1.3.1 does', () => {
  const expected = reference('mock', MOCK_CASES);
  MOCK_CASES.forEach((argv, i) => {
    it(JSON.stringify(argv), () => {
      const want = expected[i]!;
      const got = ours(MOCK_SPEC, argv, (p) => ({ name: value(p, 'name'), link_cmd: commandOf(p, 'intoto-mock') }));
      if ('ok' in want && (want.ok['link_cmd'] as unknown[]).length > 0) expect(got).toEqual({ ok: { ...want.ok } });
      // argparse requires the command (nargs '+'); the CLI checks it after parsing.
      else if ('ok' in got) expect(got.ok['link_cmd']).toEqual([]);
      else expect(got).toEqual(want);
    });
  });
});

describe('intoto-run command lines through the binary', () => {
  const root = tempDir('intoto-e2e-args-');
  const key = makeKey(join(root, 'keys'));
  const cases: readonly [string, readonly string[], RegExp][] = [
    ['no command and no -x', ['-n', 'a', '-k', key, '-p', '.'], /no command given: put it after '--'/],
    ['a command swallowed by -m', ['-n', 'a', '-k', key, '-m', 'x', 'make'], /words after -m, -p, --exclude and --lstrip-paths are taken as paths/],
    ['-x with a command', ['-n', 'a', '-k', key, '-x', '--', 'touch', 'ran'], /-x\/--no-command and a command \(touch ran\) exclude each other/],
    ['GPG', ['-n', 'a', '-g', '-x'], /GPG keys \(-g\/--gpg\) are not supported/],
    ['no key', ['-n', 'a', '-x'], /-k\/--key \(or --signing-key\) is required/],
    ['a bad --timeout', ['-n', 'a', '-k', key, '--timeout', '0', '-x'], /--timeout must be a positive number of seconds, at most 31536000 \(365 days\)/],
    ['a --timeout past 365 days (Node timers overflow past 24.8 days)', ['-n', 'a', '-k', key, '--timeout', '31536001', '-x'], /--timeout must be a positive number of seconds, at most 31536000/],
    ['a --device that is not under /dev', ['-n', 'a', '-k', key, '--device', '/etc/passwd', '-x'], /--device: "\/etc\/passwd" is not a device path/],
    ['a bad --env name', ['-n', 'a', '-k', key, '--env', 'A=B', '-x'], /--env: "A=B" is not an environment variable name/],
    ['an unknown --hash', ['-n', 'a', '-k', key, '--hash', 'md5', '-x'], /invalid choice: 'md5' \(choose from 'sha256', 'sha512'\)/],
    ['an unknown --sandbox', ['-n', 'a', '-k', key, '--sandbox', 'docker', '-x'], /invalid choice: 'docker'/],
  ];
  for (const [title, args, message] of cases) {
    it(`usage error (exit 2, one line, nothing written): ${title}`, () => {
      const ws = join(root, title.replace(/\W+/g, '-'));
      mkdirSync(ws);
      const result = runBin('intoto-run', args, { cwd: ws, env: cleanEnv() });
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toContain('[E_USAGE]');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(readdirSync(ws)).toEqual([]);
    });
  }

  it('-P alone reads the password (here from standard input); a wrong one fails after the command with no link', () => {
    const ws = join(root, 'password');
    mkdirSync(ws);
    const made = runBin('intoto-keygen', ['-p', '-t', 'ed25519', join(ws, 'enc')], { input: 'secret\n' });
    expect(made.status, made.stderr).toBe(0);
    const ok = runBin('intoto-run', ['-n', 'signed', '-k', 'enc', '-P', '-x'], { cwd: ws, env: cleanEnv(), input: 'secret\n' });
    expect(ok.status, ok.stderr).toBe(0);
    const wrong = runBin('intoto-run', ['-n', 'wrong', '-k', 'enc', '-P', '--', 'touch', 'ran'], { cwd: ws, env: cleanEnv(), input: 'nope\n' });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/the command ran \(exit 0\), but no link was written: .*\[E_KEY_PASSWORD\]/);
    expect(readdirSync(ws).filter((f) => f.endsWith('.link'))).toEqual([expect.stringMatching(/^signed\./)]);
  });

  it("shows the command's output without -s (in-toto-run discards it) and hides it with -q", () => {
    const ws = join(root, 'output');
    mkdirSync(ws);
    const command = ['--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2'];
    const shown = runBin('intoto-run', ['-n', 'shown', '-k', key, ...command], { cwd: ws, env: cleanEnv() });
    expect(shown.status, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('to-stdout');
    expect(shown.stderr).toContain('to-stderr');
    const quiet = runBin('intoto-run', ['-n', 'quiet', '-k', key, '-q', ...command], { cwd: ws, env: cleanEnv() });
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stdout).toBe('');
    expect(quiet.stderr).toBe('');
  });

  it("loses none of a command's output when it exits, even through a slow pipe", () => {
    // intoto-run exits as soon as the link is written (process.exit, after flushing): 2 MB on
    // each stream, read by a reader that starts late, must arrive whole.
    const ws = join(root, 'big-output');
    mkdirSync(ws);
    const bin = [process.execPath, binPath('intoto-run'), '-n', 'big', '-k', key, '--', 'sh', '-c', 'head -c 2000000 /dev/zero; head -c 2000000 /dev/zero >&2'];
    const quoted = bin.map((word) => `'${word}'`).join(' ');
    // Count only the NUL bytes of each stream (our own messages on stderr are text).
    const count = `(sleep 0.3; tr -d -c '\\000' | wc -c)`;
    const script = `{ ${quoted} 2>&1 1>&3 | ${count} >&2; } 3>&1 | ${count}`;
    const result = spawnSync('sh', ['-c', script], { cwd: ws, env: cleanEnv(), encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('2000000');
    expect(result.stderr.trim()).toBe('2000000');
  });

  it('-h prints the options, ours included, and exits 0', () => {
    const result = runBin('intoto-run', ['-h']);
    expect(result.status).toBe(0);
    for (const flag of ['--step-name', '--materials', '--products', '--record-streams', '--no-command', '--lstrip-paths', '--metadata-directory', '--use-dsse', '--timeout', '--sandbox', '--env', '--share-net', '--hash']) {
      expect(result.stdout).toContain(flag);
    }
  });
});

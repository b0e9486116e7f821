import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reshapeArgv, resolveLongFlag, type Shape } from '../../src/cli/argv-shape.js';
import { parseArguments } from '../../src/cli/argparse.js';
import { RUN_SPEC } from '../../src/cli/run.js';
import { InTotoError } from '../../src/errors.js';
import { generateSigningKey, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { runBin } from '../helpers/bin.js';
import { REFERENCE_PYTHON, referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { key, layoutJson, writeSigned } from '../verify/chain.js';

/**
 * Issue 17 (1) and issue 18 (4): command lines read the way Python's argparse reads them.
 * - Unique prefixes of long options, for every program (intoto-run and intoto-record had them;
 *   intoto-verify, intoto-sign, intoto-keygen and the `intoto` subcommands now too), an
 *   ambiguous prefix a usage error listing the candidates, and every command line of the
 *   reference's own parsers (in-toto 1.3.1, run by /usr/bin/python3) accepted or refused as
 *   there, with the same meaning.
 * - A list option before a positional leaves the positional alone
 *   (`intoto layout sign -k keys/owner pipeline.yaml`).
 */

const haveReference = referenceAvailable();
const HELPER = new URL('../e2e/helpers/parse_reference.py', import.meta.url).pathname;

function reference(tool: string, cases: readonly (readonly string[])[]): ({ ok: Record<string, unknown> } | { error: string })[] {
  const result = run(REFERENCE_PYTHON, [HELPER, tool], { input: JSON.stringify(cases) });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as ({ ok: Record<string, unknown> } | { error: string })[];
}

const SHAPE: Shape = {
  options: [
    { long: '--layout', short: '-l', required: true, optional: false, variadic: false },
    { long: '--layout-keys', short: '-k', required: true, optional: false, variadic: true },
    { long: '--layout-threshold', short: undefined, required: true, optional: false, variadic: false },
    { long: '--link-dir', short: undefined, required: true, optional: false, variadic: false },
    { long: '--verbose', short: '-v', required: false, optional: false, variadic: false },
  ],
  requiredPositionals: 0,
  referenceFlags: new Set(['--layout', '--layout-keys', '--link-dir', '--verbose']),
};

function usageMessage(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InTotoError);
    expect((error as InTotoError).code).toBe('E_USAGE');
    return (error as InTotoError).message;
  }
  throw new Error('no usage error');
}

describe('abbreviated long options (argv-shape.ts)', () => {
  it('an exact flag wins over the longer ones it prefixes; a unique prefix stands for its option', () => {
    expect(resolveLongFlag('--layout', SHAPE)).toBe('--layout');
    expect(resolveLongFlag('--layout-k', SHAPE)).toBe('--layout-keys');
    expect(resolveLongFlag('--li', SHAPE)).toBe('--link-dir');
    expect(resolveLongFlag('--nope', SHAPE)).toBeUndefined();
    expect(reshapeArgv(['--layout-key', 'a.pub', '--link=.', '--verb'], SHAPE)).toEqual(['--layout-keys', 'a.pub', '--link-dir=.', '--verbose']);
  });

  it('an ambiguous prefix is a usage error listing every candidate', () => {
    expect(usageMessage(() => resolveLongFlag('--la', SHAPE))).toBe('ambiguous option: --la could match --layout, --layout-keys, --layout-threshold');
  });

  it("a prefix that fits one reference option means it, even when one of ours fits too (the reference's command lines keep their meaning)", () => {
    expect(resolveLongFlag('--layout-', SHAPE)).toBe('--layout-keys');
    const plain: Shape = { options: SHAPE.options, requiredPositionals: 0 };
    expect(usageMessage(() => resolveLongFlag('--layout-', plain))).toMatch(/could match --layout-keys, --layout-threshold/);
  });

  it('the argparse-compatible parser (intoto-run) follows the same reference-first rule', () => {
    // --s fits --step-name (1.3.1), --signing-key (2.x/3.x) and ours: ambiguous, as in in-toto 2.x.
    expect(usageMessage(() => parseArguments(RUN_SPEC, ['--s', 'a', '-k', 'k', '-x']))).toMatch(/ambiguous option: --s could match/);
    // --sh fits only --share-net (ours): fine.
    expect(parseArguments(RUN_SPEC, ['-n', 'a', '-k', 'k', '--sh', '-x']).values.get('shareNet')).toBe(true);
    // --me: --metadata-directory (1.3.1), though no option of ours starts so either.
    expect(parseArguments(RUN_SPEC, ['-n', 'a', '-k', 'k', '--me', 'd', '-x']).values.get('metadataDirectory')).toBe('d');
  });
});

describe('list options leave the positionals the command needs (argv-shape.ts)', () => {
  const shape: Shape = {
    options: [
      { long: '--key', short: '-k', required: true, optional: false, variadic: true },
      { long: '--output', short: '-o', required: true, optional: false, variadic: false },
      { long: '--use-dsse', short: undefined, required: false, optional: false, variadic: false },
    ],
    requiredPositionals: 1,
  };

  it('gives back the last value of the last list, and keeps the rest of the command line', () => {
    expect(reshapeArgv(['-k', 'keys/owner', 'pipeline.yaml'], shape)).toEqual(['-k', 'keys/owner', '--', 'pipeline.yaml']);
    expect(reshapeArgv(['-k', 'a', 'b', 'pipeline.yaml', '-o', 'x'], shape)).toEqual(['-k', 'a', 'b', '-o', 'x', '--', 'pipeline.yaml']);
    expect(reshapeArgv(['--use-dsse', '-k', 'a', 'p.yaml'], shape)).toEqual(['--use-dsse', '-k', 'a', '--', 'p.yaml']);
  });

  it('changes nothing when the positional is there, or when a list has only its one value', () => {
    expect(reshapeArgv(['p.yaml', '-k', 'a', 'b'], shape)).toEqual(['p.yaml', '-k', 'a', 'b']);
    expect(reshapeArgv(['-k', 'a'], shape)).toEqual(['-k', 'a']);
    expect(reshapeArgv(['-k', 'a', '-o', 'x'], shape)).toEqual(['-k', 'a', '-o', 'x']);
    expect(reshapeArgv(['-k=a', 'p.yaml'], shape)).toEqual(['-k=a', 'p.yaml']);
  });
});

describe('the commands, end to end', () => {
  const root = tempDir('intoto-abbrev-');
  const owner = generateSigningKey({ type: 'ed25519' });
  writeKeyPair(owner, join(root, 'owner'));

  it('intoto layout sign -k keys/owner pipeline.yaml signs pipeline.yaml with keys/owner', () => {
    const dir = join(root, 'sign');
    mkdirSync(join(dir, 'keys'), { recursive: true });
    writeKeyPair(owner, join(dir, 'keys', 'owner'));
    writeKeyPair(generateSigningKey({ type: 'ed25519' }), join(dir, 'keys', 'alice'));
    const yaml = join(dir, 'pipeline.yaml');
    writeFileSync(
      yaml,
      'expires_in: 30d\nfunctionaries: {alice: keys/alice.pub}\nsteps:\n  - name: build\n    functionaries: [alice]\n    run: touch out\n    products: ["CREATE out", "DISALLOW *"]\n',
    );
    const result = runBin('intoto', ['layout', 'sign', '-k', 'keys/owner', 'pipeline.yaml'], { cwd: dir });
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(join(dir, 'root.layout'))).toBe(true);
    const check = runBin('intoto', ['layout', 'check', '-k', 'keys/owner.pub', 'pipeline.yaml'], { cwd: dir });
    expect(check.status, check.stderr + check.stdout).toBe(0);
  });

  describe.skipIf(!haveReference)('accepted and refused as the reference parsers accept and refuse them', () => {
    const dir = join(root, 'chain');
    mkdirSync(dir);
    writeSigned(join(dir, 'root.layout'), layoutJson([]), [key(0)]);
    writeKeyPair(key(0), join(dir, 'alice'));
    const L = 'root.layout';
    const K = 'alice.pub';
    const VERIFY: readonly (readonly string[])[] = [
      ['--layout', L, '--layout-key', K],
      ['--verbose', '--layout', L, '--layout-keys', K],
      ['--lay', L, '-k', K],
      ['-l', L, '--layout-', K],
      ['-l', L, '--layout-k=alice.pub'],
      ['-l', L, '-k', K, '--link', '.'],
      ['-l', L, '-k', K, '--li=.'],
      ['-l', L, '-k', K, '--ver'],
      ['-l', L, '-k', K, '--verb'],
      ['-l', L, '-k', K, '--q'],
      ['-l', L, '-k', K, '--g'],
      ['-l', L, '-k', K, '--key', 'ed25519'],
      ['-l', L, '-k', K, '--x'],
      ['--layout=root.layout', '-k', K],
    ];
    it.each(VERIFY.map((argv, i) => [JSON.stringify(argv), i] as const))('intoto-verify %s', (_title, i) => {
      const argv = VERIFY[i]!;
      const want = reference('verify', [argv])[0]!;
      const got = runBin('intoto-verify', [...argv], { cwd: dir });
      if ('error' in want) {
        expect(got.status, got.stderr).toBe(2);
        if (want.error.startsWith('ambiguous option')) expect(got.stderr).toContain(want.error.split(' could match')[0]);
      } else {
        expect(got.status, got.stderr).toBe(0);
      }
    });

    const SIGN: readonly (readonly string[])[] = [
      ['--fi', L, '--key', 'alice', '--out', 'out1.layout'],
      ['-f', L, '--k', 'alice'],
      ['-f', L, '-k', 'alice', '--key-t', 'ed25519', '-o', 'out2.layout'],
      ['-f', L, '-k', 'alice', '--ap', '-o', 'out3.layout'],
      ['-f', L, '-k', K, '--verif'],
      ['-f', L, '-k', 'alice', '--ver'],
      ['-f', L, '-k', 'alice', '--o', 'out4.layout'],
    ];
    it.each(SIGN.map((argv, i) => [JSON.stringify(argv), i] as const))('intoto-sign %s', (_title, i) => {
      const argv = SIGN[i]!;
      const want = reference('sign', [argv])[0]!;
      const got = runBin('intoto-sign', [...argv], { cwd: dir });
      if ('error' in want) expect(got.status, got.stderr).toBe(2);
      else expect(got.status, got.stderr).toBe(0);
    });

    const KEYGEN: readonly (readonly string[])[] = [
      ['--ty', 'ed25519', 'k1'],
      ['--t', 'ecdsa', 'k2'],
      ['--bi', '3072', '-t', 'rsa', 'k3'],
      ['--x', 'k4'],
    ];
    it.each(KEYGEN.map((argv, i) => [JSON.stringify(argv), i] as const))('intoto-keygen %s', (_title, i) => {
      const argv = KEYGEN[i]!;
      const want = reference('keygen', [argv])[0]!;
      const got = runBin('intoto-keygen', [...argv], { cwd: dir });
      if ('error' in want) expect(got.status, got.stderr).toBe(2);
      else expect(got.status, got.stderr).toBe(0);
    });

    it('wrote what the accepted command lines asked for', () => {
      const files = readdirSync(dir);
      for (const name of ['out1.layout', 'out2.layout', 'out3.layout', 'out4.layout', 'k1', 'k2.pub', 'k3']) expect(files).toContain(name);
    });
  });
});

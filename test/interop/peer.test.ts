import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBin } from '../helpers/bin.js';
import { referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { sharedPath } from '../helpers/shared.js';

/**
 * The in-toto ecosystem fixtures in ../shared/peer (test data of in-toto 1.3.1 and 2.x,
 * in-toto-golang, in-toto-rs, in-toto-java; origin of every file in its MANIFEST.md), read
 * where they lie and copied only into a temporary directory per run. `cases/cases.tsv` gives
 * each case's arguments and the verdict the reference (refmode cli), the reference library
 * (lib) or the source repository's own tests (na, ours-match) give it. Every case must get
 * that verdict from us, except the ones in DELIBERATE (each also listed in the README, with
 * its reason). For refmode cli, the reference is run on its own copy too, so a wrong
 * expectation cannot hide.
 *
 * The inspections of the in-toto cases run `python ./scripts/tar` (and expr): in-toto's mock
 * tools, code that is not stored with the fixtures. test/interop/peer-scripts holds our own
 * stand-ins, and test/interop/peer-bin a `python` that is Debian's python3 (inside the
 * repository, so the sandbox, whose /tmp is private, sees it). in-toto-golang's demo (G02)
 * runs the real `tar` as its tests do, as an ordinary user: peer-bin/tar is GNU tar with
 * --no-same-owner, which is what it does for such a user (as root it would restore the
 * archive's owner, uid 501, which the sandbox, without capabilities, cannot).
 */

const PEER = sharedPath('peer');
const haveReference = referenceAvailable();
const HERE = new URL('./', import.meta.url).pathname;
const SCRIPTS = join(HERE, 'peer-scripts');
const PATH = `${join(HERE, 'peer-bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;

/**
 * Cases where our verdict differs from the deciding one by design: id -> reason. Each is also
 * listed in the README ("Compatible with the reference, and where we differ"). We must be the
 * stricter side: fail where the decider passes.
 */
export const DELIBERATE: ReadonlyMap<string, string> = new Map<string, string>([
  ['S01', "a sublayout's inspections are commands a functionary chose: they run only with --allow-sublayout-inspections (S02 passes with it)"],
  ['S04', "as S01: the sublayout carries an inspection (S05 passes with --allow-sublayout-inspections)"],
  ['D01', "a layout without 'expires' is refused: in-toto 2.x gives it an expiry a month after each time it is read, so it never expires"],
  ['D06', "as D01 (the PEM keys and DSSE links of this case verify: D05 is the same keys in a Metablock with 'expires')"],
  ['G08', "a key on secp256k1 that claims ecdsa-sha2-nistp256 is refused (unsupported curve); in-toto 1.3.1 verifies its signature anyway, in-toto-golang refuses it"],
  ['S03', "a sublayout with no steps standing for a step's link is refused (E_SUBLAYOUT_EMPTY): its summary link is empty and vouches for nothing (issue 18)"],
]);

/** The code each deliberate difference fails with: the reason it is listed for, not another. */
const DELIBERATE_CODE: ReadonlyMap<string, string> = new Map([
  ['S01', 'E_INSPECTION_REFUSED'],
  ['S04', 'E_INSPECTION_REFUSED'],
  ['D01', 'E_SCHEMA'],
  ['D06', 'E_SCHEMA'],
  ['G08', 'E_KEY_UNSUPPORTED'],
  ['S03', 'E_SUBLAYOUT_EMPTY'],
]);

/**
 * Cases in-toto 1.3.1 cannot judge although it runs them (refmode cli): the source
 * repository's tests decide instead, as for refmode na.
 */
const REFERENCE_CANNOT_JUDGE: ReadonlyMap<string, string> = new Map([
  ['G07', 'in-toto 1.3.1 has no ecdsa-sha2-nistp521 (UnsupportedAlgorithmError); in-toto-golang, whose key it is, verifies it'],
]);

type Verdict = 'pass' | 'fail' | 'usage';

interface PeerCase {
  readonly id: string;
  readonly expect: string;
  readonly refmode: 'cli' | 'lib' | 'na' | 'ours-match';
  readonly args: readonly string[];
  readonly oursExtra: readonly string[];
  readonly description: string;
}

function words(field: string): string[] {
  return field === '-' || field.trim() === '' ? [] : field.trim().split(/\s+/);
}

function readCases(dir: string): PeerCase[] {
  return readFileSync(join(dir, 'cases.tsv'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const [id, expected, refmode, args, extra, description] = line.split('\t');
      return { id: id!, expect: expected!, refmode: refmode as PeerCase['refmode'], args: words(args ?? ''), oursExtra: words(extra ?? ''), description: description ?? '' };
    });
}

function needsScripts(dir: string): Set<string> {
  const ids = readFileSync(join(dir, 'from-mirrors.tsv'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.split('\t')[0]!);
  return new Set(ids);
}

/** A writable copy of a case directory (the fixtures are read-only), with the stand-in scripts. */
function prepare(casesDir: string, c: PeerCase, withScripts: boolean, root: string, who: string): string {
  const dir = join(root, `${c.id}-${who}`);
  cpSync(join(casesDir, c.id), dir, { recursive: true });
  makeWritable(dir);
  if (withScripts) {
    mkdirSync(join(dir, 'scripts'), { recursive: true });
    for (const name of readdirSync(SCRIPTS)) cpSync(join(SCRIPTS, name), join(dir, 'scripts', name));
  }
  return dir;
}

function makeWritable(path: string): void {
  const isDir = statSync(path).isDirectory();
  chmodSync(path, isDir ? 0o755 : 0o644);
  if (isDir) for (const entry of readdirSync(path)) makeWritable(join(path, entry));
}

/** `-C DIR` (run from DIR) taken off the front of the arguments. */
function splitCwd(dir: string, args: readonly string[]): { cwd: string; args: string[] } {
  if (args[0] === '-C' && args[1] !== undefined) return { cwd: join(dir, args[1]), args: args.slice(2) };
  return { cwd: dir, args: [...args] };
}

function verdictOf(status: number | null): Verdict | string {
  return status === 0 ? 'pass' : status === 1 ? 'fail' : status === 2 ? 'usage' : `exit ${String(status)}`;
}

/** The pre-steps that make a case's input with our own tools (peer/lib/pre in the harness). */
function preStep(c: PeerCase, dir: string): void {
  const env = { ...process.env, PATH };
  const ok = (result: ReturnType<typeof runBin>): void => {
    expect(result.status, `${c.id} pre-step: ${result.stderr}`).toBe(0);
  };
  if (c.id === 'X01' || c.id === 'X02') {
    ok(runBin('intoto-sign', ['-f', 'unsigned.layout', '-k', 'alice', '-o', 'root.layout'], { cwd: dir, env }));
    if (c.id === 'X02') ok(runBin('intoto-sign', ['-f', 'root.layout', '-k', 'danny', '-a'], { cwd: dir, env }));
  }
  if (c.id === 'MP01' || c.id === 'MP02') {
    const untar = run('tar', ['xzf', 'foo.tar.gz', 'foo.py'], { cwd: dir });
    expect(untar.status, untar.stderr).toBe(0);
    if (c.id === 'MP02') run('sh', ['-c', 'echo changed >> foo.py'], { cwd: dir });
  }
}

const results = new Map<string, { ours: string; expected: string; agrees: boolean }>();

/**
 * The verdict that decides a case: in-toto-verify 1.3.1's, run on its own copy, for refmode
 * cli (unless it cannot judge the case); otherwise what cases.tsv gives (the reference
 * library's, or the source repository's tests').
 */
function decidingVerdict(c: PeerCase, casesDir: string, withScripts: boolean, root: string): string {
  if (c.refmode !== 'cli' || REFERENCE_CANNOT_JUDGE.has(c.id) || !haveReference) return c.expect;
  const dir = prepare(casesDir, c, withScripts, root, 'ref');
  preStep(c, dir);
  const { cwd, args } = splitCwd(dir, c.args);
  return verdictOf(run('in-toto-verify', args, { cwd, env: { ...process.env, PATH } }).status);
}

describe.skipIf(PEER === undefined)('../shared/peer: the ecosystem fixtures get the verdicts their sources give them', () => {
  const casesDir = join(PEER ?? '', 'cases');
  const cases = readCases(casesDir);
  const scripts = needsScripts(casesDir);
  const root = tempDir('intoto-peer-');

  it('reads every case of cases.tsv', () => {
    expect(cases.length).toBeGreaterThanOrEqual(59);
    expect([...DELIBERATE_CODE.keys()].sort()).toEqual([...DELIBERATE.keys()].sort());
  });

  for (const c of cases) {
    it(`${c.id} (${c.refmode}, expect ${c.expect}): ${c.description}`, () => {
      const dir = prepare(casesDir, c, scripts.has(c.id), root, 'ours');
      preStep(c, dir);
      const { cwd, args } = splitCwd(dir, c.args);
      const env = { ...process.env, PATH, CI: process.env['CI'] ?? '' };
      const result =
        c.refmode === 'ours-match'
          ? runBin('intoto-match-products', args, { cwd, env })
          : runBin('intoto-verify', [...args, ...c.oursExtra], { cwd, env });
      // Never a crash: 0, 1 or 2, one of our codes, no JavaScript stack.
      expect([0, 1, 2], `${c.id}: ${result.stderr}`).toContain(result.status);
      expect(result.stderr).not.toContain('E_INTERNAL');
      expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
      const ours = c.refmode === 'ours-match' ? String(result.status) : verdictOf(result.status);
      const decided = decidingVerdict(c, casesDir, scripts.has(c.id), root);
      const agrees = ours === decided;
      results.set(c.id, { ours, expected: decided, agrees });
      const output = `${result.stderr}${result.stdout}`;
      const reason = DELIBERATE.get(c.id);
      if (reason !== undefined) {
        expect(decided, `${c.id} is listed as deliberately stricter (${reason})`).toBe('pass');
        expect(ours, `${c.id}: ${output}`).toBe('fail');
        expect(output).toContain(`FAIL ${DELIBERATE_CODE.get(c.id) ?? '(no code listed)'}:`);
      } else {
        expect(ours, `${c.id}: ${output}`).toBe(decided);
      }
    });
  }

  afterAll(() => {
    const agreed = [...results.values()].filter((r) => r.agrees).length;
    const differ = [...results].filter(([, r]) => !r.agrees).map(([id, r]) => `${id} (expected ${r.expected}, ours ${r.ours})`);
    process.stderr.write(`peer: agreed ${agreed}/${results.size}${differ.length > 0 ? `; differ: ${differ.join(', ')}` : ''}\n`);
  });
});

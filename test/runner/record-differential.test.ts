import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import { recordArtifacts } from '../../src/runner/record.js';
import { referenceRecord, type ReferenceRecordCase } from './helpers/reference.js';
import { buildTree, makeTemp, removeTemp, sha256Of, type TreeSpec } from './helpers/trees.js';

/**
 * Differential: for the same tree and arguments we record the same names and sha256 digests
 * as the reference's record_artifacts_as_dict (follow_symlink_dirs=True, as in-toto-run),
 * and fail where it fails. Trees avoid what we refuse on purpose (symlinks out of the tree,
 * loops, absolute names), which record.test.ts covers.
 */

const tree: TreeSpec = {
  'a.txt': 'alpha\n',
  'empty': '',
  '.hidden': 'dot',
  '.git/HEAD': 'ref: refs/heads/main\n',
  '.git/objects/ab/cdef': 'obj',
  'cache.pyc': 'pyc',
  'notes.txt~': 'backup',
  'step.0123abcd.link': '{}',
  '.step.0123abcd.link-unfinished': '{}',
  'with space.txt': 'space',
  'caf\u00e9.txt': 'nfc',
  '\u65e5\u672c/\u30c7\u30fc\u30bf.csv': 'a,b\n1,2\n',
  'emoji-\u{1f600}.txt': 'grin',
  '__proto__': 'proto',
  'sub/b.txt': 'beta',
  'sub/deeper/c.txt': 'gamma',
  'sub/deeper/.git/config': 'nested git',
  'sub/pkg/__init__.pyc': 'pyc',
  'sub/link-to-a': { link: '../a.txt' },
  'sub/abs-link-to-b': { link: 'b.txt' },
  'linkdir': { link: 'sub/deeper' },
  'models/model.pkl': 'pickle-bytes',
  'models/keep.txt': 'keep',
  'emptydir': { dir: true },
};

const argumentSets: readonly Omit<ReferenceRecordCase, 'base'>[] = [
  { paths: ['.'] },
  { paths: ['sub', 'a.txt'] },
  { paths: ['sub/../a.txt'] },
  { paths: ['./sub/', 'models'] },
  { paths: ['linkdir', 'sub/link-to-a'] },
  { paths: ['nonexistent', 'a.txt'] },
  { paths: ['.'], exclude: ['*.txt'] },
  { paths: ['.'], exclude: ['sub'] },
  { paths: ['.'], exclude: ['sub/deeper'] },
  { paths: ['.'], exclude: ['models/'] },
  { paths: ['.'], exclude: ['*.txt', '!keep.txt'] },
  { paths: ['.'], exclude: ['/a.txt', '**/c.txt'] },
  { paths: ['.'], exclude: ['[!a-m]*'] },
  { paths: ['sub'], lstrip: ['sub/'] },
  { paths: ['sub', 'models'], lstrip: ['sub/', 'models/'] },
  { paths: ['sub'], lstrip: ['sub/', 'sub/deeper/'] },
  { paths: ['sub', 'linkdir'], lstrip: ['sub/deeper/', 'linkdir/'] },
  { paths: ['.', 'sub'], lstrip: ['nothing/'] },
];

let base: string;
beforeAll(() => {
  base = makeTemp('intoto-record-diff-');
  buildTree(base, tree);
});
afterAll(() => removeTemp(base));

/** Our error codes for the reference's exception classes. */
const REFERENCE_ERRORS: Record<string, string> = { PrefixError: 'E_LSTRIP' };

describe('recording is the reference recording (differential)', () => {
  it('records the same names and sha256 digests for every argument set', async () => {
    const cases = argumentSets.map((args) => ({ base, ...args }));
    const expected = referenceRecord(cases);
    for (const [i, args] of argumentSets.entries()) {
      const want = expected[i]!;
      const label = JSON.stringify(args);
      let got: Record<string, string> | { error: string };
      try {
        const map = await recordArtifacts(args.paths, {
          basePath: base,
          ...(args.exclude === undefined ? {} : { excludePatterns: args.exclude }),
          ...(args.lstrip === undefined ? {} : { lstripPaths: args.lstrip }),
        });
        got = sha256Of(map);
      } catch (error) {
        got = { error: error instanceof InTotoError ? error.code : String(error) };
      }
      if ('error' in want) {
        expect(got, label).toEqual({ error: REFERENCE_ERRORS[want.error] ?? want.error });
      } else {
        const reference: Record<string, string> = {};
        for (const name of Object.keys(want.ok).sort()) reference[name] = want.ok[name]!['sha256']!;
        expect(got, label).toEqual(reference);
      }
    }
  });

  it('in-toto-run -x records the same products, and obeys IN_TOTO_* that we ignore', async () => {
    const work = makeTemp('intoto-record-cli-');
    try {
      const keys = join(work, 'keys');
      const links = join(work, 'links');
      mkdirSync(keys);
      mkdirSync(links);
      const env = { PATH: '/usr/bin:/bin', HOME: work, LANG: 'C.UTF-8' };
      execFileSync('in-toto-keygen', ['-t', 'ed25519', join(keys, 'key')], { env, stdio: 'pipe' });
      const runReference = (extraEnv: Record<string, string>): Record<string, string> => {
        for (const file of readdirSync(links)) removeTemp(join(links, file));
        execFileSync('in-toto-run', ['-n', 'rec', '-k', join(keys, 'key'), '-t', 'ed25519', '-p', '.', '-d', links, '-x'], {
          cwd: base,
          env: { ...env, ...extraEnv },
          stdio: 'pipe',
        });
        const [linkFile] = readdirSync(links);
        const link = JSON.parse(readFileSync(join(links, linkFile!), 'utf8')) as {
          signed: { products: Record<string, { sha256: string }> };
        };
        const out: Record<string, string> = {};
        for (const name of Object.keys(link.signed.products).sort()) out[name] = link.signed.products[name]!.sha256;
        return out;
      };
      const ours = sha256Of(await recordArtifacts(['.'], { basePath: base }));
      expect(ours).toEqual(runReference({}));
      // The reference lets the environment hide artifacts (CVE-2023-32076's family); we do not.
      const hidden = runReference({ IN_TOTO_ARTIFACT_EXCLUDE_PATTERNS: '*.pkl:.git' });
      expect(Object.keys(hidden)).not.toContain('models/model.pkl');
      expect(Object.keys(ours)).toContain('models/model.pkl');
    } finally {
      removeTemp(work);
    }
  });
});

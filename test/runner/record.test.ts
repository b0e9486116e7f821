import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileExcludePatterns } from '../../src/runner/exclude.js';
import { hashFiles } from '../../src/runner/hash-pool.js';
import { DEFAULT_EXCLUDE_PATTERNS, recordArtifacts, type RecordOptions } from '../../src/runner/record.js';
import { collectFiles } from '../../src/runner/walk.js';
import { buildTree, makeTemp, removeTemp, sha256Of, type TreeSpec } from './helpers/trees.js';
import { codeOfAsync } from '../helpers/errors.js';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

let root: string;
let base: string;
let outside: string;
beforeEach(() => {
  root = makeTemp();
  base = join(root, 'base');
  outside = join(root, 'outside');
  mkdirSync(base);
  mkdirSync(outside);
});
afterEach(() => removeTemp(root));

async function names(paths: readonly string[], options: RecordOptions = {}): Promise<string[]> {
  return [...(await recordArtifacts(paths, { basePath: base, ...options })).keys()];
}

async function recordWithWarnings(paths: readonly string[], options: RecordOptions = {}) {
  const warnings: string[] = [];
  const map = await recordArtifacts(paths, { basePath: base, onWarning: (w) => warnings.push(w), ...options });
  return { map, warnings };
}

const tree: TreeSpec = {
  'a.txt': 'a',
  'sub/b.txt': 'b',
  'sub/deeper/c.txt': 'c',
  '.hidden': 'h',
  '.git/config': 'g',
  'x.pyc': 'p',
  'backup~': '~',
  'step.1234abcd.link': 'l',
};

describe('recordArtifacts naming', () => {
  beforeEach(() => buildTree(base, tree));
  it.each<[string, readonly string[], RecordOptions, readonly string[]]>([
    ['the base path', ['.'], {}, ['.hidden', 'a.txt', 'sub/b.txt', 'sub/deeper/c.txt']],
    ['a sub directory', ['sub'], {}, ['sub/b.txt', 'sub/deeper/c.txt']],
    ['a trailing slash', ['sub/'], {}, ['sub/b.txt', 'sub/deeper/c.txt']],
    ['a leading ./', ['./a.txt'], {}, ['a.txt']],
    ['a path through ..', ['sub/../a.txt'], {}, ['a.txt']],
    ['the same path twice', ['a.txt', 'a.txt', './a.txt'], {}, ['a.txt']],
    ['overlapping paths', ['.', 'sub'], {}, ['.hidden', 'a.txt', 'sub/b.txt', 'sub/deeper/c.txt']],
    ['an excluded directory', ['.'], { excludePatterns: ['sub'] }, ['.git/config', '.hidden', 'a.txt', 'backup~', 'step.1234abcd.link', 'x.pyc']],
    ['a pattern below a directory', ['.'], { excludePatterns: ['sub/deeper'] }, ['.git/config', '.hidden', 'a.txt', 'backup~', 'step.1234abcd.link', 'sub/b.txt', 'x.pyc']],
    ['an excluded given path', ['a.txt', 'x.pyc'], {}, ['a.txt']],
    ['an empty exclude list (the defaults)', ['.'], { excludePatterns: [] }, ['.hidden', 'a.txt', 'sub/b.txt', 'sub/deeper/c.txt']],
    ['--lstrip-paths', ['sub'], { lstripPaths: ['sub/'] }, ['b.txt', 'deeper/c.txt']],
    ['a missing path', ['nope.txt', 'a.txt'], {}, ['a.txt']],
    ['no paths', [], {}, []],
  ])('%s', async (_what, paths, options, expected) => {
    expect(await names(paths, options)).toEqual(expected);
  });

  it('records content hashes keyed by name', async () => {
    const map = await recordArtifacts(['sub'], { basePath: base });
    expect(sha256Of(map)).toEqual({ 'sub/b.txt': sha('b'), 'sub/deeper/c.txt': sha('c') });
  });

  it('records sha256 and sha512 in one pass when asked', async () => {
    const map = await recordArtifacts(['a.txt'], { basePath: base, algorithms: ['sha256', 'sha512'] });
    const digests = map.get('a.txt')!;
    expect([...digests.keys()]).toEqual(['sha256', 'sha512']);
    expect(digests.get('sha512')).toBe(createHash('sha512').update('a').digest('hex'));
    expect(digests.get('sha256')).toBe(sha('a'));
  });

  it('refuses an unknown algorithm, bad limits and bad concurrency with E_USAGE', async () => {
    expect(await codeOfAsync(recordArtifacts(['.'], { basePath: base, algorithms: ['md5' as 'sha256'] }))).toBe('E_USAGE');
    expect(await codeOfAsync(recordArtifacts(['.'], { basePath: base, limits: { maxDepth: 0 } }))).toBe('E_USAGE');
    expect(await codeOfAsync(recordArtifacts(['.'], { basePath: base, concurrency: 1.5 }))).toBe('E_USAGE');
    expect(await codeOfAsync(recordArtifacts(['.'], { basePath: base, excludePatterns: ['a\\'] }))).toBe('E_USAGE');
  });

  it('refuses a base path that does not exist with E_IO', async () => {
    expect(await codeOfAsync(recordArtifacts(['.'], { basePath: join(root, 'nope') }))).toBe('E_IO');
  });

  it('keys a name like __proto__ as data', async () => {
    writeFileSync(join(base, '__proto__'), 'p');
    const map = await recordArtifacts(['__proto__'], { basePath: base });
    expect(map.get('__proto__')?.get('sha256')).toBe(sha('p'));
  });
});

describe('--lstrip-paths', () => {
  beforeEach(() => buildTree(base, { 'a/x.txt': '1', 'b/x.txt': '2', 'a/y.txt': '3' }));

  it('refuses a strip that makes two names collide with E_LSTRIP', async () => {
    expect(await codeOfAsync(recordArtifacts(['a', 'b'], { basePath: base, lstripPaths: ['a/', 'b/'] }))).toBe('E_LSTRIP');
  });

  it('refuses overlapping prefixes with E_LSTRIP', async () => {
    expect(await codeOfAsync(recordArtifacts(['a'], { basePath: base, lstripPaths: ['a/', 'a/x'] }))).toBe('E_LSTRIP');
  });

  it('refuses a path recorded twice under --lstrip-paths, as the reference does', async () => {
    expect(await codeOfAsync(recordArtifacts(['.', 'a'], { basePath: base, lstripPaths: ['zzz/'] }))).toBe('E_LSTRIP');
  });

  it('refuses a strip that leaves an absolute name with E_ARTIFACT_NAME', async () => {
    expect(await codeOfAsync(recordArtifacts(['a'], { basePath: base, lstripPaths: ['a'] }))).toBe('E_ARTIFACT_NAME');
  });
});

describe('attacks on recording', () => {
  it('symlink out of the tree is not followed', async () => {
    buildTree(outside, { 'secret.txt': 'secret', 'dir/s.txt': 's' });
    buildTree(base, {
      'a.txt': 'a',
      'to-secret': { link: join(outside, 'secret.txt') },
      'to-outside-dir': { link: '../outside/dir' },
      'sub/relative-escape': { link: '../../outside/secret.txt' },
    });
    const { map, warnings } = await recordWithWarnings(['.']);
    expect([...map.keys()]).toEqual(['a.txt']);
    expect(warnings.join('\n')).toMatch(/to-secret.*outside the base path/);
    expect(warnings.join('\n')).toMatch(/to-outside-dir.*outside the base path/);
    expect(warnings.join('\n')).toMatch(/sub\/relative-escape.*outside the base path/);
    // Named explicitly, directly or through the symlinked directory: still not followed.
    const named = await recordWithWarnings(['to-secret', 'to-outside-dir/s.txt']);
    expect(named.map.size).toBe(0);
    expect(named.warnings).toHaveLength(2);
  });

  it('records a symlink to a file inside the tree under the link name with the target hash', async () => {
    buildTree(base, { 'sub/b.txt': 'b', 'link-b': { link: 'sub/b.txt' }, 'linkdir': { link: 'sub' } });
    const map = await recordArtifacts(['.'], { basePath: base });
    expect(sha256Of(map)).toEqual({ 'link-b': sha('b'), 'linkdir/b.txt': sha('b'), 'sub/b.txt': sha('b') });
    const notFollowed = await recordArtifacts(['.'], { basePath: base, followSymlinkDirs: false });
    expect([...notFollowed.keys()]).toEqual(['link-b', 'sub/b.txt']);
  });

  it('FIFO does not hang recording', async () => {
    buildTree(base, { 'a.txt': 'a' });
    execFileSync('mkfifo', [join(base, 'pipe')]);
    // A FIFO named directly, and one met while walking: skipped with a warning, never opened.
    const { map, warnings } = await recordWithWarnings(['.', 'pipe']);
    expect([...map.keys()]).toEqual(['a.txt']);
    expect(warnings.filter((w) => w.includes('pipe') && w.includes('FIFO'))).toHaveLength(2);
  });

  it('FIFO swapped in after the walk does not hang hashing (O_NONBLOCK, fstat after open)', async () => {
    buildTree(base, { 'a.txt': 'a', 'b.txt': 'b' });
    const jobs = collectFiles(['.'], {
      basePath: base,
      realBase: realpathSync(base),
      filter: compileExcludePatterns(DEFAULT_EXCLUDE_PATTERNS),
      lstripPaths: [],
      followSymlinkDirs: true,
      maxArtifacts: 10,
      maxDepth: 10,
      warn: () => {},
    });
    expect(jobs.map((job) => job.name)).toEqual(['a.txt', 'b.txt']);
    rmSync(join(base, 'b.txt'));
    execFileSync('mkfifo', [join(base, 'b.txt')]);
    const results = await hashFiles(jobs.map((job) => job.openPath), ['sha256'], { threads: 1 });
    expect(results.outcome(0)).toEqual({ kind: 'ok', digests: [sha('a')] });
    expect(results.outcome(1)).toEqual({ kind: 'not-regular', what: 'a FIFO' });
  });

  it('a socket is skipped with a warning', async () => {
    buildTree(base, { 'a.txt': 'a' });
    const net = await import('node:net');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(join(base, 'sock'), resolve));
    try {
      const { map, warnings } = await recordWithWarnings(['.']);
      expect([...map.keys()]).toEqual(['a.txt']);
      expect(warnings.join('\n')).toMatch(/sock.*socket/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('symlink loop terminates', async () => {
    buildTree(base, {
      'sub/x.txt': 'x',
      'sub/up': { link: '..' },
      'sub/self': { link: 'self' },
      'a/to-b': { link: '../b' },
      'b/to-a': { link: '../a' },
    });
    const { map, warnings } = await recordWithWarnings(['.']);
    expect([...map.keys()]).toEqual(['sub/x.txt']);
    expect(warnings.join('\n')).toMatch(/sub\/up.*loop/);
    expect(warnings.join('\n')).toMatch(/sub\/self.*loop/);
    expect(warnings.join('\n')).toMatch(/a\/to-b\/to-a.*loop/);
  });

  it('dangling symlinks are skipped with a warning', async () => {
    buildTree(base, { 'a.txt': 'a', 'dead': { link: 'nowhere' } });
    const { map, warnings } = await recordWithWarnings(['.']);
    expect([...map.keys()]).toEqual(['a.txt']);
    expect(warnings).toEqual(['dead: dangling symbolic link, skipped']);
  });

  it('path outside base path is refused', async () => {
    buildTree(outside, { 'o.txt': 'o' });
    buildTree(base, { 'a.txt': 'a' });
    expect(await codeOfAsync(recordArtifacts(['../outside/o.txt'], { basePath: base }))).toBe('E_PATH_OUTSIDE_BASE');
    expect(await codeOfAsync(recordArtifacts([join(outside, 'o.txt')], { basePath: base }))).toBe('E_PATH_OUTSIDE_BASE');
    expect(await codeOfAsync(recordArtifacts(['sub/../../outside'], { basePath: base }))).toBe('E_PATH_OUTSIDE_BASE');
    // An absolute path inside the base path would be recorded with an absolute name.
    expect(await codeOfAsync(recordArtifacts([join(base, 'a.txt')], { basePath: base }))).toBe('E_ARTIFACT_NAME');
  });

  it('a path outside the base path is recorded when --lstrip-paths covers it (the reference example)', async () => {
    buildTree(outside, { 'docs/document.pdf': 'pdf', 'docs/more/x.txt': 'x' });
    const prefix = `${join(outside, 'docs')}/`;
    const file = await recordArtifacts([join(outside, 'docs/document.pdf')], { basePath: base, lstripPaths: [prefix] });
    expect(sha256Of(file)).toEqual({ 'document.pdf': sha('pdf') });
    const dir = await recordArtifacts([join(outside, 'docs')], { basePath: base, lstripPaths: [prefix] });
    expect([...dir.keys()]).toEqual(['document.pdf', 'more/x.txt']);
    const absoluteInside = await recordArtifacts([join(base, '.')], { basePath: base, lstripPaths: [`${base}/`] });
    expect(absoluteInside.size).toBe(0);
  });

  it('IN_TOTO_* env and .in_totorc are ignored', async () => {
    buildTree(base, {
      'a.txt': 'a',
      '.in_totorc': '[in-toto settings]\nARTIFACT_EXCLUDE_PATTERNS=*.txt:.in_totorc\nARTIFACT_BASE_PATH=/\n',
    });
    const saved = { ...process.env };
    const cwd = process.cwd();
    try {
      process.env['IN_TOTO_ARTIFACT_EXCLUDE_PATTERNS'] = '*';
      process.env['IN_TOTO_ARTIFACT_BASE_PATH'] = outside;
      process.chdir(base);
      // With the base path defaulting to the cwd, which holds the rc file.
      const map = await recordArtifacts(['.']);
      expect([...map.keys()]).toEqual(['.in_totorc', 'a.txt']);
    } finally {
      process.chdir(cwd);
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    }
  });

  it('non-NFC and control-character names are refused; backslashes, invisible characters and case-fold twins as aliases', async () => {
    for (const [files, content, code] of [
      [{ 'e\u0301.txt': 'x' }, 'nfd', 'E_ARTIFACT_NAME'],
      [{ 'new\nline': 'x' }, 'nl', 'E_ARTIFACT_NAME'],
      [{ 'tab\there': 'x' }, 'tab', 'E_ARTIFACT_NAME'],
      [{ 'back\\slash': 'x' }, 'bs', 'E_ARTIFACT_ALIAS'],
      [{ 'model.pkl\u200b': 'x' }, 'zw', 'E_ARTIFACT_ALIAS'],
      [{ 'Model.pkl': 'x', 'model.pkl': 'y' }, 'case', 'E_ARTIFACT_ALIAS'],
    ] as const) {
      const dir = join(base, `case-${content}`);
      buildTree(dir, files);
      expect(await codeOfAsync(recordArtifacts(['.'], { basePath: dir })), JSON.stringify(files)).toBe(code);
    }
  });

  it('a name that is not UTF-8 on disk is refused unless excluded', async () => {
    const dir = join(base, 'bytes');
    mkdirSync(dir);
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]), 'x');
    expect(await codeOfAsync(recordArtifacts(['.'], { basePath: dir }))).toBe('E_ARTIFACT_NAME');
    expect(await names(['.'], { basePath: dir, excludePatterns: ['*.bin'] })).toEqual([]);
    // A real U+FFFD in a name is valid UTF-8 and recorded.
    writeFileSync(join(dir, 'ok-\ufffd.txt'), 'ok');
    expect(await names(['.'], { basePath: dir, excludePatterns: ['*.bin'] })).toEqual(['ok-\ufffd.txt']);
  });

  it('stops at the artifact cap before hashing, with E_LIMIT', async () => {
    buildTree(base, { 'a/1': '1', 'a/2': '2', 'a/3': '3' });
    expect(await codeOfAsync(recordArtifacts(['.'], { basePath: base, limits: { maxArtifacts: 2 } }))).toBe('E_LIMIT');
    expect(await names(['.'], { limits: { maxArtifacts: 3 } })).toHaveLength(3);
  });

  it('stops at the depth cap with E_LIMIT', async () => {
    buildTree(base, { 'd1/d2/d3/f': 'f' });
    expect(await codeOfAsync(recordArtifacts(['.'], { basePath: base, limits: { maxDepth: 2 } }))).toBe('E_LIMIT');
    expect(await names(['.'], { limits: { maxDepth: 3 } })).toEqual(['d1/d2/d3/f']);
  });

  it('an unreadable directory is an error, not a silent omission', async () => {
    if (process.getuid?.() === 0) return; // root reads everything; nothing to test
    buildTree(base, { 'locked/f': 'f' });
    execFileSync('chmod', ['000', join(base, 'locked')]);
    try {
      expect(await codeOfAsync(recordArtifacts(['.'], { basePath: base }))).toBe('E_IO');
    } finally {
      execFileSync('chmod', ['755', join(base, 'locked')]);
    }
  });
});

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDvcFile, hasMismatch } from '../../src/data/dvc.js';
import { dirListingBytes, dirMd5, dvcFileMd5, isTextBlock } from '../../src/data/dvc-hash.js';
import { codeOf } from '../helpers/errors.js';

/** DVC's digests against our vector (test/vectors/dvc-dir.json, made with Python as dvc-data does). */

const vector = JSON.parse(readFileSync(new URL('../vectors/dvc-dir.json', import.meta.url), 'utf8')) as {
  files_hex: Record<string, string>;
  file_md5: Record<string, string>;
  dir_listing_raw_utf8: string;
  dir_md5: string;
  size: number;
  nfiles: number;
};

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function fresh(): string {
  const d = mkdtempSync(join(tmpdir(), 'dvc-'));
  dirs.push(d);
  return d;
}
function write(root: string, files: Record<string, string | Buffer>): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), content);
  }
}
function vectorRepo(): string {
  const repo = fresh();
  write(repo, Object.fromEntries(Object.entries(vector.files_hex).map(([k, hex]) => [`data/${k}`, Buffer.from(hex, 'hex')])));
  writeFileSync(join(repo, 'data.dvc'), `outs:\n- md5: ${vector.dir_md5}\n  size: ${vector.size}\n  nfiles: ${vector.nfiles}\n  hash: md5\n  path: data\n`);
  return repo;
}

describe('DVC digests (dvc-dir vector)', () => {
  it('file md5s, the .dir listing bytes and its md5 are DVC\'s', () => {
    const repo = vectorRepo();
    const entries = Object.keys(vector.files_hex).map((relpath) => ({ relpath, md5: dvcFileMd5(join(repo, 'data', relpath), 'md5').md5 }));
    for (const e of entries) expect(e.md5).toBe(vector.file_md5[e.relpath]);
    expect(dirListingBytes(entries).toString('utf8')).toBe(vector.dir_listing_raw_utf8);
    expect(dirMd5(entries)).toBe(vector.dir_md5);
  });

  it('a .dvc file for the directory checks, and a changed file is a mismatch', () => {
    const repo = vectorRepo();
    const ok = checkDvcFile(join(repo, 'data.dvc'));
    expect(ok.map((f) => f.kind)).toEqual(['ok']);
    writeFileSync(join(repo, 'data/train.csv'), 'x,y\n1,3\n');
    const bad = checkDvcFile(join(repo, 'data.dvc'));
    expect(hasMismatch(bad)).toBe(true);
    expect(bad[0]).toMatchObject({ kind: 'changed', expected: vector.dir_md5 });
  });

  it('lists the changed, added and removed files when the .dir object is in the DVC cache', () => {
    const repo = vectorRepo();
    const md5 = vector.dir_md5;
    write(repo, { [`.dvc/cache/files/md5/${md5.slice(0, 2)}/${md5.slice(2)}`]: vector.dir_listing_raw_utf8 });
    writeFileSync(join(repo, 'data/train.csv'), 'x,y\n9,9\n');
    rmSync(join(repo, 'data/sub-a.csv'));
    writeFileSync(join(repo, 'data/new.csv'), 'n\n');
    const [finding] = checkDvcFile(join(repo, 'data.dvc'));
    expect(finding?.kind).toBe('changed');
    const files = finding?.kind === 'changed' ? finding.files : [];
    expect(files).toEqual([
      { kind: 'removed', relpath: 'sub-a.csv', expected: vector.file_md5['sub-a.csv'] },
      { kind: 'changed', relpath: 'train.csv', expected: vector.file_md5['train.csv'], actual: createHash('md5').update('x,y\n9,9\n').digest('hex') },
      { kind: 'added', relpath: 'new.csv', actual: createHash('md5').update('n\n').digest('hex') },
    ]);
  });

  it('.dvcignore and DVC\'s own ignores (.git, .dvc) are left out of a directory', () => {
    const repo = vectorRepo();
    write(repo, { 'data/.dvcignore': '*.tmp\n', 'data/scratch.tmp': 'x', 'data/.git/HEAD': 'x' });
    const entries = Object.keys(vector.files_hex).map((relpath) => ({ relpath, md5: vector.file_md5[relpath]! }));
    entries.push({ relpath: '.dvcignore', md5: createHash('md5').update('*.tmp\n').digest('hex') });
    writeFileSync(join(repo, 'data.dvc'), `outs:\n- md5: ${dirMd5(entries)}\n  hash: md5\n  path: data\n`);
    expect(checkDvcFile(join(repo, 'data.dvc')).map((f) => f.kind)).toEqual(['ok']);
  });

  it('outputs recorded by DVC 2 (no `hash: md5`) use md5-dos2unix: CRLF text hashed as LF, binary as is', () => {
    const repo = fresh();
    write(repo, { 'text.csv': 'a,b\r\n1,2\r\n', 'bin.dat': Buffer.from([0, 13, 10, 1]) });
    const lf = createHash('md5').update('a,b\n1,2\n').digest('hex');
    const raw = createHash('md5').update('a,b\r\n1,2\r\n').digest('hex');
    expect(dvcFileMd5(join(repo, 'text.csv'), 'md5-dos2unix').md5).toBe(lf);
    expect(dvcFileMd5(join(repo, 'text.csv'), 'md5').md5).toBe(raw);
    expect(dvcFileMd5(join(repo, 'bin.dat'), 'md5-dos2unix').md5).toBe(createHash('md5').update(Buffer.from([0, 13, 10, 1])).digest('hex'));
    writeFileSync(join(repo, 'text.csv.dvc'), `outs:\n- md5: ${lf}\n  size: 10\n  path: text.csv\n`);
    expect(checkDvcFile(join(repo, 'text.csv.dvc')).map((f) => f.kind)).toEqual(['ok']);
    expect(isTextBlock(Buffer.from('plain text'))).toBe(true);
    expect(isTextBlock(Buffer.from([1, 2, 3, 4, 5, 65]))).toBe(false);
  });

  it('dvc.lock: deps and outs of every stage, params unchecked, a missing output reported', () => {
    const repo = fresh();
    write(repo, { 'data/raw.csv': 'r\n', 'model.pkl': 'm' });
    const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
    writeFileSync(
      join(repo, 'dvc.lock'),
      [
        "schema: '2.0'",
        'stages:',
        '  train:',
        '    cmd: python train.py',
        '    deps:',
        '    - path: data/raw.csv',
        '      hash: md5',
        `      md5: ${md5('r\n')}`,
        '      size: 2',
        '    params:',
        '      params.yaml:',
        '        lr: 0.1',
        '    outs:',
        '    - path: model.pkl',
        '      hash: md5',
        `      md5: ${md5('m')}`,
        '      size: 1',
        '    - path: metrics.json',
        '      hash: md5',
        `      md5: ${md5('{}')}`,
        '',
      ].join('\n'),
    );
    const findings = checkDvcFile(join(repo, 'dvc.lock'));
    expect(findings.map((f) => `${f.entry.path}:${f.kind}`)).toEqual(['data/raw.csv:ok', 'model.pkl:ok', 'metrics.json:missing']);
    writeFileSync(join(repo, 'metrics.json'), '{}');
    expect(hasMismatch(checkDvcFile(join(repo, 'dvc.lock')))).toBe(false);
  });

  it('malformed DVC files fail with E_DVC_FORMAT', () => {
    const repo = fresh();
    writeFileSync(join(repo, 'a.dvc'), 'outs:\n- md5: nothex\n  path: a\n');
    expect(codeOf(() => checkDvcFile(join(repo, 'a.dvc')))).toBe('E_DVC_FORMAT');
    writeFileSync(join(repo, 'b.dvc'), 'outs: [\n');
    expect(codeOf(() => checkDvcFile(join(repo, 'b.dvc')))).toBe('E_DVC_FORMAT');
    writeFileSync(join(repo, 'c.dvc'), 'outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: c\n  hash: sha256\n');
    expect(codeOf(() => checkDvcFile(join(repo, 'c.dvc')))).toBe('E_DVC_FORMAT');
  });
});

import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ParseError } from '../../src/errors.js';
import { makeDirectorySync, writeFileAtomicSync } from '../../src/io/files.js';
import { codeOf } from '../helpers/errors.js';

describe('writeFileAtomicSync', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'intoto-files-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a string, bytes, or what a producer hands it in chunks, replacing the file whole', () => {
    const path = join(dir, 'a.link');
    writeFileAtomicSync(path, 'old');
    writeFileAtomicSync(path, new Uint8Array([104, 105]));
    expect(readFileSync(path, 'utf8')).toBe('hi');
    writeFileAtomicSync(path, (write) => {
      write(Buffer.from('one '));
      write(Buffer.from(''));
      write(Buffer.from('two'));
    });
    expect(readFileSync(path, 'utf8')).toBe('one two');
    expect(readdirSync(dir)).toEqual(['a.link']);
  });

  it('a producer that fails part-way leaves the old file and no temporary file, and its error passes through', () => {
    const path = join(dir, 'a.link');
    writeFileSync(path, 'kept');
    const failure = new ParseError('E_CANONICAL', 'cannot encode');
    expect(() =>
      writeFileAtomicSync(path, (write) => {
        write(Buffer.from('half of it'));
        throw failure;
      }),
    ).toThrow(failure);
    expect(readFileSync(path, 'utf8')).toBe('kept');
    expect(readdirSync(dir)).toEqual(['a.link']);
  });

  it('a directory it cannot write to is E_IO', () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere: a missing directory fails the same way
      expect(codeOf(() => writeFileAtomicSync(join(dir, 'missing', 'a.link'), 'x'))).toBe('E_IO');
      return;
    }
    chmodSync(dir, 0o500);
    expect(codeOf(() => writeFileAtomicSync(join(dir, 'a.link'), (write) => write(Buffer.from('x'))))).toBe('E_IO');
  });
});

describe('makeDirectorySync', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'intoto-mkdir-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('makes the missing parents, one level at a time; an existing directory is fine', () => {
    makeDirectorySync(join(dir, 'a', 'b', 'c'));
    makeDirectorySync(join(dir, 'a', 'b'));
    expect(statSync(join(dir, 'a', 'b', 'c')).isDirectory()).toBe(true);
  });

  it('a file in the way is E_IO, "not a directory"', () => {
    writeFileSync(join(dir, 'file'), '');
    expect(codeOf(() => makeDirectorySync(join(dir, 'file', 'x')))).toBe('E_IO');
    expect(() => makeDirectorySync(join(dir, 'file'))).toThrow(/not a directory/);
  });

  it('attack: /proc/nope, where Node\'s recursive mkdir spins at 100% CPU for ever, is E_IO at once', () => {
    expect(codeOf(() => makeDirectorySync('/proc/nope/deeper'))).toBe('E_IO');
    expect(() => makeDirectorySync('/proc/nope')).toThrow(/cannot create the directory \(ENOENT\)/);
  });
});

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HASH_CHUNK_BYTES, createHashBuffers, hashFile, hashOpenFile, openForHashing } from '../../src/crypto/hash-file.js';
import { makeTemp, removeTemp } from '../runner/helpers/trees.js';
import { codeOfAsync } from '../helpers/errors.js';

let dir: string;
beforeAll(() => {
  dir = makeTemp('intoto-hash-file-');
});
afterAll(() => removeTemp(dir));

describe('hashFile', () => {
  // Sizes around the chunk and the sync/streaming switch, where off-by-one errors live.
  const sizes = [0, 1, 4096, HASH_CHUNK_BYTES - 1, HASH_CHUNK_BYTES, HASH_CHUNK_BYTES + 1, 3 * HASH_CHUNK_BYTES + 17];
  it.each(sizes)('hashes %i bytes like createHash, with sha256 and sha512 in one pass', async (size) => {
    const data = randomBytes(size);
    const file = join(dir, `f${size}`);
    writeFileSync(file, data);
    // Small buffers too, so several chunks and the read-ahead swap are exercised.
    for (const buffers of [createHashBuffers(), createHashBuffers(4096)]) {
      const digests = await hashFile(file, ['sha256', 'sha512'], buffers);
      expect(digests.get('sha256')).toBe(createHash('sha256').update(data).digest('hex'));
      expect(digests.get('sha512')).toBe(createHash('sha512').update(data).digest('hex'));
      expect([...digests.keys()]).toEqual(['sha256', 'sha512']);
    }
  });

  it('gives the same digests whether each chunk is read ahead or inline, switching mid-file', async () => {
    const data = randomBytes(7 * 4096 + 123);
    const file = join(dir, 'switching');
    writeFileSync(file, data);
    const want = createHash('sha256').update(data).digest('hex');
    const policies: [string, () => () => boolean][] = [
      ['always ahead', () => () => true],
      ['always inline', () => () => false],
      ['alternating', () => { let k = 0; return () => k++ % 2 === 0; }],
      ['inline, then ahead', () => { let k = 0; return () => k++ >= 3; }],
    ];
    for (const [name, policy] of policies) {
      const opened = openForHashing(file);
      if (opened.kind !== 'file') throw new Error('not a file');
      try {
        const digests = await hashOpenFile(opened.fd, ['sha256'], createHashBuffers(4096), file, policy());
        expect(digests.map((d) => d.toString('hex')), name).toEqual([want]);
      } finally {
        closeSync(opened.fd);
      }
    }
  });

  it('refuses a FIFO without blocking (O_NONBLOCK, then fstat)', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await codeOfAsync(hashFile(fifo))).toBe('E_NOT_REGULAR_FILE');
    expect(openForHashing(fifo)).toEqual({ kind: 'not-regular', what: 'a FIFO' });
  });

  it('does not follow a symlink at the last component (O_NOFOLLOW)', async () => {
    writeFileSync(join(dir, 'target'), 'x');
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    expect(await codeOfAsync(hashFile(join(dir, 'link')))).toBe('E_NOT_REGULAR_FILE');
  });

  it('refuses a directory', async () => {
    mkdirSync(join(dir, 'd'));
    expect(await codeOfAsync(hashFile(join(dir, 'd')))).toBe('E_NOT_REGULAR_FILE');
  });

  it('reports a missing file as E_IO', async () => {
    expect(await codeOfAsync(hashFile(join(dir, 'missing')))).toBe('E_IO');
  });

  it('returns an open descriptor only for a regular file', () => {
    writeFileSync(join(dir, 'r'), 'abc');
    const opened = openForHashing(join(dir, 'r'));
    expect(opened.kind).toBe('file');
    if (opened.kind === 'file') {
      expect(opened.size).toBe(3);
      closeSync(opened.fd);
    }
  });
});

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HASH_CHUNK_BYTES, createHashBuffers, hashFile, openForHashing } from '../../src/crypto/hash-file.js';
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

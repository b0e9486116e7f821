import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSinkWorker } from '../../src/gate/file-sink.js';
import { codeOfAsync } from '../helpers/errors.js';
import { tempDir } from '../helpers/reference.js';

describe('the download writer thread', () => {
  const base = tempDir('intoto-sink-');
  let n = 0;
  const fresh = (): string => {
    const dir = join(base, String(++n));
    mkdirSync(dir);
    return dir;
  };

  it('writes and hashes what it is given, in order, whether chunks own their memory or not', async () => {
    const dir = fresh();
    const writer = new FileSinkWorker();
    try {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const sink = writer.sink(join(dir, 'a.bin'));
      for (let offset = 0; offset < data.length; offset += 65536) {
        const piece = data.subarray(offset, Math.min(offset + 65536, data.length));
        // Alternately a chunk that is all of its memory (transferred) and a view into a larger one (copied).
        await sink.push(offset % 131072 === 0 ? Buffer.from(new Uint8Array(piece)) : Buffer.from(piece));
      }
      expect(await sink.finish()).toBe(`sha256:${createHash('sha256').update(data).digest('hex')}`);
      expect(readFileSync(join(dir, 'a.bin'))).toEqual(data);
      // The caller's view of the data is untouched by transfers of copies.
      expect(data.length).toBe(3 * 1024 * 1024 + 17);
    } finally {
      await writer.close();
    }
  });

  it('never writes through an existing file or symlink (E_IO), and keeps going for other files', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'exists.bin'), 'mine');
    const writer = new FileSinkWorker();
    try {
      const sink = writer.sink(join(dir, 'exists.bin'));
      const pushed = (async () => {
        await sink.push(Buffer.from(new Uint8Array(10)));
        return sink.finish();
      })();
      expect(await codeOfAsync(pushed)).toBe('E_IO');
      expect(readFileSync(join(dir, 'exists.bin'), 'utf8')).toBe('mine');
      const other = writer.sink(join(dir, 'new.bin'));
      await other.push(Buffer.from('ok'));
      expect(await other.finish()).toBe(`sha256:${createHash('sha256').update('ok').digest('hex')}`);
    } finally {
      await writer.close();
    }
  });
});

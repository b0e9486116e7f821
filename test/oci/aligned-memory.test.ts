import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { giveBackAligned, takeAligned } from '../../src/oci/aligned-memory.js';
import { tempDir } from '../helpers/reference.js';

/**
 * The page-aligned memory behind unbuffered downloads (src/oci/aligned-memory.ts). Alignment
 * is not visible from JavaScript, so the kernel is the judge: an O_DIRECT write from the start
 * of a region must be taken, and one from 16 bytes further refused (EINVAL), in a directory
 * that takes O_DIRECT at all (the test's temporary directory on ext4 here and in CI; on a file
 * system that refuses O_DIRECT the test says so and fails, rather than pass without checking).
 */

const dir = tempDir('intoto-aligned-');

function directWrite(buffer: Buffer, offset: number): 'written' | 'EINVAL' {
  const fd = openSync(join(dir, `f-${offset}-${Math.random()}`), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600);
  try {
    writeSync(fd, buffer, offset, 4096, 0);
    return 'written';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EINVAL') return 'EINVAL';
    throw error;
  } finally {
    closeSync(fd);
  }
}

describe('takeAligned', () => {
  it('gives page-aligned memory: the kernel takes an O_DIRECT write from its start and refuses one from 16 bytes in', () => {
    const region = takeAligned(1 << 20);
    expect(region).toBeDefined();
    const { buffer, offset, length } = region!;
    expect(offset % 65536).toBe(0);
    expect(length).toBe(1 << 20);
    const view = Buffer.from(buffer, offset, length);
    expect(directWrite(view, 0)).toBe('written');
    expect(directWrite(view, 16)).toBe('EINVAL');
    giveBackAligned(region!);
  });

  it('rounds up to whole 64 KiB pages, reuses a region given back, and never hands out overlapping ones', () => {
    const a = takeAligned(100)!;
    expect(a.length).toBe(65536);
    const b = takeAligned(70_000)!;
    expect(b.length).toBe(131072);
    expect(a.offset + a.length <= b.offset || b.offset + b.length <= a.offset).toBe(true);
    giveBackAligned(a);
    const c = takeAligned(65536)!;
    expect(c.offset).toBe(a.offset);
    // Writing one region leaves the other untouched (they share one memory).
    Buffer.from(c.buffer, c.offset, c.length).fill(7);
    Buffer.from(b.buffer, b.offset, b.length).fill(9);
    expect(Buffer.from(c.buffer, c.offset, c.length).every((x) => x === 7)).toBe(true);
    giveBackAligned(b);
    giveBackAligned(c);
  });

  it('is bounded: past 128 MiB in use it says no (the caller then writes buffered), and takes again once memory is given back', () => {
    const held = [];
    for (let region = takeAligned(8 << 20); region !== undefined; region = takeAligned(8 << 20)) held.push(region);
    expect(held.length).toBeGreaterThan(0);
    expect(held.length).toBeLessThanOrEqual(16);
    expect(takeAligned(8 << 20)).toBeUndefined();
    for (const region of held) giveBackAligned(region);
    expect(takeAligned(8 << 20)).toBeDefined();
  });

  it('nothing for nothing', () => {
    expect(takeAligned(0)).toBeUndefined();
  });
});

/**
 * Shared memory whose first byte sits on a page boundary, for unbuffered (O_DIRECT) file
 * writes, which the kernel refuses (EINVAL) from memory not aligned to the device's block.
 *
 * A SharedArrayBuffer's data is only as aligned as the C allocator makes it (16 bytes past a
 * page boundary with glibc here), and JavaScript cannot see the address: finding the aligned
 * offset by trial costs one refused write each, 0.3 ms apiece on ext4 (30 ms a 1 GiB pull,
 * measured). A shared WebAssembly memory is mapped by V8 at a page boundary and never moves when
 * it grows; so one per process serves as an arena: regions are whole 64 KiB WebAssembly pages,
 * grown on demand up to MAX_BYTES, and returned regions are reused by size. The memory reserves
 * address space (not memory) up front, as every WebAssembly memory does.
 *
 * Where WebAssembly is unavailable (`--jitless`) or the arena is full, `takeAligned` returns
 * undefined and the caller uses ordinary memory and buffered writes.
 */

const PAGE = 64 * 1024;
/** At most this much in regions at once: sixteen 8 MiB download rings. */
const MAX_BYTES = 128 * 1024 * 1024;

export interface AlignedRegion {
  /** The arena's memory as it is now (it covers the region); share it with a worker by posting it. */
  readonly buffer: SharedArrayBuffer;
  /** Where the region starts in `buffer`: a multiple of 64 KiB, so page-aligned. */
  readonly offset: number;
  readonly length: number;
}

/** The part of WebAssembly.Memory used here (the project's type libraries do not declare WebAssembly). */
interface SharedMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
type MemoryConstructor = new (descriptor: { initial: number; maximum: number; shared: true }) => SharedMemory;

let memory: SharedMemory | null | undefined;
const free = new Map<number, number[]>();

function arena(): SharedMemory | null {
  if (memory !== undefined) return memory;
  const Memory = (globalThis as { WebAssembly?: { Memory?: MemoryConstructor } }).WebAssembly?.Memory;
  try {
    memory = Memory === undefined ? null : new Memory({ initial: 0, maximum: MAX_BYTES / PAGE, shared: true });
  } catch {
    memory = null;
  }
  return memory;
}

/** A page-aligned region of at least `bytes` (rounded up to 64 KiB), or undefined when none can be had. */
export function takeAligned(bytes: number): AlignedRegion | undefined {
  const length = Math.ceil(bytes / PAGE) * PAGE;
  const mem = arena();
  if (mem === null || length === 0) return undefined;
  let offset = free.get(length)?.pop();
  if (offset === undefined) {
    const size = mem.buffer.byteLength;
    if (size + length > MAX_BYTES) return undefined;
    try {
      mem.grow(length / PAGE);
    } catch {
      return undefined;
    }
    offset = size;
  }
  return { buffer: mem.buffer, offset, length };
}

/** Gives a region back for reuse; nothing may read or write it afterwards. */
export function giveBackAligned(region: AlignedRegion): void {
  const list = free.get(region.length) ?? [];
  list.push(region.offset);
  free.set(region.length, list);
}

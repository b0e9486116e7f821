import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { ioError } from '../errors.js';

/**
 * Shard serialization (spec §6.3.2): each file cut into consecutive `shardSize`-byte ranges
 * (the last one shorter; an empty file has none), each hashed on its own and named
 * `path:start:end`. Read here in 1 MiB chunks on the calling thread; we verify shard bundles
 * (model_signing writes them with `--shard_size`) but sign with the `files` method.
 */

const CHUNK = 1 << 20;

export interface ShardDigest {
  readonly start: number;
  readonly end: number;
  readonly digest: string;
}

/** The shards of the file at `path`. @throws IoError E_IO */
export function hashShards(path: string, shardSize: number, name: string): ShardDigest[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw ioError(name, error);
  }
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(shardSize, 1)));
    const shards: ShardDigest[] = [];
    for (let start = 0; start < size; start += shardSize) {
      const end = Math.min(start + shardSize, size);
      const hash = createHash('sha256');
      for (let at = start; at < end; ) {
        const n = readSync(fd, buffer, 0, Math.min(buffer.length, end - at), at);
        if (n === 0) break; // the file shrank: the digest will not match, which is the verdict
        hash.update(buffer.subarray(0, n));
        at += n;
      }
      shards.push({ start, end, digest: hash.digest('hex') });
    }
    return shards;
  } catch (error) {
    throw ioError(name, error);
  } finally {
    closeSync(fd);
  }
}

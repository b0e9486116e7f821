import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { asInTotoError } from '../errors.js';

/**
 * The benchmark datasets of issue 3: ML-shaped trees that the recorder must hash near the
 * hardware limit. Generated once per directory (a marker beside each dataset records that it
 * is complete, so an interrupted generation is redone) with incompressible content.
 */

export interface Dataset {
  /** Short name, also the directory name under the datasets root. */
  readonly name: string;
  readonly description: string;
  /** The directory that holds the dataset directory: record with base path = root, path = name. */
  readonly root: string;
  readonly files: number;
  readonly bytes: number;
}

/** How a dataset is laid out: `dirs` directories (0: files directly in the dataset) of equal files. */
export interface DatasetShape {
  readonly name: string;
  readonly description: string;
  readonly dirs: number;
  readonly filesPerDir: number;
  readonly fileBytes: number;
}

const MiB = 1024 * 1024;

/** One 1 GiB file; 20,000 files of 4 KiB in 200 directories; four files of 256 MiB. */
export const RECORD_DATASETS: readonly DatasetShape[] = [
  { name: 'one-1GiB', description: 'one 1 GiB file', dirs: 0, filesPerDir: 1, fileBytes: 1024 * MiB },
  { name: 'many-20k', description: '20,000 files of 4 KiB in 200 directories', dirs: 200, filesPerDir: 100, fileBytes: 4096 },
  { name: 'four-256MiB', description: 'four files of 256 MiB', dirs: 0, filesPerDir: 4, fileBytes: 256 * MiB },
];

/** Writes `bytes` of incompressible data; each 16 MiB block is stamped so no two blocks repeat. */
function writeRandomFile(path: string, bytes: number, block: Buffer, stamp: { next: number }): void {
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < bytes; ) {
      const n = Math.min(block.length, bytes - written);
      block.writeUInt32LE(stamp.next++ >>> 0, 0);
      writeSync(fd, block, 0, n);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates one dataset under `root` unless it is already complete; returns its description.
 * @throws IoError E_IO when it cannot be written
 */
export function ensureDataset(root: string, shape: DatasetShape): Dataset {
  try {
    return generate(root, shape);
  } catch (error) {
    throw asInTotoError(error);
  }
}

function generate(root: string, shape: DatasetShape): Dataset {
  const dir = join(root, shape.name);
  const marker = join(root, `.${shape.name}.complete`);
  const files = (shape.dirs || 1) * shape.filesPerDir;
  const dataset = { name: shape.name, description: shape.description, root, files, bytes: files * shape.fileBytes };
  if (existsSync(marker)) return dataset;
  mkdirSync(root, { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const block = randomFillSync(Buffer.allocUnsafe(Math.min(16 * MiB, Math.max(shape.fileBytes, 4096))));
  const stamp = { next: 0 };
  const width = (n: number): number => String(Math.max(n - 1, 0)).length;
  for (let d = 0; d < (shape.dirs || 1); d++) {
    const sub = shape.dirs === 0 ? dir : join(dir, `d${String(d).padStart(width(shape.dirs), '0')}`);
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < shape.filesPerDir; f++) {
      const file = join(sub, `f${String(f).padStart(width(shape.filesPerDir), '0')}.bin`);
      if (shape.fileBytes <= block.length) {
        randomFillSync(block, 0, shape.fileBytes);
        writeFileSync(file, block.subarray(0, shape.fileBytes));
      } else {
        writeRandomFile(file, shape.fileBytes, block, stamp);
      }
    }
  }
  writeFileSync(marker, '');
  return dataset;
}

/**
 * Creates (or reuses) every record dataset under `root`.
 * @throws IoError E_IO when they cannot be written
 */
export function ensureRecordDatasets(root: string): Dataset[] {
  return RECORD_DATASETS.map((shape) => ensureDataset(root, shape));
}

import {
  constants,
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { IoError, UsageError, ioError, isNodeError } from '../errors.js';
import { isAttestationFileName } from '../model/statement.js';
import type { PlacementReport } from './report.js';

/**
 * The final product, placed into an inspection's scratch directory (THREATS.md: inspections
 * run "in a fresh directory that holds only the final product, never in the verifier's
 * working directory"). The reference runs inspections in the verifier's own directory, next
 * to its layout, links and keys; we never do.
 *
 * What is placed: the paths given with `--final-products` (each under its path relative to
 * the working directory, or its base name when outside it), or by default the working
 * directory minus the layout, the key files given, the link directory, every `*.link`
 * file and every attestation we write (`*.intoto.json`, `*.intoto.jsonl`). How: a hard link when possible (same file system: no bytes copied, whatever the
 * size); otherwise, for a file of {@link BIND_MIN_BYTES} or more and a sandboxed inspection,
 * an empty placeholder with a read-only bind mount of the original over it; otherwise a copy
 * (a reflink where the file system can). Symbolic links are recreated as links (the
 * recorder then decides, as for any step, whether to follow them). FIFOs, sockets and devices
 * are skipped.
 */

/** Files this large are never copied when a read-only bind can be used instead. */
export const BIND_MIN_BYTES = 64 * 1024 * 1024;
/** Caps on what is placed (bounded work). */
export const PLACEMENT_LIMITS = Object.freeze({ entries: 1_000_000, depth: 256 });

export interface PlaceOptions {
  readonly scratch: string;
  readonly cwd: string;
  /** `--final-products`; undefined for the default (the working directory, filtered). */
  readonly finalProducts: readonly string[] | undefined;
  /** Files and directories left out of the default final product (layout, keys, link dir). */
  readonly exclude: readonly string[];
  /** Whether the inspection runs under bwrap, so that read-only binds are possible. */
  readonly sandboxed: boolean;
  readonly note: (message: string) => void;
  readonly warn: (message: string) => void;
}

export interface Placement {
  readonly report: PlacementReport;
  /** Read-only bind mounts for the sandbox (source -> placeholder in the scratch dir). */
  readonly binds: readonly { readonly source: string; readonly target: string }[];
  /** Artifact name (relative to the scratch dir) -> the original file behind its bind. */
  readonly boundSources: ReadonlyMap<string, string>;
  /** Hard-linked artifact names -> the original, to detect an inspection writing through. */
  readonly hardLinked: ReadonlyMap<string, string>;
}

/**
 * Where each `--final-products` path goes in the scratch directory: its path relative to
 * `cwd` when inside it, else its base name.
 * @throws UsageError E_USAGE for an empty path or two paths with the same place
 */
export function finalProductTargets(paths: readonly string[], cwd: string): { source: string; name: string }[] {
  const seen = new Map<string, string>();
  return paths.map((path) => {
    if (path === '' || path.includes('\0')) throw new UsageError('E_USAGE', `--final-products: invalid path ${JSON.stringify(path)}`);
    const source = resolve(cwd, path);
    const rel = relative(cwd, source);
    const name = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : rel === '' ? '' : basename(source);
    const other = [...seen].find(([n]) => n === name || n === '' || name === '' || n.startsWith(`${name}/`) || name.startsWith(`${n}/`));
    if (other !== undefined) {
      throw new UsageError('E_USAGE', `--final-products: ${path} and ${other[1]} would overlap in the inspection directory`);
    }
    seen.set(name, path);
    return { source, name };
  });
}

/**
 * Fills `options.scratch` with the final product.
 * @throws IoError E_IO (a path that cannot be read or placed), E_LIMIT; UsageError E_USAGE
 */
export function placeFinalProducts(options: PlaceOptions): Placement {
  const placer = new Placer(options);
  if (options.finalProducts === undefined) {
    placer.excludeAll(options.exclude);
    placer.place(options.cwd, '', 0, true);
  } else {
    for (const { source, name } of finalProductTargets(options.finalProducts, options.cwd)) {
      if (name.includes('/')) mkdirSync(join(options.scratch, name, '..'), { recursive: true });
      placer.place(source, name, 0, false);
    }
  }
  return placer.result();
}

class Placer {
  private readonly excluded = new Set<string>();
  private entries = 0;
  private readonly counts = { hardLinked: 0, boundReadOnly: 0, copied: 0, copiedBytes: 0, symlinks: 0 };
  private readonly binds: { source: string; target: string }[] = [];
  private readonly boundSources = new Map<string, string>();
  private readonly hardLinked = new Map<string, string>();

  constructor(private readonly options: PlaceOptions) {}

  /** Leaves out these files and directories, recognised by device and inode (not by name). */
  excludeAll(paths: readonly string[]): void {
    for (const path of paths) {
      try {
        this.excluded.add(identity(statSync(path)));
      } catch {
        // absent: nothing to leave out
      }
    }
  }

  place(source: string, name: string, depth: number, filtered: boolean): void {
    if (++this.entries > PLACEMENT_LIMITS.entries || depth > PLACEMENT_LIMITS.depth) {
      throw new IoError('E_LIMIT', `${source}: the final product has more than ${PLACEMENT_LIMITS.entries} entries or is nested too deeply`);
    }
    let stat: Stats;
    try {
      stat = lstatSync(source);
    } catch (error) {
      throw ioError(source, error, 'cannot read the final product');
    }
    if (filtered && name !== '' && this.leftOut(stat, name)) return;
    const target = join(this.options.scratch, name);
    try {
      if (stat.isDirectory()) {
        if (name !== '') mkdirSync(target);
        for (const entry of readdirSync(source).sort()) {
          this.place(join(source, entry), name === '' ? entry : `${name}/${entry}`, depth + 1, filtered);
        }
      } else if (stat.isSymbolicLink()) {
        symlinkSync(readlinkSync(source), target);
        this.counts.symlinks++;
      } else if (stat.isFile()) {
        this.placeFile(source, name, target, stat);
      } else {
        this.options.note(`final product: skipped ${source} (not a regular file, directory or symbolic link)`);
      }
    } catch (error) {
      if (error instanceof IoError || error instanceof UsageError) throw error;
      throw ioError(target, error, 'cannot place the final product in the inspection directory');
    }
  }

  private leftOut(stat: Stats, name: string): boolean {
    if (this.excluded.has(identity(stat))) return true;
    return !stat.isDirectory() && (name.endsWith('.link') || isAttestationFileName(name));
  }

  private placeFile(source: string, name: string, target: string, stat: Stats): void {
    try {
      linkSync(source, target);
      this.counts.hardLinked++;
      this.hardLinked.set(name, source);
      return;
    } catch (error) {
      if (!isNodeError(error) || !['EXDEV', 'EPERM', 'EMLINK', 'EACCES'].includes(error.code ?? '')) throw error;
    }
    if (this.options.sandboxed && stat.size >= BIND_MIN_BYTES) {
      writeFileSync(target, '', { flag: 'wx', mode: 0o444 });
      this.binds.push({ source, target });
      this.boundSources.set(name, source);
      this.counts.boundReadOnly++;
      return;
    }
    if (stat.size >= BIND_MIN_BYTES) {
      this.options.warn(`final product: copying ${source} (${stat.size} bytes): it cannot be hard-linked and no sandbox can bind it read-only`);
    }
    copyFileSync(source, target, constants.COPYFILE_FICLONE);
    this.counts.copied++;
    this.counts.copiedBytes += stat.size;
  }

  result(): Placement {
    return { report: { ...this.counts }, binds: this.binds, boundSources: this.boundSources, hardLinked: this.hardLinked };
  }
}

function identity(stat: Stats): string {
  return `${stat.dev}:${stat.ino}`;
}

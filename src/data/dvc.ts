import { existsSync, lstatSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DataError, ioError } from '../errors.js';
import { LIMITS, readRegularFileSync } from '../io/files.js';
import { compileExcludePatterns, type ExcludeFilter } from '../runner/exclude.js';
import { readDirectory } from '../runner/list-directory.js';
import { dirMd5, dvcFileMd5, type DirEntry, type DvcHashName } from './dvc-hash.js';

/**
 * `intoto data check`: the outputs (and dependencies) a `.dvc` file or a `dvc.lock` records,
 * recomputed as DVC computes them and compared: every file and directory whose md5, size or
 * file count differs is listed; for a directory whose `.dir` object is in the DVC cache, every
 * file added, removed or changed inside it too. Entries DVC records without an md5 (params,
 * remote URLs, etags) are reported as not checked.
 */

/** One recorded output or dependency. */
export interface DvcEntry {
  /** The stage (dvc.lock) or the .dvc file it comes from. */
  readonly stage: string;
  readonly role: 'out' | 'dep';
  /** As recorded, relative to `base`. */
  readonly path: string;
  readonly base: string;
  readonly md5: string | undefined;
  readonly hashName: DvcHashName;
  readonly size: number | undefined;
  readonly nfiles: number | undefined;
}

export type DataFinding =
  | { readonly kind: 'ok'; readonly entry: DvcEntry }
  | { readonly kind: 'unchecked'; readonly entry: DvcEntry; readonly why: string }
  | { readonly kind: 'missing'; readonly entry: DvcEntry }
  | { readonly kind: 'changed'; readonly entry: DvcEntry; readonly expected: string; readonly actual: string; readonly what: string; readonly files: readonly DirChange[] };

/** A change inside a directory, known when its recorded `.dir` object is in the cache. */
export type DirChange =
  | { readonly kind: 'changed'; readonly relpath: string; readonly expected: string; readonly actual: string }
  | { readonly kind: 'added'; readonly relpath: string; readonly actual: string }
  | { readonly kind: 'removed'; readonly relpath: string; readonly expected: string };

export interface DataCheckOptions {
  /** Where recorded paths are resolved (default: the file's directory, plus a stage's wdir). */
  readonly root?: string;
}

const fail = (file: string, message: string): DataError => new DataError('E_DVC_FORMAT', `${file}: ${message}`, { context: { file } });

type Yaml = Record<string, unknown>;
const isMap = (v: unknown): v is Yaml => typeof v === 'object' && v !== null && !Array.isArray(v);

function readYaml(path: string): unknown {
  const text = readRegularFileSync(path, { maxBytes: LIMITS.yamlBytes, what: 'DVC file' }).toString('utf8');
  try {
    // failsafe: every scalar a string, so an md5 of only digits stays text.
    return parseYaml(text, { schema: 'failsafe', uniqueKeys: true, maxAliasCount: 100, merge: false });
  } catch (cause) {
    throw new DataError('E_DVC_FORMAT', `${path}: not valid YAML (${(cause as Error).message})`, { cause, context: { file: path } });
  }
}

function entriesOf(list: unknown, role: 'out' | 'dep', stage: string, base: string, file: string): DvcEntry[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw fail(file, `${stage}: ${role}s must be a list`);
  return list.map((item, i) => {
    if (!isMap(item) || typeof item['path'] !== 'string' || item['path'] === '') throw fail(file, `${stage}: ${role}s[${i}] needs a path`);
    const md5 = item['md5'];
    const hash = item['hash'];
    if (md5 !== undefined && (typeof md5 !== 'string' || !/^[0-9a-f]{32}(\.dir)?$/.test(md5))) throw fail(file, `${stage}: ${role}s[${i}] (${item['path']}): md5 is not 32 hex digits`);
    if (hash !== undefined && hash !== 'md5') throw fail(file, `${stage}: ${role}s[${i}] (${item['path']}): hash ${JSON.stringify(hash)} is not supported (md5)`);
    const number = (key: string): number | undefined => {
      const v = item[key];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(v)) throw fail(file, `${stage}: ${role}s[${i}] (${item['path']}): ${key} must be a count`);
      return Number(v);
    };
    return {
      stage,
      role,
      path: item['path'],
      base,
      md5: md5 as string | undefined,
      hashName: hash === 'md5' ? 'md5' : 'md5-dos2unix',
      size: number('size'),
      nfiles: number('nfiles'),
    };
  });
}

/** The stage wdirs dvc.yaml declares beside a dvc.lock (literal ones only). */
function stageWdirs(lockPath: string): Map<string, string> {
  const wdirs = new Map<string, string>();
  const yamlPath = join(dirname(lockPath), 'dvc.yaml');
  if (!existsSync(yamlPath)) return wdirs;
  const doc = readYaml(yamlPath);
  const stages = isMap(doc) ? doc['stages'] : undefined;
  if (!isMap(stages)) return wdirs;
  for (const [name, stage] of Object.entries(stages)) {
    const wdir = isMap(stage) ? stage['wdir'] : undefined;
    if (typeof wdir !== 'string') continue;
    if (wdir.includes('${')) throw fail(yamlPath, `stage ${name}: a templated wdir cannot be resolved here; give --root`);
    wdirs.set(name, wdir);
  }
  return wdirs;
}

/**
 * The entries a `.dvc` file or a `dvc.lock` records.
 * @throws DataError E_DVC_FORMAT; IoError
 */
export function readDvcEntries(file: string, options: DataCheckOptions = {}): DvcEntry[] {
  const doc = readYaml(file);
  if (!isMap(doc)) throw fail(file, 'not a DVC file (a YAML mapping)');
  const dir = dirname(resolve(file));
  if (basename(file) === 'dvc.lock' || doc['stages'] !== undefined) {
    const stages = doc['stages'];
    if (!isMap(stages)) throw fail(file, 'a dvc.lock holds a `stages` mapping');
    const wdirs = options.root === undefined ? stageWdirs(file) : new Map<string, string>();
    return Object.entries(stages).flatMap(([name, stage]) => {
      if (!isMap(stage)) throw fail(file, `stage ${name} is not a mapping`);
      const base = options.root !== undefined ? resolve(options.root) : join(dir, wdirs.get(name) ?? wdirs.get(name.split('@')[0] ?? '') ?? '.');
      return [...entriesOf(stage['deps'], 'dep', name, base, file), ...entriesOf(stage['outs'], 'out', name, base, file)];
    });
  }
  const wdir = typeof doc['wdir'] === 'string' ? doc['wdir'] : '.';
  const base = options.root !== undefined ? resolve(options.root) : join(dir, wdir);
  const entries = [...entriesOf(doc['deps'], 'dep', basename(file), base, file), ...entriesOf(doc['outs'], 'out', basename(file), base, file)];
  if (entries.length === 0) throw fail(file, 'records no outs');
  return entries;
}

/**
 * Checks every entry of `file` against the files on disk.
 * @throws DataError E_DVC_FORMAT; IoError (an unreadable file or directory)
 */
export function checkDvcFile(file: string, options: DataCheckOptions = {}): DataFinding[] {
  return readDvcEntries(file, options).map((entry) => checkEntry(entry));
}

function checkEntry(entry: DvcEntry): DataFinding {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry.path)) return { kind: 'unchecked', entry, why: 'a remote location (checked by DVC, not here)' };
  if (entry.md5 === undefined) return { kind: 'unchecked', entry, why: 'no md5 recorded' };
  const path = join(entry.base, entry.path);
  let stat;
  try {
    stat = statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing', entry };
    throw ioError(path, error);
  }
  if (entry.md5.endsWith('.dir')) {
    if (!stat.isDirectory()) return { kind: 'changed', entry, expected: entry.md5, actual: 'a file', what: 'is a file, recorded as a directory', files: [] };
    const entries = walkDvcDirectory(path, entry.hashName);
    const actual = dirMd5(entries);
    const size = entries.reduce((sum, e) => sum + e.size, 0);
    const problems: string[] = [];
    if (actual !== entry.md5) problems.push('md5 differs');
    if (entry.size !== undefined && entry.size !== size) problems.push(`size ${size}, recorded ${entry.size}`);
    if (entry.nfiles !== undefined && entry.nfiles !== entries.length) problems.push(`${entries.length} files, recorded ${entry.nfiles}`);
    if (problems.length === 0) return { kind: 'ok', entry };
    return { kind: 'changed', entry, expected: entry.md5, actual, what: problems.join(', '), files: dirChanges(entry, entries) };
  }
  if (!stat.isFile()) return { kind: 'changed', entry, expected: entry.md5, actual: 'a directory', what: 'is a directory, recorded as a file', files: [] };
  const { md5, size } = dvcFileMd5(path, entry.hashName);
  const problems: string[] = [];
  if (md5 !== entry.md5) problems.push('md5 differs');
  if (entry.size !== undefined && entry.size !== size) problems.push(`size ${size}, recorded ${entry.size}`);
  return problems.length === 0 ? { kind: 'ok', entry } : { kind: 'changed', entry, expected: entry.md5, actual: md5, what: problems.join(', '), files: [] };
}

/** DVC's own ignores (dvc/ignore.py) for every directory it walks, plus the .dvcignore files. */
const DEFAULT_IGNORES = ['.git', '.hg', '.dvc'];

interface SizedEntry extends DirEntry {
  readonly size: number;
}

/**
 * The files DVC records for a tracked directory: every file below it (symlinks to files are
 * hashed through, symlinked directories not descended, as os.walk), minus `.git`, `.hg`,
 * `.dvc` and what `.dvcignore` files at the directory and below exclude.
 */
function walkDvcDirectory(root: string, hashName: DvcHashName): SizedEntry[] {
  const out: SizedEntry[] = [];
  const pending: { real: string; rel: string; filters: { base: string; filter: ExcludeFilter }[] }[] = [{ real: root, rel: '', filters: [] }];
  for (let frame = pending.pop(); frame !== undefined; frame = pending.pop()) {
    const filters = [...frame.filters];
    const ignoreFile = join(frame.real, '.dvcignore');
    if (existsSync(ignoreFile)) {
      const patterns = readFileSync(ignoreFile, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
      if (patterns.length > 0) filters.push({ base: frame.rel, filter: compileExcludePatterns(patterns) });
    }
    const excluded = (rel: string, dir: boolean): boolean =>
      filters.some(({ base, filter }) => {
        const local = base === '' ? rel : rel.slice(base.length + 1);
        return filter.excludes(local) || (dir && filter.excludes(`${local}/`));
      });
    for (const { entry, text } of readDirectory({ real: frame.real, name: frame.rel === '' ? root : join(root, frame.rel) })) {
      const rel = frame.rel === '' ? text : `${frame.rel}/${text}`;
      const onDisk = join(frame.real, text);
      const kind = entry.isFile() || entry.isDirectory() || entry.isSymbolicLink() ? entry : lstatSync(onDisk); // DT_UNKNOWN
      const isLink = kind.isSymbolicLink();
      let isDir = kind.isDirectory();
      let isFile = kind.isFile();
      if (isLink) {
        try {
          const target = statSync(onDisk);
          isFile = target.isFile();
          isDir = false; // os.walk does not descend symlinked directories
        } catch {
          continue; // dangling: os.walk lists it, DVC's info() fails on it; skip with the walk
        }
      }
      if (isDir) {
        if (DEFAULT_IGNORES.includes(text) || excluded(rel, true)) continue;
        pending.push({ real: onDisk, rel, filters });
      } else if (isFile) {
        if (excluded(rel, false)) continue;
        const { md5, size } = dvcFileMd5(onDisk, hashName);
        out.push({ relpath: rel, md5, size });
      }
    }
  }
  return out;
}

/** The DVC cache's copy of a `.dir` object, looked for in the nearest `.dvc/cache` above `from`. */
function cachedListing(from: string, md5: string): DirEntry[] | undefined {
  let dir = from;
  for (let i = 0; i < 64; i++) {
    for (const candidate of [join(dir, '.dvc', 'cache', 'files', 'md5', md5.slice(0, 2), md5.slice(2)), join(dir, '.dvc', 'cache', md5.slice(0, 2), md5.slice(2))]) {
      if (!existsSync(candidate)) continue;
      try {
        const list = JSON.parse(readRegularFileSync(candidate, { maxBytes: LIMITS.metadataBytes, what: 'DVC .dir object' }).toString('utf8')) as unknown;
        if (Array.isArray(list)) return list.filter((e): e is DirEntry => isMap(e) && typeof e['relpath'] === 'string' && typeof e['md5'] === 'string');
      } catch {
        return undefined;
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

function dirChanges(entry: DvcEntry, actual: readonly DirEntry[]): DirChange[] {
  const recorded = cachedListing(realpathOr(entry.base), entry.md5 ?? '');
  if (recorded === undefined) return [];
  const now = new Map(actual.map((e) => [e.relpath, e.md5]));
  const then = new Map(recorded.map((e) => [e.relpath, e.md5]));
  const changes: DirChange[] = [];
  for (const [relpath, expected] of then) {
    const current = now.get(relpath);
    if (current === undefined) changes.push({ kind: 'removed', relpath, expected });
    else if (current !== expected) changes.push({ kind: 'changed', relpath, expected, actual: current });
  }
  for (const [relpath, current] of now) if (!then.has(relpath)) changes.push({ kind: 'added', relpath, actual: current });
  return changes;
}

function realpathOr(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return path;
  }
}

/** One line per finding that is not ok. */
export function describeFinding(f: Exclude<DataFinding, { kind: 'ok' }>): string {
  const where = `${f.entry.stage}: ${f.entry.role} ${f.entry.path}`;
  if (f.kind === 'unchecked') return `${where}: not checked (${f.why})`;
  if (f.kind === 'missing') return `${where}: missing (recorded md5 ${f.entry.md5 ?? '?'})`;
  return `${where}: ${f.what}: md5 ${f.actual} now, ${f.expected} recorded`;
}

/** One line per change inside a directory. */
export function describeDirChange(c: DirChange): string {
  if (c.kind === 'added') return `${c.relpath}: added (md5 ${c.actual})`;
  if (c.kind === 'removed') return `${c.relpath}: removed (recorded md5 ${c.expected})`;
  return `${c.relpath}: changed: md5 ${c.actual} now, ${c.expected} recorded`;
}

/** Whether anything `findings` reports is a mismatch (unchecked entries are not). */
export function hasMismatch(findings: readonly DataFinding[]): boolean {
  return findings.some((f) => f.kind === 'missing' || f.kind === 'changed');
}

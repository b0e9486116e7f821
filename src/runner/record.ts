import { realpathSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { indicesByCodePoints } from '../canonical/json.js';
import { InternalError, IoError, UsageError, asInTotoError, ioError } from '../errors.js';
import { RECORDABLE_HASH_ALGORITHMS, type HashDict, type RecordableHashAlgorithm } from '../model/artifacts.js';
import { makeDigests } from '../model/digests.js';
import { assertRecordableNames, checkLstripPrefixes } from './artifact-names.js';
import { compileExcludePatterns } from './exclude.js';
import { hashFiles, type HashResults } from './hash-pool.js';
import { problemError, type HashProblem } from './hash-job.js';
import { collectFiles, type FileJob } from './walk.js';

/**
 * Recording artifacts: the materials or products of a link. Names are what the reference's
 * `in-toto-run` records for the same tree and arguments; what differs is on purpose (see
 * {@link recordArtifacts}). Two phases: a synchronous walk that decides every name and checks
 * every limit before any content is read (walk.ts), then hashing across threads (hash-pool.ts).
 */

/** The reference's default exclude patterns (in_toto.settings.ARTIFACT_EXCLUDE_PATTERNS). */
export const DEFAULT_EXCLUDE_PATTERNS: readonly string[] = Object.freeze(['*.link*', '.git', '*.pyc', '*~']);

/** Default caps (THREATS.md invariant 3): a link with a million artifacts is about 100 MB. */
export const DEFAULT_RECORD_LIMITS = Object.freeze({ maxArtifacts: 1_000_000, maxDepth: 256 });

/** Options of {@link recordArtifacts}; everything that changes what is recorded is explicit here. */
export interface RecordOptions {
  /** Default process.cwd(). Artifacts are resolved against it and named relative to it. */
  readonly basePath?: string;
  /**
   * gitignore (pathspec 'gitwildmatch') patterns. When given and non-empty they replace the
   * defaults; an empty list means the defaults, as in the reference (`if exclude_patterns:`).
   */
  readonly excludePatterns?: readonly string[];
  readonly lstripPaths?: readonly string[];
  /** Default ['sha256']. */
  readonly algorithms?: readonly RecordableHashAlgorithm[];
  /** Default true (what in-toto-run and in-toto-record use). */
  readonly followSymlinkDirs?: boolean;
  readonly onWarning?: (message: string) => void;
  readonly limits?: { readonly maxArtifacts?: number; readonly maxDepth?: number };
  /** Threads to hash on. Default os.availableParallelism(). */
  readonly concurrency?: number;
}

/** Up to this many files, sizes are looked up first so the largest start first. */
const SIZE_PLANNING_MAX_FILES = 4096;
/** Below this much work besides the largest file, a worker costs more than it saves. */
const PARALLEL_MIN_BYTES = 64 * 1024 * 1024;

/**
 * Hashes the files under `paths` and returns artifact name -> digests, sorted by name.
 *
 * As the reference: paths are normalised (`sub/../a.txt` is `a.txt`), directories walked,
 * exclude patterns applied to each given path and to every walked path (an excluded directory
 * is not descended), `--lstrip-paths` strips the first matching prefix, a symlink to a file is
 * recorded under the link's name with the target's hash, symlinked directories are followed.
 *
 * Stricter than the reference: nothing is read from the environment or the working directory
 * (no `.in_totorc`, no `IN_TOTO_*`); a path outside the base path is refused unless an
 * --lstrip-paths prefix covers it; an absolute name is refused; every name must pass
 * `artifactNameProblem` and be valid UTF-8 on disk; symlinks whose target leaves the base path
 * are not followed; loops end; dangling links, FIFOs, sockets and devices are skipped (never
 * opened) with a warning; directories that cannot be listed are errors, not silently skipped.
 *
 * @throws UsageError E_USAGE for invalid options or an exclude pattern pathspec rejects
 * @throws RunError E_PATH_OUTSIDE_BASE, E_LSTRIP
 * @throws FormatError E_ARTIFACT_NAME, E_ARTIFACT_ALIAS (also two names equal under case folding)
 * @throws IoError E_LIMIT when a cap is exceeded (before hashing), E_IO on a file error
 * @throws InternalError E_INTERNAL if a hashing thread dies
 */
export async function recordArtifacts(
  paths: readonly string[],
  options: RecordOptions = {},
): Promise<Map<string, HashDict>> {
  try {
    return await record(paths, options);
  } catch (error) {
    throw asInTotoError(error);
  }
}

async function record(paths: readonly string[], options: RecordOptions): Promise<Map<string, HashDict>> {
  const algorithms = checkAlgorithms(options.algorithms);
  const limits = {
    maxArtifacts: checkCount('limits.maxArtifacts', options.limits?.maxArtifacts, DEFAULT_RECORD_LIMITS.maxArtifacts),
    maxDepth: checkCount('limits.maxDepth', options.limits?.maxDepth, DEFAULT_RECORD_LIMITS.maxDepth),
  };
  const concurrency = checkCount('concurrency', options.concurrency, availableParallelism());
  const patterns = options.excludePatterns !== undefined && options.excludePatterns.length > 0 ? options.excludePatterns : DEFAULT_EXCLUDE_PATTERNS;
  const filter = compileExcludePatterns(patterns);
  const lstripPaths = [...(options.lstripPaths ?? [])];
  checkLstripPrefixes(lstripPaths);
  const { basePath, realBase } = resolveBasePath(options.basePath);
  const warn = options.onWarning ?? ((): void => {});

  const jobs = collectFiles(paths, {
    basePath,
    realBase,
    filter,
    lstripPaths,
    followSymlinkDirs: options.followSymlinkDirs ?? true,
    ...limits,
    warn,
  });
  assertRecordableNames(jobs.map((job) => job.name));
  const { order, threads } = plan(jobs, concurrency);
  const results = await hashFiles(
    order.map((i) => jobs[i]!.openPath),
    algorithms,
    { threads },
  );
  // Report in walk order, whatever order the files were hashed in: the first error in walk
  // order is the one reported.
  const position = new Int32Array(jobs.length);
  order.forEach((jobIndex, k) => {
    position[jobIndex] = k;
  });
  let firstError: { walkIndex: number; problem: Extract<HashProblem, { kind: 'error' }> } | undefined;
  for (const [k, problem] of results.problems()) {
    const walkIndex = order[k]!;
    if (problem.kind === 'error' && (firstError === undefined || walkIndex < firstError.walkIndex)) firstError = { walkIndex, problem };
  }
  if (firstError !== undefined) throw problemError(firstError.problem);
  // Files that could not be hashed, warned about in walk order.
  jobs.forEach((job, i) => {
    const k = position[i]!;
    if (results.hashed(k)) return;
    // Errors were thrown above: what is left is a file that was never hashed (a bug) or one
    // that stopped being a regular file.
    const problem = results.problem(k);
    if (problem?.kind !== 'not-regular') throw new InternalError('E_INTERNAL', `${job.name}: was never hashed`);
    warn(`${job.name}: became ${problem.what} while recording; skipped`);
  });
  // One map, built in code-point order of name (names are unique: the walk drops repeats).
  const recorded = new Map<string, HashDict>();
  for (const i of indicesByCodePoints(jobs.map((job) => job.name))) {
    const k = position[i]!;
    if (results.hashed(k)) recorded.set(jobs[i]!.name, digestsOf(algorithms, results, k));
  }
  return recorded;
}

/** The digest dict of one file: the compact form links keep (one Map per artifact costs several times more). */
function digestsOf(algorithms: readonly RecordableHashAlgorithm[], results: HashResults, k: number): HashDict {
  const [first, ...rest] = algorithms;
  if (first === undefined) throw new InternalError('E_INTERNAL', 'a file was hashed with no algorithm');
  if (rest.length === 0) return makeDigests(first, results.hex(k, 0), undefined, undefined);
  return makeDigests(first, results.hex(k, 0), rest, rest.map((_, j) => results.hex(k, j + 1)));
}

/**
 * Largest files first when there are few enough files to look their sizes up (a big file
 * started last would run alone at the end), and worker threads only when there is enough
 * work for them to pay for their start-up.
 */
function plan(jobs: readonly FileJob[], concurrency: number): { order: number[]; threads: number } {
  const order = jobs.map((_, i) => i);
  if (concurrency <= 1 || jobs.length <= 1) return { order, threads: 1 };
  if (jobs.length > SIZE_PLANNING_MAX_FILES) return { order, threads: concurrency };
  const sizes = jobs.map((job) => sizeOf(job.openPath));
  order.sort((a, b) => sizes[b]! - sizes[a]! || a - b);
  const total = sizes.reduce((sum, size) => sum + size, 0);
  const rest = total - sizes[order[0]!]!;
  return { order, threads: rest >= PARALLEL_MIN_BYTES ? concurrency : 1 };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // only a scheduling hint; opening it later reports the real problem
  }
}

function resolveBasePath(given: string | undefined): { basePath: string; realBase: string } {
  if (given !== undefined && (given === '' || given.includes('\0'))) {
    throw new UsageError('E_USAGE', `invalid base path ${JSON.stringify(given)}`);
  }
  const basePath = resolve(given ?? process.cwd());
  let realBase: string;
  try {
    realBase = realpathSync.native(basePath);
  } catch (error) {
    throw ioError(basePath, error, 'cannot use as base path');
  }
  if (!statSync(realBase).isDirectory()) {
    throw new IoError('E_IO', `${basePath}: cannot use as base path (not a directory)`, { context: { file: basePath } });
  }
  return { basePath, realBase };
}

function checkAlgorithms(given: readonly string[] | undefined): RecordableHashAlgorithm[] {
  if (given === undefined) return ['sha256'];
  const known: readonly string[] = RECORDABLE_HASH_ALGORITHMS;
  const chosen: RecordableHashAlgorithm[] = [];
  for (const algorithm of given) {
    if (!known.includes(algorithm)) {
      throw new UsageError('E_USAGE', `cannot record with hash algorithm ${JSON.stringify(algorithm)} (use ${known.join(' or ')})`);
    }
    if (!chosen.includes(algorithm as RecordableHashAlgorithm)) chosen.push(algorithm as RecordableHashAlgorithm);
  }
  if (chosen.length === 0) throw new UsageError('E_USAGE', 'no hash algorithm to record with');
  return chosen;
}

function checkCount(what: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError('E_USAGE', `${what} must be a positive integer, not ${String(value)}`);
  }
  return value;
}

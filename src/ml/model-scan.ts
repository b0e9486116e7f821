import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { InTotoError, InternalError, ModelError, UsageError, ioError } from '../errors.js';
import { compressionOf, decompress } from './decompress.js';
import { DecompressError } from './decompress-error.js';
import { isJpeg, isPng, textKind } from './format-inert.js';
import { NPY_MAGIC, scanNpy } from './format-numpy.js';
import { looksLikeOnnx, looksLikeSentencePiece, scanOnnx } from './format-onnx.js';
import { scanPickleSource } from './format-pickle.js';
import { safetensorsHeaderLength, scanSafetensors } from './format-safetensors.js';
import { LEGACY_MAGIC, scanTorchLegacy, scanTorchZip, torchRoot, isTorchScript } from './format-torch.js';
import type { FileScan, ModelFindingCode, ModelFormat } from './model-types.js';
import { OPCODE_BY_BYTE } from './pickle-opcodes.js';
import { ByteCursor } from './pickle-reader.js';
import { Collector, scanPickleStream } from './pickle.js';
import { DEFAULT_POLICY, type ModelPolicy } from './policy.js';
import { DEFAULT_MODEL_LIMITS, ScanContext, type ModelLimits } from './scan-context.js';
import { BufferSource, FileSource, type ByteSource } from './source.js';
import { checkMemberCrc, memberSource, readZip } from './zip.js';

/**
 * `intoto scan-model`: decides, without loading anything, whether model files are safe to
 * load. Formats are recognised by content, never by name (see {@link detect}); each is read by
 * its own module (format-*.ts), which reports members, globals and findings into a
 * {@link ScanContext}. A file is safe exactly when it has no finding. Work is bounded by
 * {@link ModelLimits}; no input produces anything but a verdict or one of our typed errors.
 */

export type { FileScan, GlobalReport, MemberReport, ModelFinding, ModelFindingCode, ModelFormat } from './model-types.js';
export { DEFAULT_MODEL_LIMITS, type ModelLimits } from './scan-context.js';

export interface ScanModelOptions {
  /** The allow-list policy (default: DEFAULT_POLICY). */
  readonly policy?: ModelPolicy;
  /** Caps, each defaulting to DEFAULT_MODEL_LIMITS. */
  readonly limits?: Partial<ModelLimits>;
}

/** Extensions that promise a format that runs no code; content must match. */
const PROMISED: ReadonlyMap<string, readonly ModelFormat[]> = new Map([
  ['.safetensors', ['safetensors']],
  ['.onnx', ['onnx']],
  ['.npy', ['numpy-npy']],
  ['.npz', ['numpy-npz', 'zip']],
  ['.json', ['json', 'empty']],
  ['.png', ['png']],
  ['.jpg', ['jpeg']],
  ['.jpeg', ['jpeg']],
  ['.txt', ['text', 'json', 'empty']],
  ['.md', ['text', 'json', 'empty']],
  ['.csv', ['text', 'empty']],
  ['.yaml', ['text', 'json', 'empty']],
  ['.yml', ['text', 'json', 'empty']],
]);

/**
 * Extensions of model files (and of joblib's compressed ones): content that is inert there
 * (text, JSON, an image, nothing) is not a model, most often a Git LFS pointer fetched in
 * place of the weights, and is reported rather than passed as "safe".
 */
const MODEL_EXTENSIONS: ReadonlySet<string> = new Set([
  '.pt', '.pth', '.bin', '.pkl', '.pickle', '.joblib', '.ckpt', '.h5', '.msgpack', '.gguf', '.tflite', '.mar',
  '.z', '.gz', '.bz2', '.xz', '.lzma', '.zlib', '.safetensors', '.onnx', '.npy', '.npz',
]);
const INERT: ReadonlySet<ModelFormat> = new Set(['json', 'text', 'png', 'jpeg', 'sentencepiece', 'empty']);

/** Formats that run code when loaded (a mismatch to these from a "safe" extension matters most). */
const RUNS_CODE: ReadonlySet<ModelFormat> = new Set(['pickle', 'joblib', 'joblib-zlib', 'joblib-gzip', 'joblib-bz2', 'joblib-lzma', 'joblib-xz', 'pytorch-zip', 'pytorch-legacy', 'torchscript']);

/** Findings that mean the loader imports or calls something (not merely fails). */
const EXECUTES: ReadonlySet<string> = new Set(['import', 'call', 'instantiate', 'argument', 'build-global', 'unresolved-import', 'extension', 'nested-pickle']);

/** How a source's first bytes classify it (before any format's own checks). */
export type Detected =
  | 'empty'
  | 'zip'
  | 'numpy-npy'
  | 'safetensors'
  | 'pytorch-legacy'
  | 'pickle'
  | 'compressed'
  | 'png'
  | 'jpeg'
  | 'protobuf'
  | 'maybe-pickle'
  | 'other';

/** Classifies a source by its first bytes. */
export function detect(head: Uint8Array, size: number): Detected {
  if (size === 0) return 'empty';
  if (head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))) return 'zip';
  if (NPY_MAGIC.every((b, i) => head[i] === b)) return 'numpy-npy';
  const headerLength = safetensorsHeaderLength(head);
  if (headerLength !== undefined && !(head[0] === 0x80 && (head[1] ?? 9) <= 5 && headerLength > size - 8)) return 'safetensors';
  if (LEGACY_MAGIC.every((b, i) => head[i] === b)) return 'pytorch-legacy';
  if (head[0] === 0x80 && (head[1] ?? 9) <= 5) return 'pickle';
  if (compressionOf(head) !== undefined) return 'compressed';
  if (isPng(head)) return 'png';
  if (isJpeg(head)) return 'jpeg';
  if (head[0] === 0x08 || head[0] === 0x0a) return 'protobuf';
  if (OPCODE_BY_BYTE[head[0] ?? 0] !== undefined) return 'maybe-pickle';
  return 'other';
}

/** Scans one source (a file, or a member of one), returning the format it was read as. */
export function scanSource(ctx: ScanContext, source: ByteSource, member: string, depth: number): ModelFormat {
  if (depth > ctx.limits.maxNesting) {
    ctx.finding(member, 'format', 'E_LIMIT', `nested more than ${ctx.limits.maxNesting} archives deep; not scanned`);
    return 'unknown';
  }
  const head = source.read(0, 64);
  const kind = detect(head, source.size);
  const format = scanDetected(ctx, source, member, depth, kind, head);
  const name = member === '' ? ctx.file : member;
  const extension = extname(name).toLowerCase();
  if (MODEL_EXTENSIONS.has(extension) && INERT.has(format)) {
    const lfs = format === 'text' && /^version https:\/\/git-lfs\.github\.com\/spec\/v1\n/.test(Buffer.from(head).toString('latin1'));
    ctx.finding(member, 'mismatch', 'E_MODEL_FORMAT', lfs ? `named ${extension}, but it is a Git LFS pointer, not the model: fetch the file itself (git lfs pull)` : `named ${extension}, but its content is ${format === 'empty' ? 'empty' : `${format}, not a model`}`);
    return format;
  }
  const promised = PROMISED.get(extension);
  if (promised !== undefined && !promised.includes(format)) {
    const claim = extname(name).toLowerCase();
    const runs = RUNS_CODE.has(format) ? `, which runs code when loaded (${claim} files never do)` : '';
    ctx.finding(member, 'mismatch', 'E_MODEL_FORMAT', `named ${claim}, but its content is ${format === 'unknown' ? 'not that format' : `a ${format} file`}${runs}`);
  }
  return format;
}

function scanDetected(ctx: ScanContext, source: ByteSource, member: string, depth: number, kind: Detected, head: Uint8Array): ModelFormat {
  switch (kind) {
    case 'empty':
      return 'empty';
    case 'zip':
      return scanZip(ctx, source, member, depth);
    case 'numpy-npy':
      scanNpy(ctx, source, member);
      return 'numpy-npy';
    case 'safetensors':
      scanSafetensors(ctx, source, member);
      return 'safetensors';
    case 'pytorch-legacy':
      scanTorchLegacy(ctx, source, member);
      return 'pytorch-legacy';
    case 'pickle':
      return scanPickleSource(ctx, source, member, true) ? 'joblib' : 'pickle';
    case 'compressed':
      return scanCompressed(ctx, source, member, head);
    case 'png':
      return 'png';
    case 'jpeg':
      return 'jpeg';
    case 'protobuf':
      if (source.size <= ctx.limits.maxReadBytes * 8 && head[0] === 0x08 && looksLikeOnnx(source)) {
        scanOnnx(ctx, source, member);
        return 'onnx';
      }
      if (head[0] === 0x0a && source.size <= ctx.limits.maxReadBytes && looksLikeSentencePiece(source)) return 'sentencepiece';
      return textOrUnknown(ctx, source, member);
    case 'maybe-pickle':
      return maybePickle(ctx, source, member);
    case 'other':
      return textOrUnknown(ctx, source, member);
  }
}

/**
 * A file that starts with a pickle opcode but no PROTO (protocols 0 and 1, or text that happens
 * to): a pickle if pickle.load would import or call anything in it, or read it to its STOP;
 * otherwise text, if it is text.
 */
function maybePickle(ctx: ScanContext, source: ByteSource, member: string): ModelFormat {
  const sink = new Collector();
  const budget = { remaining: ctx.budget.remaining, max: ctx.budget.max };
  const end = scanPickleStream(new ByteCursor(source), { policy: ctx.policy, sink, budget });
  // What the loader would do before it raised at the first malformation (pickle.py imports
  // INST's class before it looks for the MARK): call or build anything, or import a name that
  // is never allowed. A text file whose first lines merely read as the import of some unknown
  // module before the stream breaks (a labels.txt of "cat", "dog") is text; modules that act
  // when merely imported (antigravity, this) are on the never-allowed list.
  const broke = sink.findings.find((f) => f.kind === 'malformed')?.offset ?? Infinity;
  const acts = sink.findings.some(
    (f) => (f.kind === 'import' ? f.never === true : EXECUTES.has(f.kind)) && (f.offset < broke || (f.offset === broke && f.kind === 'import')),
  );
  if (end.stopped || acts) return scanPickleSource(ctx, source, member, true) ? 'joblib' : 'pickle';
  const text = textKind(source, ctx.limits.maxReadBytes);
  if (text !== undefined) return text;
  if (end.opcodes >= 2) {
    scanPickleSource(ctx, source, member, true);
    return 'pickle';
  }
  return unknown(ctx, source, member);
}

function textOrUnknown(ctx: ScanContext, source: ByteSource, member: string): ModelFormat {
  return textKind(source, ctx.limits.maxReadBytes) ?? unknown(ctx, source, member);
}

function unknown(ctx: ScanContext, source: ByteSource, member: string): ModelFormat {
  const head = Buffer.from(source.read(0, 8)).toString('hex');
  ctx.finding(member, 'format', 'E_MODEL_FORMAT', `not a format scan-model recognises (first bytes ${head}); nothing vouches that it runs no code when loaded`);
  return 'unknown';
}

function scanCompressed(ctx: ScanContext, source: ByteSource, member: string, head: Uint8Array): ModelFormat {
  const kind = compressionOf(head);
  if (kind === undefined || kind === 'lz4' || kind === 'joblib-zfile') {
    const what = kind === 'lz4' ? 'joblib lz4 compression' : "joblib's pre-0.10 ZF format";
    ctx.finding(member, 'format', 'E_MODEL_FORMAT', `${what} is not supported; re-save the model with zlib, gzip, bz2, lzma or xz compression`);
    return 'unknown';
  }
  const format = `joblib-${kind}` as ModelFormat;
  if (source.size > ctx.limits.maxDecompressedBytes) {
    ctx.finding(member, 'format', 'E_LIMIT', `${source.size} compressed bytes, over the limit of ${ctx.limits.maxDecompressedBytes}; not scanned`);
    return format;
  }
  let data: Uint8Array;
  try {
    data = decompress(kind, source.read(0, source.size), ctx.limits.maxDecompressedBytes);
  } catch (error) {
    const limit = error instanceof DecompressError && error.limit;
    ctx.finding(member, 'format', limit ? 'E_LIMIT' : 'E_MODEL_MALFORMED', `${kind} data ${limit ? '' : 'that cannot be decompressed: '}${(error as Error).message}`);
    return format;
  }
  const inner = new BufferSource(data);
  const name = `${member || '(file)'} decompressed`;
  ctx.member({ name, format: 'pickle', size: data.length });
  if (data.length === 0 || OPCODE_BY_BYTE[data[0] ?? 0] === undefined) {
    ctx.finding(member, 'format', 'E_MODEL_FORMAT', `${kind} data whose content is not a joblib pickle (joblib.load would try to unpickle it)`);
    return format;
  }
  scanPickleSource(ctx, inner, member, false);
  return format;
}

function scanZip(ctx: ScanContext, source: ByteSource, member: string, depth: number): ModelFormat {
  const zip = readZip(source, ctx, member);
  if (zip === undefined) return 'zip';
  const root = torchRoot(zip);
  const prefix = member === '' ? '' : `${member}/`;
  let done = new Set<string>();
  let format: ModelFormat = 'zip';
  if (root !== undefined) {
    done = scanTorchZip(ctx, source, zip, root, member);
    format = isTorchScript(zip, root) ? 'torchscript' : 'pytorch-zip';
  }
  let npyMembers = 0;
  let files = 0;
  for (const entry of zip.entries) {
    if (done.has(entry.name)) continue;
    if (entry.isDirectory) {
      if (entry.size !== 0) ctx.finding(prefix + entry.name, 'zip', 'E_MODEL_MALFORMED', 'a directory entry with data');
      continue;
    }
    files++;
    const inner = memberSource(source, entry, ctx, prefix + entry.name);
    if (inner === undefined) continue;
    const innerFormat = scanSource(ctx, inner, prefix + entry.name, depth + 1);
    if (innerFormat === 'numpy-npy') npyMembers++;
    ctx.member({ name: prefix + entry.name, format: innerFormat, size: entry.size });
    // Deflated members were read whole: check their CRC as Python's zipfile would.
    if (entry.method === 8 && inner instanceof BufferSource) checkMemberCrc(inner.read(0, inner.size), entry, ctx, prefix + entry.name);
    else if (entry.method === 0 && entry.size <= ctx.limits.maxReadBytes && innerFormat !== 'safetensors' && innerFormat !== 'numpy-npy') checkMemberCrc(inner.read(0, inner.size), entry, ctx, prefix + entry.name);
  }
  if (format === 'zip' && files > 0 && npyMembers === files && zip.entries.every((e) => e.isDirectory || e.name.endsWith('.npy'))) format = 'numpy-npz';
  return format;
}

/** The code of a file: unsafe outranks a limit, then unreadable, a malformation, then format. */
export function fileCode(findings: readonly { readonly code: ModelFindingCode }[]): ModelFindingCode | undefined {
  const codes = new Set(findings.map((f) => f.code));
  for (const code of ['E_MODEL_UNSAFE', 'E_LIMIT', 'E_IO', 'E_MODEL_MALFORMED', 'E_MODEL_FORMAT'] as const) if (codes.has(code)) return code;
  return undefined;
}

function limitsOf(options: ScanModelOptions): ModelLimits {
  const limits = { ...DEFAULT_MODEL_LIMITS, ...options.limits };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new UsageError('E_USAGE', `scan-model limit ${name} must be a non-negative integer, not ${String(value)}`);
  }
  return limits;
}

/**
 * Scans one file (`display` is how reports name it).
 * @throws IoError E_IO, E_NOT_REGULAR_FILE when it cannot be opened; UsageError for bad limits
 */
export function scanModelFile(path: string, options: ScanModelOptions = {}, display = path): FileScan {
  const limits = limitsOf(options);
  const policy = options.policy ?? DEFAULT_POLICY;
  const ctx = new ScanContext(display, policy, limits, dirname(path));
  const source = new FileSource(path);
  let format: ModelFormat;
  try {
    format = scanSource(ctx, source, '', 0);
  } catch (error) {
    if (error instanceof InTotoError) throw error;
    throw new InternalError('E_INTERNAL', `internal error while scanning ${display}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    source.close();
  }
  return {
    file: display,
    format,
    size: source.size,
    members: ctx.members,
    globals: ctx.globalReports,
    findings: ctx.findings,
    code: fileCode(ctx.findings),
    notes: ctx.notes,
    externalData: ctx.externalData,
  };
}

/**
 * Scans bytes in memory as a file named `name` (its extension only matters for the mismatch
 * check; ONNX external data cannot be checked on disk).
 * @throws UsageError for bad limits
 */
export function scanModelBytes(bytes: Uint8Array, name: string, options: ScanModelOptions = {}): FileScan {
  const limits = limitsOf(options);
  const ctx = new ScanContext(name, options.policy ?? DEFAULT_POLICY, limits, undefined);
  let format: ModelFormat;
  try {
    format = scanSource(ctx, new BufferSource(bytes), '', 0);
  } catch (error) {
    if (error instanceof InTotoError) throw error;
    throw new InternalError('E_INTERNAL', `internal error while scanning ${name}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return { file: name, format, size: bytes.length, members: ctx.members, globals: ctx.globalReports, findings: ctx.findings, code: fileCode(ctx.findings), notes: ctx.notes, externalData: ctx.externalData };
}

/** A finding-only report for a path that is not a regular file (a symlink, a FIFO, ...). */
function notScanned(display: string, reason: string, code: 'E_MODEL_FORMAT' | 'E_IO' = 'E_MODEL_FORMAT'): FileScan {
  return {
    file: display,
    format: 'unknown',
    size: 0,
    members: [],
    globals: [],
    findings: [{ file: display, member: '', kind: code === 'E_IO' ? 'unreadable' : 'format', code, reason }],
    code,
    notes: [],
    externalData: [],
  };
}

/** A path that cannot be read: its own entry (E_IO), so the verdict on the others still shows. */
function unreadable(path: string, error: unknown): FileScan {
  const io = error instanceof InTotoError ? error : ioError(path, error);
  if (io.code !== 'E_IO' && io.code !== 'E_NOT_REGULAR_FILE' && io.code !== 'E_FILE_TOO_LARGE') throw io;
  return notScanned(path, io.message.startsWith(`${path}: `) ? io.message.slice(path.length + 2) : io.message, 'E_IO');
}

/**
 * Scans every path: a file, or a directory walked recursively in name order (symbolic links
 * inside it are reported, never followed; `.git` directories are skipped). A path that does not
 * exist or cannot be read is an entry of its own with code E_IO; the others are still scanned.
 * @throws ModelError E_LIMIT past maxFiles; UsageError for bad limits
 */
export function scanModelPaths(paths: readonly string[], options: ScanModelOptions = {}): FileScan[] {
  const limits = limitsOf(options);
  const results: FileScan[] = [];
  const visit = (path: string, top: boolean): void => {
    let stat;
    try {
      stat = top ? statSync(path) : lstatSync(path);
    } catch (error) {
      results.push(unreadable(path, error));
      return;
    }
    if (stat.isSymbolicLink()) {
      results.push(notScanned(path, 'a symbolic link inside the directory, not followed; scan what it points to by naming it'));
      return;
    }
    if (stat.isDirectory()) {
      if (!top && basename(path) === '.git') return;
      let names: string[];
      try {
        names = readdirSync(path).sort();
      } catch (error) {
        results.push(unreadable(path, error));
        return;
      }
      for (const name of names) visit(join(path, name), false);
      return;
    }
    if (!stat.isFile()) {
      results.push(notScanned(path, 'not a regular file (a FIFO, socket or device); not read'));
      return;
    }
    if (results.length >= limits.maxFiles) {
      throw new ModelError('E_LIMIT', `more than ${limits.maxFiles} files under the paths given`);
    }
    // A path named on the command line is followed (like find -H); those met while walking are not.
    let target = path;
    if (top) {
      try {
        target = realpathSync(path);
      } catch (error) {
        results.push(unreadable(path, error));
        return;
      }
    }
    try {
      results.push(scanModelFile(target, options, path));
    } catch (error) {
      results.push(unreadable(path, error));
    }
  };
  for (const path of paths) visit(path, true);
  return withExternalData(results);
}

/**
 * Raw tensor files that an ONNX model in the same scan names as its external data (checked
 * there: inside its directory, long enough) are what they are, not an unknown format.
 */
function withExternalData(results: FileScan[]): FileScan[] {
  const referenced = new Set(results.flatMap((r) => r.externalData));
  if (referenced.size === 0) return results;
  return results.map((r) => {
    if (r.format !== 'unknown' || r.findings.some((f) => f.kind !== 'format')) return r;
    let real: string;
    try {
      real = realpathSync(r.file);
    } catch {
      return r;
    }
    if (!referenced.has(real)) return r;
    return { ...r, format: 'onnx-external-data', findings: [], code: undefined, notes: ['the external data of an ONNX model in this scan'] };
  });
}

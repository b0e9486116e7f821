import { InTotoError, InternalError, ModelError, UsageError } from '../errors.js';
import { readRegularFileSync } from '../io/files.js';
import { PickleMachine } from './pickle-machine.js';
import { OPCODE_BY_BYTE } from './pickle-opcodes.js';
import { ByteCursor, readArgument } from './pickle-reader.js';
import type { FindingSink, PickleFinding, PickleHooks, PickleScanOptions, PickleScanResult } from './pickle-types.js';
import type { PickleValue } from './pickle-values.js';
import { DEFAULT_POLICY, parseAllowedName, withAllowed, type ModelPolicy } from './policy.js';

/**
 * Scanning pickle streams: decide whether `pickle.load` may read them, by reading their
 * opcodes without executing any. A pickle runs code only through the objects it imports, so
 * the scan names every import (GLOBAL, INST, and STACK_GLOBAL with its operands traced
 * through the stack and memo) and judges it and each of its uses against the policy
 * (policy.ts); it refuses imports it cannot name (EXT*, computed STACK_GLOBAL operands),
 * persistent ids the loader would not resolve itself, bytes after the STOP, and streams it
 * cannot read to the end. Work is linear in the input and capped (THREATS.md invariant 3).
 *
 * The model formats (model-scan.ts) call {@link scanPickleStream} on the pickles inside them.
 */

export type { PickleFinding, PickleFindingKind, PickleHooks, PickleScanOptions, PickleScanResult } from './pickle-types.js';
export { NEVER_ALLOWED, DEFAULT_POLICY, STRICT_POLICY, judgeImport } from './policy.js';
export { PICKLE_OPCODES, HIGHEST_PICKLE_PROTOCOL } from './pickle-opcodes.js';

/** Default caps: a 1 GiB pickle, 20 million opcodes (a few seconds of scanning at most). */
export const DEFAULT_PICKLE_LIMITS = { maxBytes: 1024 * 1024 * 1024, maxOps: 20_000_000 } as const;

// Past these the verdict is already "unsafe"; more entries would only cost memory.
const MAX_FINDINGS = 1000;
const MAX_GLOBALS = 10_000;

/** Collects the findings and imports of one stream (or of several, for one file). */
export class Collector implements FindingSink {
  readonly findings: PickleFinding[] = [];
  /** Every import by `module.name`, with its two parts, in the order first seen. */
  readonly imports = new Map<string, { readonly module: string; readonly attr: string }>();
  full = false;

  add(finding: PickleFinding): void {
    if (this.findings.length < MAX_FINDINGS) this.findings.push(finding);
    else this.full = true;
  }

  noteImport(module: string, attr: string): void {
    const fullName = `${module}.${attr}`;
    if (this.imports.has(fullName)) return;
    if (this.imports.size >= MAX_GLOBALS) {
      this.full = true;
      return;
    }
    this.imports.set(fullName, { module, attr });
  }

  /** A `limit` finding, recorded even when the list is full. */
  stop(offset: number, reason: string): void {
    this.findings.push({ kind: 'limit', offset, opcode: '<stream>', reason });
  }
}

/** An opcode budget shared by every stream of a file. */
export interface OpBudget {
  remaining: number;
  readonly max: number;
}

/** Thrown by a hook to end the stream's scan (after reporting why). */
export class StopStream extends Error {}

/** How one stream ended. */
export interface StreamEnd {
  /** The stream reached its STOP (it may still hold findings). */
  readonly stopped: boolean;
  /** The protocol of its first PROTO, if any. */
  readonly protocol: number | undefined;
  /** What STOP returned (a symbolic value). */
  readonly result: PickleValue;
  /** Opcodes read. */
  readonly opcodes: number;
}

/**
 * Runs one pickle from the cursor's position to its STOP, as one `Unpickler.load()` reads it:
 * the cursor ends just after the STOP (or where the stream broke off). Findings go to `sink`.
 * @throws InternalError E_INTERNAL on a bug (never for any input)
 */
export function scanPickleStream(
  cursor: ByteCursor,
  options: {
    readonly policy: ModelPolicy;
    readonly sink: Collector;
    readonly budget: OpBudget;
    readonly hooks?: PickleHooks;
    readonly machine?: PickleMachine;
    /** Updated with where the current FRAME ends (joblib's array data must not sit inside one). */
    readonly frame?: { end: number };
  },
): StreamEnd {
  const { sink, budget } = options;
  const machine = options.machine ?? new PickleMachine(options.policy, sink, options.hooks);
  let protocol: number | undefined;
  let opcodes = 0;
  for (;;) {
    const offset = cursor.offset;
    const byte = cursor.nextByte();
    if (byte === undefined) {
      machine.malformedAt(offset, '<stream>', 'truncated: the stream ends without a STOP opcode');
      return { stopped: false, protocol, result: machine.result, opcodes };
    }
    if (budget.remaining <= 0) {
      sink.stop(offset, `stopped after ${budget.max} opcodes; the rest is unchecked`);
      return { stopped: false, protocol, result: machine.result, opcodes };
    }
    const op = OPCODE_BY_BYTE[byte];
    if (op === undefined) {
      const hex = `0x${byte.toString(16).padStart(2, '0')}`;
      machine.malformedAt(offset, hex, `byte ${hex} is not a pickle opcode`);
      return { stopped: false, protocol, result: machine.result, opcodes };
    }
    budget.remaining--;
    opcodes++;
    const read = readArgument(cursor, op.arg);
    if (!read.ok) {
      if (cursor.lineTooLong) sink.stop(offset, read.reason);
      else machine.malformedAt(offset, op.name, read.reason);
      return { stopped: false, protocol, result: machine.result, opcodes };
    }
    if (read.arg.kind === 'int') {
      // The C loader reads a whole frame before decoding it and fails on a short one, but
      // pickle.py runs what the frame holds: read on, to name what that would import.
      if (op.name === 'FRAME' && read.arg.value > cursor.remaining) {
        machine.malformedAt(offset, op.name, `truncated: a frame of ${read.arg.value} bytes, ${cursor.remaining} remain`);
      }
      if (op.name === 'PROTO' && protocol === undefined) protocol = read.arg.value;
      if (op.name === 'FRAME' && options.frame !== undefined) options.frame.end = cursor.offset + read.arg.value;
    }
    let stop: boolean;
    try {
      stop = machine.execute(op, read.arg, offset);
    } catch (error) {
      // A hook found the stream cannot be followed further (it reported why).
      if (error instanceof StopStream) return { stopped: false, protocol, result: machine.result, opcodes };
      throw error;
    }
    if (sink.full) {
      sink.stop(offset, `more than ${MAX_FINDINGS} findings or ${MAX_GLOBALS} distinct imports; the rest is unchecked`);
      return { stopped: false, protocol, result: machine.result, opcodes };
    }
    if (stop) return { stopped: true, protocol, result: machine.result, opcodes };
  }
}

/**
 * Scans what follows a pickle's STOP as a second `load()` on the same unpickler would: the
 * bytes are a finding (pickle.load ignores them, another reader may not), and each trailing
 * pickle's imports are judged too.
 */
export function scanTrailing(cursor: ByteCursor, machine: PickleMachine, sink: Collector, budget: OpBudget, stopOffset: number): void {
  if (cursor.remaining === 0) return;
  sink.add({
    kind: 'trailing-data',
    offset: cursor.offset,
    opcode: 'STOP',
    reason: `${cursor.remaining} bytes follow the STOP at offset ${stopOffset}: pickle.load ignores them, another reader may not`,
  });
  while (cursor.remaining > 0) {
    machine.startTrailingPickle();
    const end = scanPickleStream(cursor, { policy: machine.judgedBy, sink, budget, machine });
    if (!end.stopped) return;
  }
}

/** The policy of `options`: the given (or default) policy plus any `allow` names. */
export function policyOf(options: PickleScanOptions): ModelPolicy {
  const base = options.policy ?? DEFAULT_POLICY;
  if (options.allow === undefined || options.allow.size === 0) return base;
  return withAllowed(base, [...options.allow].map((name) => parseAllowedName(name)));
}

/**
 * Scans `bytes` as `pickle.load` would read them, executing nothing. The pickle is safe to
 * load under the policy exactly when `findings` is empty.
 * @throws UsageError E_USAGE for invalid options (limits, allow names); never for any content
 *   of `bytes` (an unexpected failure would be InternalError E_INTERNAL)
 */
export function scanPickle(bytes: Uint8Array, options: PickleScanOptions = {}): PickleScanResult {
  const maxBytes = limit(options.maxBytes, DEFAULT_PICKLE_LIMITS.maxBytes, 'maxBytes');
  const maxOps = limit(options.maxOps, DEFAULT_PICKLE_LIMITS.maxOps, 'maxOps');
  const policy = policyOf(options);
  try {
    const sink = new Collector();
    if (bytes.length > maxBytes) {
      sink.stop(0, `the pickle is ${bytes.length} bytes, over the limit of ${maxBytes}; not scanned`);
      return { protocol: undefined, globals: [], findings: sink.findings, opcodeCount: 0 };
    }
    // A plain view: a Buffer's subarray() builds a Buffer, several times slower per argument.
    const cursor = new ByteCursor(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
    const budget: OpBudget = { remaining: maxOps, max: maxOps };
    const machine = new PickleMachine(policy, sink);
    const end = scanPickleStream(cursor, { policy, sink, budget, machine });
    if (end.stopped) scanTrailing(cursor, machine, sink, budget, cursor.offset - 1);
    return { protocol: end.protocol, globals: [...sink.imports.keys()], findings: sink.findings, opcodeCount: maxOps - budget.remaining };
  } catch (error) {
    if (error instanceof InTotoError) throw error;
    throw new InternalError('E_INTERNAL', `internal error while scanning a pickle: ${String(error)}`, { cause: error });
  }
}

/** The rank of a finding: the one shown first is the most telling. */
export function findingRank(finding: PickleFinding): number {
  if (finding.never) return finding.kind === 'import' ? 8 : 9;
  switch (finding.kind) {
    case 'call':
    case 'instantiate':
    case 'build-global':
    case 'argument':
    case 'nested-pickle':
      return 7;
    case 'import':
      return 6;
    case 'unresolved-import':
    case 'extension':
    case 'persistent-id':
      return 5;
    case 'limit':
      return 3;
    case 'trailing-data':
      return 2;
    case 'malformed':
      return 1;
  }
}

/** The error code a finding leads to. */
export function findingCode(finding: PickleFinding): 'E_MODEL_UNSAFE' | 'E_MODEL_MALFORMED' | 'E_LIMIT' {
  if (finding.kind === 'limit') return 'E_LIMIT';
  if (finding.kind === 'malformed' || finding.kind === 'trailing-data') return 'E_MODEL_MALFORMED';
  return 'E_MODEL_UNSAFE';
}

/** The finding to show first (highest rank, then earliest). */
export function headlineFinding<F extends PickleFinding>(findings: readonly F[]): F | undefined {
  let best: F | undefined;
  for (const f of findings) if (best === undefined || findingRank(f) > findingRank(best)) best = f;
  return best;
}

/** The code of a set of findings: unsafe outranks a limit, which outranks a malformation. */
export function codeOfFindings(findings: readonly PickleFinding[]): 'E_MODEL_UNSAFE' | 'E_MODEL_MALFORMED' | 'E_LIMIT' | undefined {
  const codes = new Set(findings.map(findingCode));
  if (codes.has('E_MODEL_UNSAFE')) return 'E_MODEL_UNSAFE';
  if (codes.has('E_LIMIT')) return 'E_LIMIT';
  if (codes.has('E_MODEL_MALFORMED')) return 'E_MODEL_MALFORMED';
  return undefined;
}

/**
 * Scans `bytes` and returns the result if the pickle is safe to load.
 * @throws ModelError E_MODEL_UNSAFE naming `file`, the offset and the import (or other reason)
 *   of the most telling finding; E_LIMIT if a cap stopped the scan; E_MODEL_MALFORMED if the
 *   only findings are that the stream is truncated or invalid. Every finding is in `details`.
 * @throws UsageError E_USAGE for invalid options
 */
export function assertSafePickle(bytes: Uint8Array, file: string, options: PickleScanOptions = {}): PickleScanResult {
  const result = scanPickle(bytes, options);
  const code = codeOfFindings(result.findings);
  const shown = headlineFinding(result.findings);
  if (code === undefined || shown === undefined) return result;
  const more = result.findings.length - 1;
  const what = code === 'E_MODEL_UNSAFE' ? 'unsafe' : code === 'E_LIMIT' ? 'not fully scanned' : 'malformed';
  throw new ModelError(
    code,
    `${file}: ${what} pickle: ${formatPickleFinding(shown)}` + (more > 0 ? ` (${more} more finding${more === 1 ? '' : 's'})` : ''),
    { details: result.findings.map(formatPickleFinding), context: { file } },
  );
}

/**
 * Reads a pickle file (a regular file, size checked before reading) and scans it.
 * @throws IoError E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE (over `maxBytes`)
 * @throws UsageError E_USAGE for invalid options
 */
export function scanPickleFile(path: string, options: PickleScanOptions = {}): PickleScanResult {
  const maxBytes = limit(options.maxBytes, DEFAULT_PICKLE_LIMITS.maxBytes, 'maxBytes');
  return scanPickle(readRegularFileSync(path, { maxBytes, what: 'pickle' }), options);
}

/**
 * Reads a pickle file and returns its scan if it is safe to load.
 * @throws IoError E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE
 * @throws ModelError E_MODEL_UNSAFE, E_MODEL_MALFORMED, E_LIMIT (as {@link assertSafePickle})
 * @throws UsageError E_USAGE for invalid options
 */
export function assertSafePickleFile(path: string, options: PickleScanOptions = {}): PickleScanResult {
  const maxBytes = limit(options.maxBytes, DEFAULT_PICKLE_LIMITS.maxBytes, 'maxBytes');
  return assertSafePickle(readRegularFileSync(path, { maxBytes, what: 'pickle' }), path, options);
}

/** One line for a finding: `offset 194 (STACK_GLOBAL): imports posix.system, which ...`. */
export function formatPickleFinding(finding: PickleFinding): string {
  return `offset ${finding.offset} (${finding.opcode}): ${finding.reason}`;
}

function limit(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new UsageError('E_USAGE', `pickle scan option ${name} must be a non-negative integer, not ${String(value)}`);
  }
  return value;
}

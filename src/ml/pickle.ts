import { InTotoError, InternalError, PickleError, UsageError } from '../errors.js';
import { readRegularFileSync } from '../io/files.js';
import { PickleMachine } from './pickle-machine.js';
import { OPCODE_BY_BYTE } from './pickle-opcodes.js';
import { DEFAULT_PICKLE_ALLOW } from './pickle-policy.js';
import { ByteCursor, readArgument } from './pickle-reader.js';
import type { FindingSink, PickleFinding, PickleScanOptions, PickleScanResult } from './pickle-types.js';

/**
 * `intoto scan-pickle`: decide whether a pickle (a `model.pkl`) is safe to load, by reading
 * its opcodes without executing any. A pickle runs code only through the objects it imports,
 * so the scan names every import (GLOBAL, INST, and STACK_GLOBAL with its operands traced
 * through the stack and memo) and refuses any outside a small allow-list, any it cannot name
 * (EXT*, persistent ids, computed STACK_GLOBAL operands), bytes after the STOP, and streams it
 * cannot read to the end. Work is linear in the input and capped (THREATS.md invariant 3).
 */

export type { PickleFinding, PickleFindingKind, PickleScanOptions, PickleScanResult } from './pickle-types.js';
export { DEFAULT_PICKLE_ALLOW, NEVER_ALLOWED, judgeImport } from './pickle-policy.js';
export { PICKLE_OPCODES, HIGHEST_PICKLE_PROTOCOL } from './pickle-opcodes.js';

/** Default caps: a 1 GiB pickle, 20 million opcodes (a few seconds of scanning at most). */
export const DEFAULT_PICKLE_LIMITS = { maxBytes: 1024 * 1024 * 1024, maxOps: 20_000_000 } as const;

// Past these the verdict is already "unsafe"; more entries would only cost memory.
const MAX_FINDINGS = 1000;
const MAX_GLOBALS = 10_000;

/**
 * Scans `bytes` as `pickle.load` would read them, executing nothing. The pickle is safe to
 * load under `options.allow` exactly when `findings` is empty.
 * @throws UsageError E_USAGE if `maxBytes` or `maxOps` is not a non-negative integer; never
 *   for any content of `bytes` (an unexpected failure would be InternalError E_INTERNAL)
 */
export function scanPickle(bytes: Uint8Array, options: PickleScanOptions = {}): PickleScanResult {
  const maxBytes = limit(options.maxBytes, DEFAULT_PICKLE_LIMITS.maxBytes, 'maxBytes');
  const maxOps = limit(options.maxOps, DEFAULT_PICKLE_LIMITS.maxOps, 'maxOps');
  try {
    return scan(bytes, options.allow ?? DEFAULT_PICKLE_ALLOW, maxBytes, maxOps);
  } catch (error) {
    if (error instanceof InTotoError) throw error;
    throw new InternalError('E_INTERNAL', `internal error while scanning a pickle: ${String(error)}`, { cause: error });
  }
}

/**
 * Scans `bytes` and returns the result if the pickle is safe to load.
 * @throws PickleError E_PICKLE_UNSAFE naming `file`, the offset and the import (or other
 *   reason) of the first safety finding; E_PICKLE_MALFORMED if the only findings are that the
 *   stream is truncated or invalid. Every finding is in `details`.
 * @throws UsageError E_USAGE for invalid options
 */
export function assertSafePickle(bytes: Uint8Array, file: string, options: PickleScanOptions = {}): PickleScanResult {
  const result = scanPickle(bytes, options);
  const first = result.findings[0];
  if (first === undefined) return result;
  // A safety finding outranks a malformation: a truncated stream still runs what precedes
  // the cut (pickle.load executes each REDUCE as it reads it).
  const unsafe = result.findings.find((f) => f.kind !== 'malformed');
  const shown = unsafe ?? first;
  const more = result.findings.length - 1;
  throw new PickleError(
    unsafe ? 'E_PICKLE_UNSAFE' : 'E_PICKLE_MALFORMED',
    `${file}: ${unsafe ? 'unsafe' : 'malformed'} pickle: ${formatPickleFinding(shown)}` +
      (more > 0 ? ` (${more} more finding${more === 1 ? '' : 's'})` : ''),
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
 * @throws PickleError E_PICKLE_UNSAFE, E_PICKLE_MALFORMED (as {@link assertSafePickle})
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

class Collector implements FindingSink {
  readonly findings: PickleFinding[] = [];
  readonly globals = new Set<string>();
  full = false;

  add(finding: PickleFinding): void {
    if (this.findings.length < MAX_FINDINGS) this.findings.push(finding);
    else this.full = true;
  }

  noteImport(fullName: string): void {
    if (this.globals.size < MAX_GLOBALS) this.globals.add(fullName);
    else if (!this.globals.has(fullName)) this.full = true;
  }

  /** A `limit` finding, recorded even when the list is full. */
  stop(offset: number, reason: string): void {
    this.findings.push({ kind: 'limit', offset, opcode: '<stream>', reason });
  }
}

function scan(bytes: Uint8Array, allow: ReadonlySet<string>, maxBytes: number, maxOps: number): PickleScanResult {
  const sink = new Collector();
  if (bytes.length > maxBytes) {
    sink.stop(0, `the pickle is ${bytes.length} bytes, over the limit of ${maxBytes}; not scanned`);
    return { protocol: undefined, globals: [], findings: sink.findings, opcodeCount: 0 };
  }
  // A plain view: a Buffer's subarray() builds a Buffer, several times slower per argument.
  const cursor = new ByteCursor(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  const machine = new PickleMachine(allow, sink);
  let protocol: number | undefined;
  let opcodeCount = 0;
  let afterStop = false; // past the STOP that ends what pickle.load reads
  for (;;) {
    const offset = cursor.offset;
    const byte = cursor.nextByte();
    if (byte === undefined) {
      machine.malformedAt(offset, '<stream>', 'truncated: the stream ends without a STOP opcode');
      break;
    }
    if (opcodeCount >= maxOps) {
      sink.stop(offset, `stopped after ${maxOps} opcodes; the rest is unchecked`);
      break;
    }
    const op = OPCODE_BY_BYTE[byte];
    if (op === undefined) {
      const hex = `0x${byte.toString(16).padStart(2, '0')}`;
      machine.malformedAt(offset, hex, `byte ${hex} is not a pickle opcode`);
      break;
    }
    opcodeCount++;
    const read = readArgument(cursor, op.arg);
    if (!read.ok) {
      machine.malformedAt(offset, op.name, read.reason);
      break;
    }
    if (read.arg.kind === 'int') {
      // The C loader reads a whole frame before decoding it and fails on a short one, but
      // pickle.py runs what the frame holds: read on, to name what that would import.
      if (op.name === 'FRAME' && read.arg.value > cursor.remaining) {
        machine.malformedAt(offset, op.name, `truncated: a frame of ${read.arg.value} bytes, ${cursor.remaining} remain`);
      }
      if (op.name === 'PROTO' && protocol === undefined && !afterStop) protocol = read.arg.value;
    }
    const stop = machine.execute(op, read.arg, offset);
    if (sink.full) {
      sink.stop(offset, `more than ${MAX_FINDINGS} findings or ${MAX_GLOBALS} distinct imports; the rest is unchecked`);
      break;
    }
    if (!stop) continue;
    if (cursor.remaining === 0) break;
    if (!afterStop) {
      sink.add({
        kind: 'trailing-data',
        offset: cursor.offset,
        opcode: 'STOP',
        reason: `${cursor.remaining} bytes follow the STOP at offset ${offset}: pickle.load ignores them, another reader may not`,
      });
    }
    afterStop = true;
    // Read on, as a second pickle.load would, to name what the trailing bytes import.
    machine.startTrailingPickle();
  }
  return { protocol, globals: [...sink.globals], findings: sink.findings, opcodeCount };
}

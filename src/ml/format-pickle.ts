import type { MemberReport } from './model-types.js';
import { PickleMachine } from './pickle-machine.js';
import { ByteCursor } from './pickle-reader.js';
import { Collector, StopStream, scanPickleStream, scanTrailing } from './pickle.js';
import type { PickleHooks } from './pickle-types.js';
import { intOrUndefined, strText, type ObjectValue, type PickleValue } from './pickle-values.js';
import type { ScanContext } from './scan-context.js';
import type { ByteSource } from './source.js';

/**
 * Pickle files, and joblib's: `joblib.dump` writes one pickle in which every numpy array is
 * a `NumpyArrayWrapper` record, and right after the BUILD that gives the record its state it
 * writes the array's bytes (after a padding byte and padding, since joblib 1.2), or, for an
 * object array, a second pickle. `joblib.load` reads them there and goes on with the opcodes
 * after them. So the scan follows the same path: at each wrapper's BUILD it computes the
 * length of the data from the wrapper's shape and dtype and skips it unread (or scans the
 * nested pickle), then reads on. The data is never parsed as opcodes, and the opcodes after
 * it are scanned like any others.
 *
 * Because `pickle.load` on the same file would read that data as opcodes, the stream is also
 * read the way pickle.load reads it, and whatever that reading would import or call before it
 * breaks down is reported too.
 */

const WRAPPER = 'joblib.numpy_pickle:NumpyArrayWrapper';

/** A dtype's item size and whether it holds Python objects, from numpy.dtype's REDUCE and BUILD. */
export function dtypeOf(value: PickleValue | undefined): { itemSize: number; hasObject: boolean } | undefined {
  if (value?.kind !== 'object' || value.of === undefined || `${value.of.module}.${value.of.name}` !== 'numpy.dtype') return undefined;
  const args = value.args?.kind === 'tuple' ? value.args.items : undefined;
  const typestr = args?.[0] === undefined ? undefined : strText(args[0]);
  if (typestr === undefined) return undefined;
  const state = value.state?.kind === 'tuple' ? value.state.items : undefined;
  const elsize = intOrUndefined(state?.[5]);
  const flags = intOrUndefined(state?.[7]) ?? 0;
  const hasObject = typestr.startsWith('O') || (flags & 1) !== 0;
  if (elsize !== undefined && elsize > 0) return { itemSize: elsize, hasObject };
  if (typestr === '?') return { itemSize: 1, hasObject };
  const match = /^[a-zA-Z]{1,2}(\d+)$/.exec(typestr);
  const size = match?.[1] === undefined ? undefined : Number(match[1]);
  return size === undefined || !Number.isSafeInteger(size) || size <= 0 ? undefined : { itemSize: size, hasObject };
}

/** The array-data length of a NumpyArrayWrapper's state, or why it cannot be known. */
function wrapperData(object: ObjectValue): { bytes: number; hasObject: boolean; aligned: boolean } | string {
  const state = object.state;
  if (state?.kind !== 'dict' || state.entries === undefined) return 'its state is not a small dict';
  const shape = state.entries.get('shape');
  const dtype = dtypeOf(state.entries.get('dtype'));
  if (shape?.kind !== 'tuple' || shape.items === undefined) return 'its shape is not a short tuple';
  if (dtype === undefined) return 'its dtype cannot be read';
  let count = 1;
  for (const item of shape.items) {
    const n = intOrUndefined(item);
    if (n === undefined || n < 0) return 'its shape is not non-negative ints';
    count *= n;
  }
  const bytes = count * dtype.itemSize;
  if (!Number.isSafeInteger(bytes)) return 'its shape is too large';
  const alignment = state.entries.get('numpy_array_alignment_bytes');
  return { bytes, hasObject: dtype.hasObject, aligned: alignment !== undefined && alignment.kind !== 'none' };
}

/**
 * Scans a pickle stream (a file, a member, or joblib's decompressed stream) from its start to
 * its end, with joblib's array data. `plainView`: also report what pickle.load would do with
 * the array data (not for compressed streams, which pickle.load cannot read at all).
 * @returns whether the stream held joblib array wrappers
 */
export function scanPickleSource(ctx: ScanContext, source: ByteSource, member: string, plainView: boolean, hooks: PickleHooks = {}): boolean {
  const sink = new Collector();
  const cursor = new ByteCursor(source);
  const frame = { end: 0 };
  let firstData = -1;
  let arrays = 0;
  let arrayBytes = 0;
  const joblibHooks: PickleHooks = {
    ...hooks,
    afterBuild(object, offset) {
      hooks.afterBuild?.(object, offset);
      if (object.of === undefined || `${object.of.module}:${object.of.name}` !== WRAPPER || object.of.entry === undefined) return;
      const data = wrapperData(object);
      const at = cursor.offset;
      if (typeof data === 'string') {
        machine.malformedAt(offset, 'BUILD', `a joblib NumpyArrayWrapper whose array data cannot be located: ${data}`);
        throw new StopStream();
      }
      if (frame.end > at) {
        machine.malformedAt(offset, 'BUILD', 'joblib array data inside a pickle frame (joblib.load reads it from after the frame)');
        throw new StopStream();
      }
      if (firstData === -1) firstData = at;
      arrays++;
      if (data.hasObject) {
        // An object array: pickle.dump of the array, read by a fresh pickle.load.
        const nested = scanPickleStream(cursor, { policy: ctx.policy, sink, budget: ctx.budget });
        if (!nested.stopped) throw new StopStream();
        return;
      }
      if (data.aligned) {
        const padding = cursor.nextByte();
        if (padding === undefined || !cursor.skip(padding)) {
          machine.malformedAt(at, '<array>', 'truncated: the array padding runs past the end');
          throw new StopStream();
        }
      }
      if (!cursor.skip(data.bytes)) {
        machine.malformedAt(cursor.offset, '<array>', `truncated: ${data.bytes} bytes of array data, ${cursor.remaining} remain`);
        throw new StopStream();
      }
      arrayBytes += data.bytes;
    },
  };
  const machine = new PickleMachine(ctx.policy, sink, joblibHooks);
  const end = scanPickleStream(cursor, { policy: ctx.policy, sink, budget: ctx.budget, machine, frame });
  if (end.stopped) scanTrailing(cursor, machine, sink, ctx.budget, cursor.offset - 1);
  ctx.absorb(member, sink);
  if (arrays > 0) {
    const report: MemberReport = { name: `${member || '(file)'}: ${arrays} joblib array${arrays === 1 ? '' : 's'}`, format: 'array-data', size: arrayBytes };
    ctx.member(report);
    if (plainView && firstData !== -1) plainReading(ctx, source, member, firstData, hooks);
  }
  return arrays > 0;
}

/** pickle.load's reading of a joblib stream: findings at or after the first array data. */
function plainReading(ctx: ScanContext, source: ByteSource, member: string, firstData: number, hooks: PickleHooks): void {
  const sink = new Collector();
  const budget = { remaining: ctx.budget.remaining, max: ctx.budget.max };
  const plainHooks: PickleHooks = hooks.persistentId === undefined ? {} : { persistentId: hooks.persistentId };
  scanPickleStream(new ByteCursor(source), { policy: ctx.policy, sink, budget, hooks: plainHooks });
  for (const f of sink.findings) {
    if (f.offset < firstData || f.kind === 'malformed' || f.kind === 'limit') continue;
    ctx.addPickleFinding(member, { ...f, reason: `read by pickle.load (not joblib.load), the array data at offset ${firstData} runs as opcodes: ${f.reason}` });
  }
}

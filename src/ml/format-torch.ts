import { scanPickleSource } from './format-pickle.js';
import { PickleMachine } from './pickle-machine.js';
import { ByteCursor } from './pickle-reader.js';
import { Collector, scanPickleStream } from './pickle.js';
import type { PickleHooks } from './pickle-types.js';
import { intOrUndefined, strText, type PickleValue } from './pickle-values.js';
import { torchScriptPolicy } from './policy.js';
import type { ScanContext } from './scan-context.js';
import { BufferSource, type ByteSource } from './source.js';
import { readMember, type ZipArchive } from './zip.js';

/**
 * PyTorch checkpoints. The zip format (torch.save since 1.6): `<root>/data.pkl`, a pickle
 * whose persistent ids name storages `<root>/data/<key>`, plus `<root>/version` and a few
 * small records; storages are raw tensor bytes and are never read. TorchScript archives
 * (torch.jit.save) add `<root>/constants.pkl`, `<root>/code/` (TorchScript source, compiled by
 * torch.jit, which cannot import Python modules) and `.debug_pkl` records; torch.load hands
 * them to torch.jit.load, whose own unpickler resolves `__torch__.*` classes from that code.
 * The legacy format (torch.save before 1.6, or _use_new_zipfile_serialization=False): five
 * pickles back to back (the magic number, the protocol version, system info, the object, the
 * storage keys) and then each storage as an 8-byte element count and its bytes.
 */

/** torch's storage classes and their element sizes (the legacy format's raw data). */
const ELEMENT_SIZES: ReadonlyMap<string, number> = new Map([
  ['torch.DoubleStorage', 8],
  ['torch.FloatStorage', 4],
  ['torch.HalfStorage', 2],
  ['torch.BFloat16Storage', 2],
  ['torch.LongStorage', 8],
  ['torch.IntStorage', 4],
  ['torch.ShortStorage', 2],
  ['torch.CharStorage', 1],
  ['torch.ByteStorage', 1],
  ['torch.BoolStorage', 1],
  ['torch.ComplexFloatStorage', 8],
  ['torch.ComplexDoubleStorage', 16],
  ['torch.QInt8Storage', 1],
  ['torch.QUInt8Storage', 1],
  ['torch.QInt32Storage', 4],
  ['torch.QUInt4x2Storage', 1],
  ['torch.QUInt2x4Storage', 1],
]);

/** The pickled magic number that starts a legacy torch.save file (protocol 2, LONG1). */
export const LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
const LEGACY_PROTOCOL_VERSION = 1001;

interface StorageId {
  readonly key: string;
  readonly type: string;
  readonly numel: number | undefined;
}

/** A persistent id `('storage', StorageType, key, location, numel, ...)`, or why it is not one. */
function storageId(id: PickleValue, legacy: boolean): StorageId | 'module' | string {
  const items = id.kind === 'tuple' ? id.items : undefined;
  if (items === undefined) return 'a persistent id that is not a short tuple';
  const typename = strText(items[0] ?? { kind: 'unknown' });
  if (legacy && typename === 'module') return 'module';
  if (typename !== 'storage') return `a persistent id of type ${JSON.stringify(typename ?? '?')}, which torch.load refuses`;
  const type = items[1];
  const key = strText(items[2] ?? { kind: 'unknown' });
  if (type?.kind !== 'global') return 'a storage whose type is not an import';
  if (key === undefined) return 'a storage whose key is not a str';
  return { key, type: `${type.module}.${type.name}`, numel: intOrUndefined(items[4]) };
}

/** The root directory of a torch zip (`archive` for torch.save to a buffer), or undefined. */
export function torchRoot(zip: ZipArchive): string | undefined {
  for (const e of zip.entries) {
    const match = /^([^/]+)\/data\.pkl$/.exec(e.name);
    if (match?.[1] !== undefined) return match[1];
  }
  return undefined;
}

/** True for a TorchScript archive (constants.pkl beside data.pkl). */
export function isTorchScript(zip: ZipArchive, root: string): boolean {
  return zip.byName.has(`${root}/constants.pkl`);
}

/**
 * Scans a torch zip: data.pkl (and, for TorchScript, constants.pkl and the debug pickles),
 * with torch's persistent ids allowed when they name storages present in the archive.
 * Other members are handed back for a scan by content.
 * @returns the names of members it accounted for
 */
export function scanTorchZip(ctx: ScanContext, source: ByteSource, zip: ZipArchive, root: string, member: string): Set<string> {
  const done = new Set<string>();
  const torchScript = isTorchScript(zip, root);
  const policy = torchScript ? torchScriptPolicy(ctx.policy) : ctx.policy;
  const prefix = member === '' ? '' : `${member}/`;
  const storages = new Set<string>();
  const hooks: PickleHooks = {
    persistentId(id) {
      const parsed = storageId(id, false);
      if (typeof parsed === 'string') return parsed;
      if (!zip.byName.has(`${root}/data/${parsed.key}`)) return `a storage ${JSON.stringify(parsed.key)} that the archive does not hold`;
      storages.add(parsed.key);
      return undefined;
    },
  };
  const pickles = [`${root}/data.pkl`];
  if (torchScript) {
    pickles.push(`${root}/constants.pkl`);
    for (const e of zip.entries) if (e.name.endsWith('.debug_pkl')) pickles.push(e.name);
  }
  for (const name of pickles) {
    const entry = zip.byName.get(name);
    if (entry === undefined) continue;
    done.add(name);
    const bytes = readMember(source, entry, ctx, prefix + name, ctx.limits.maxReadBytes);
    if (bytes === undefined) continue;
    ctx.member({ name: prefix + name, format: 'pickle', size: entry.size });
    const scoped = policy === ctx.policy ? ctx : ctx.withPolicy(policy);
    scanPickleSource(scoped, new BufferSource(bytes), prefix + name, false, hooks);
  }
  let storageBytes = 0;
  let storageCount = 0;
  for (const e of zip.entries) {
    if (e.name.startsWith(`${root}/data/`) && !e.isDirectory) {
      done.add(e.name);
      storageBytes += e.size;
      storageCount++;
    } else if (torchScript && e.name.startsWith(`${root}/code/`) && !e.name.endsWith('.debug_pkl')) {
      done.add(e.name);
      ctx.member({ name: prefix + e.name, format: 'torchscript-code', size: e.size });
    }
  }
  ctx.member({ name: `${prefix}${root}/data/ (${storageCount} storages, not read)`, format: 'storage', size: storageBytes });
  if (torchScript) {
    ctx.note('TorchScript: its code/ runs in the TorchScript interpreter, which cannot import Python modules; its pickles may build only __torch__ classes defined there and the policy\'s names');
  }
  return done;
}

/**
 * Scans a legacy torch.save file: the five pickles (the object's with torch's persistent ids),
 * then skips each storage's bytes by its element count; bytes after the last storage are a
 * finding.
 */
export function scanTorchLegacy(ctx: ScanContext, source: ByteSource, member: string): void {
  const cursor = new ByteCursor(source);
  const label = (what: string): string => (member === '' ? what : `${member}: ${what}`);
  const plain = (what: string): PickleValue | undefined => {
    const sink = new Collector();
    const end = scanPickleStream(cursor, { policy: ctx.policy, sink, budget: ctx.budget });
    ctx.absorb(label(what), sink);
    return end.stopped && sink.findings.length === 0 ? end.result : undefined;
  };
  if (plain('magic number pickle') === undefined) return;
  const version = plain('protocol version pickle');
  if (version === undefined) return;
  if (intOrUndefined(version) !== LEGACY_PROTOCOL_VERSION) {
    ctx.finding(label('protocol version pickle'), 'header', 'E_MODEL_MALFORMED', `protocol version ${intOrUndefined(version) ?? '?'}, torch.load expects ${LEGACY_PROTOCOL_VERSION}`);
    return;
  }
  if (plain('system info pickle') === undefined) return;
  const storages = new Map<string, StorageId>();
  const sink = new Collector();
  const machine = new PickleMachine(ctx.policy, sink, {
    persistentId(id) {
      const parsed = storageId(id, true);
      if (parsed === 'module') return undefined;
      if (typeof parsed === 'string') return parsed;
      if (!ELEMENT_SIZES.has(parsed.type)) return `a storage of type ${parsed.type}, which torch.load does not know`;
      const previous = storages.get(parsed.key);
      if (previous !== undefined && previous.type !== parsed.type) return `storage ${parsed.key} named with two types`;
      storages.set(parsed.key, parsed);
      return undefined;
    },
  });
  const objectStart = cursor.offset;
  const end = scanPickleStream(cursor, { policy: ctx.policy, sink, budget: ctx.budget, machine });
  ctx.absorb(label('object pickle'), sink);
  ctx.member({ name: label('object pickle'), format: 'pickle', size: cursor.offset - objectStart });
  if (!end.stopped) return;
  // The storage keys: a list of strs, in the order the storages follow.
  const keysStart = cursor.offset;
  const keys = readKeyList(cursor);
  if (keys === undefined) {
    // Not a plain list of strs: scan it as a pickle to say what it is.
    const back = new ByteCursor(source, keysStart);
    const keySink = new Collector();
    scanPickleStream(back, { policy: ctx.policy, sink: keySink, budget: ctx.budget });
    ctx.absorb(label('storage keys pickle'), keySink);
    if (keySink.findings.length === 0) ctx.finding(label('storage keys pickle'), 'header', 'E_MODEL_MALFORMED', 'the storage keys are not a list of strs');
    return;
  }
  let total = 0;
  for (const key of keys) {
    const storage = storages.get(key);
    if (storage === undefined) {
      ctx.finding(label('storages'), 'header', 'E_MODEL_MALFORMED', `storage key ${JSON.stringify(key)} is not named by the object pickle`);
      return;
    }
    const at = cursor.offset;
    const count = cursor.unsigned(8);
    const size = ELEMENT_SIZES.get(storage.type) ?? 1;
    if (count === undefined || !Number.isSafeInteger(count * size) || !cursor.skip(count * size)) {
      ctx.finding(label('storages'), 'header', 'E_MODEL_MALFORMED', `truncated: storage ${key} at offset ${at} runs past the end`);
      return;
    }
    total += count * size;
  }
  ctx.member({ name: label(`storages (${keys.length}, not read)`), format: 'storage', size: total });
  if (cursor.remaining > 0) {
    ctx.finding(label('storages'), 'header', 'E_MODEL_MALFORMED', `${cursor.remaining} bytes after the last storage at offset ${cursor.offset}, which torch.load ignores`);
  }
}

/**
 * The storage keys pickle as torch writes it (protocol 2: a list of strs, with memo puts), read
 * by a tiny evaluator that knows only those opcodes; undefined for anything else (the caller
 * then scans it as a pickle to say what it is).
 */
function readKeyList(cursor: ByteCursor): string[] | undefined {
  const keys: string[] = [];
  if (cursor.nextByte() !== 0x80 || cursor.nextByte() !== 0x02 || cursor.nextByte() !== 0x5d) return undefined;
  for (;;) {
    const op = cursor.nextByte();
    if (op === 0x71) {
      if (cursor.unsigned(1) === undefined) return undefined; // BINPUT
    } else if (op === 0x72) {
      if (cursor.unsigned(4) === undefined) return undefined; // LONG_BINPUT
    } else if (op === 0x28 || op === 0x65 || op === 0x61) {
      // MARK, APPENDS, APPEND: the strs go into the list
    } else if (op === 0x58) {
      const n = cursor.unsigned(4); // BINUNICODE
      const bytes = n === undefined || n > 4096 ? undefined : cursor.take(n);
      if (bytes === undefined) return undefined;
      keys.push(Buffer.from(bytes).toString('utf8'));
    } else if (op === 0x2e) {
      return keys; // STOP
    } else {
      return undefined;
    }
  }
}

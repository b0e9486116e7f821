import { UsageError } from '../errors.js';
import { DEFAULT_POLICY_ENTRIES, DEFAULT_POLICY_SOURCE } from './policy-default.generated.js';
import { NEVER_ALLOWED, neverAllowedReason } from './policy-never.js';

/**
 * The scan-model policy: an allow-list of exact globals (module and qualname), each with the
 * uses it may be put to. Unpickling reaches code only through the objects a pickle imports,
 * and then only by calling them (REDUCE, INST, OBJ), instantiating them (NEWOBJ, NEWOBJ_EX,
 * the class argument of copyreg._reconstructor and numpy's _reconstruct) or setting their
 * state (BUILD). So each global is judged twice: when imported (is it listed at all, and not
 * never-allowed?) and when used (is it listed for that use?).
 *
 * - `class`: may be instantiated the way pickling rebuilds objects, then given its state by
 *   BUILD (its own `__setstate__`, or its `__dict__` filled).
 * - `call`: may be called by REDUCE with whatever arguments the pickle builds (rebuild helpers
 *   such as numpy's `_reconstruct`, and classes whose `__reduce__` calls them, such as
 *   `numpy.dtype`).
 * - `value`: may only be referenced (a dtype class kept as a parameter, a storage type).
 *
 * Names are matched exactly: `asyncio.unix_events` is not `asyncio`, `builtins.dict.fromkeys`
 * is not `builtins.dict`, and the split between module and qualname must be the one listed, so
 * that an attribute walk (`numpy` + `core.multiarray._reconstruct`) cannot reach an entry by
 * another path. Never-allowed names (policy-never.ts) win over every entry.
 */

export type GlobalUse = 'class' | 'call' | 'value';
export const GLOBAL_USES: readonly GlobalUse[] = ['class', 'call', 'value'];

export interface PolicyEntry {
  readonly module: string;
  readonly name: string;
  readonly uses: ReadonlySet<GlobalUse>;
}

export interface ModelPolicy {
  /** `default`, `strict`, or the policy file's path; shown in verdicts. */
  readonly label: string;
  /** Keyed by {@link globalKey}. */
  readonly entries: ReadonlyMap<string, PolicyEntry>;
  /**
   * Judging a TorchScript archive's pickles, which torch.jit.load reads with its own C++
   * unpickler: it imports no Python module, builds `__torch__.*` classes from the archive's
   * TorchScript code, and knows a few builders of its own (torch.jit._pickle).
   */
  readonly torchScript?: boolean;
}

/** The C++ unpickler's own builders (torch/csrc/jit/serialization/unpickler.cpp). */
const TORCHSCRIPT_BUILDERS: ReadonlySet<string> = new Set([
  'build_intlist',
  'build_tensorlist',
  'build_doublelist',
  'build_boollist',
  'build_tensor_from_id',
  'restore_type_tag',
]);

/** The policy for a TorchScript archive's pickles (see {@link ModelPolicy.torchScript}). */
export function torchScriptPolicy(base: ModelPolicy): ModelPolicy {
  return { label: `${base.label} (TorchScript)`, entries: base.entries, torchScript: true };
}

function torchScriptEntry(module: string, name: string): PolicyEntry | undefined {
  if (module === '__torch__' || module.startsWith('__torch__.')) return { module, name, uses: CLASS_VALUE };
  if (module === 'torch.jit._pickle' && TORCHSCRIPT_BUILDERS.has(name)) return { module, name, uses: CALL };
  return undefined;
}

/** The verdict on importing one global. */
export type ImportVerdict =
  | { readonly allowed: true; readonly entry: PolicyEntry }
  | { readonly allowed: false; readonly never: boolean; readonly reason: string };

export { NEVER_ALLOWED, neverAllowedReason, DEFAULT_POLICY_SOURCE };

/** The map key of a global: module and qualname, split where pickle split them. */
export function globalKey(module: string, name: string): string {
  return `${module}:${name}`;
}

/** `module.name`, as messages show a global. */
export function fullName(module: string, name: string): string {
  return `${module}.${name}`;
}

const ALL_USES: ReadonlySet<GlobalUse> = new Set(GLOBAL_USES);
const CALL: ReadonlySet<GlobalUse> = new Set<GlobalUse>(['call']);
const CLASS_VALUE: ReadonlySet<GlobalUse> = new Set<GlobalUse>(['class', 'value']);

function policyOf(label: string, list: Iterable<PolicyEntry>): ModelPolicy {
  const entries = new Map<string, PolicyEntry>();
  for (const entry of list) {
    const key = globalKey(entry.module, entry.name);
    const previous = entries.get(key);
    entries.set(key, previous === undefined ? entry : { ...entry, uses: new Set([...previous.uses, ...entry.uses]) });
  }
  return { label, entries };
}

/**
 * Plain containers and numbers only: what protocols 0 to 3 write for sets, frozensets,
 * complex numbers and OrderedDicts (as calls). A model of dicts, lists, strs, ints and floats
 * needs nothing here at protocol 2 and above.
 */
export const STRICT_POLICY: ModelPolicy = policyOf(
  'strict',
  ['dict', 'list', 'tuple', 'set', 'frozenset', 'complex']
    .map((name) => ({ module: 'builtins', name, uses: CALL }))
    .concat([{ module: 'collections', name: 'OrderedDict', uses: CALL }]),
);


/**
 * What real scikit-learn, scipy, numpy, pandas, joblib and PyTorch models import (generated by
 * scripts/gen-model-policy.py), and everything the strict policy allows.
 */
export const DEFAULT_POLICY: ModelPolicy = policyOf('default', [
  ...DEFAULT_POLICY_ENTRIES.map(([module, name, uses]) => ({
    module,
    name,
    uses: new Set(uses.split(' ') as GlobalUse[]),
  })),
  ...STRICT_POLICY.entries.values(),
]);

/** A policy with `names` added (every use allowed), as `--allow` and policy files add them. */
export function withAllowed(base: ModelPolicy, names: readonly ParsedName[], label = base.label): ModelPolicy {
  return policyOf(label, [...base.entries.values(), ...names.map((n) => ({ module: n.module, name: n.name, uses: n.uses }))]);
}

/** A name as `--allow` and policy files give it. */
export interface ParsedName {
  readonly module: string;
  readonly name: string;
  readonly uses: ReadonlySet<GlobalUse>;
}

const IDENTIFIER = /^[\p{ID_Start}_][\p{ID_Continue}]*$/u;

/** True when `text` is dotted identifiers (a module path or qualname Python can resolve). */
export function isDottedIdentifier(text: string): boolean {
  return text.length > 0 && text.length <= 1024 && text.split('.').every((part) => IDENTIFIER.test(part));
}

/**
 * Whether a qualname walks into attributes a model never needs: a dunder component
 * (`__builtins__`, `__globals__`, `__getattribute__`, `__reduce__`, `__class__`, ...) reaches
 * interpreter internals from any allowed module. copyreg's `__newobj__` and `__newobj_ex__`
 * are module functions of that name, not attribute walks.
 */
export function walksAttributes(module: string, name: string): boolean {
  if (module === 'copyreg' && (name === '__newobj__' || name === '__newobj_ex__')) return false;
  return name.split('.').some((part) => part.length > 4 && part.startsWith('__') && part.endsWith('__'));
}

/**
 * Parses `MODULE.NAME` (split at the last dot) or `MODULE:QUAL.NAME` (a nested qualname),
 * optionally limited to some uses.
 * @throws UsageError E_USAGE for a malformed name, an attribute walk, or a never-allowed name
 */
export function parseAllowedName(text: string, uses: ReadonlySet<GlobalUse> = ALL_USES, where = '--allow'): ParsedName {
  const colon = text.indexOf(':');
  const module = colon === -1 ? text.slice(0, Math.max(0, text.lastIndexOf('.'))) : text.slice(0, colon);
  const name = colon === -1 ? text.slice(text.lastIndexOf('.') + 1) : text.slice(colon + 1);
  if (!isDottedIdentifier(module) || !isDottedIdentifier(name)) {
    throw new UsageError('E_USAGE', `${where} takes MODULE.NAME (for example sklearn.svm._classes.SVC) or MODULE:QUAL.NAME, got ${JSON.stringify(text)}`);
  }
  if (walksAttributes(module, name)) {
    throw new UsageError('E_USAGE', `${where} ${text}: a qualname with a dunder component walks attributes and is never allowed`);
  }
  const never = neverAllowedReason(fullName(module, name));
  if (never !== undefined) {
    throw new UsageError('E_USAGE', `${where} ${text}: this name ${never} and can never be allowed`);
  }
  return { module, name, uses };
}

/**
 * Judges importing `module.name` (after Python 2 names were mapped). Never throws.
 */
export function judgeImport(policy: ModelPolicy, module: string, name: string): ImportVerdict {
  const full = fullName(module, name);
  if (policy.torchScript) {
    const entry = walksAttributes(module, name) ? undefined : torchScriptEntry(module, name);
    if (entry !== undefined) return { allowed: true, entry };
  }
  const never = neverAllowedReason(full);
  if (never !== undefined) return { allowed: false, never: true, reason: `imports ${displayName(full)}, which ${never}; never allowed` };
  if (walksAttributes(module, name)) {
    return { allowed: false, never: true, reason: `imports ${full}, an attribute walk into interpreter internals; never allowed` };
  }
  const entry = policy.entries.get(globalKey(module, name));
  if (entry !== undefined) return { allowed: true, entry };
  const spelled = name.includes('.') ? `${module}:${name}` : full;
  return {
    allowed: false,
    never: false,
    reason: `imports ${full}, which the ${policy.label} policy does not list; if you trust this model's source, allow it with --allow ${spelled}`,
  };
}

/** `posix.system (os.system)`: the name pickle writes, with the one people know. */
export function displayName(full: string): string {
  const match = /^(posix|nt)\.(.+)$/.exec(full);
  return match ? `${full} (os.${match[2]})` : full;
}

/** The uses an entry allows, as text (`class, call`). */
export function usesText(uses: ReadonlySet<GlobalUse>): string {
  return GLOBAL_USES.filter((u) => uses.has(u)).join(', ');
}

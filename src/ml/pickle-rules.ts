import type { ImportSite } from './pickle-imports.js';
import { strText, type GlobalValue, type PickleValue } from './pickle-values.js';
import { displayName, fullName, globalKey, neverAllowedReason, usesText, type ModelPolicy } from './policy.js';

/**
 * How each use of a value is judged: the callable of REDUCE/INST/OBJ must be a global the
 * policy lists for `call`, the class of NEWOBJ one it lists as a `class`. A few rebuild
 * helpers instantiate a class handed to them as an argument (copyreg._reconstructor,
 * copyreg.__newobj__, numpy's _reconstruct): that argument must be a listed class too, so that
 * allowing the helper does not allow everything it could build. `_codecs.encode` (how
 * protocols 0 to 2 write bytes) may only use the latin1 codec: the codec name picks the code
 * that runs.
 */

/**
 * Helpers whose arguments at these positions are classes they instantiate (`cls.__new__(cls)`
 * and the like); Cython's `__pyx_unpickle_<Class>(type, checksum, state)` helpers too.
 * scripts/gen-model-policy.py uses the same table to record those classes' use.
 */
const CLASS_ARGUMENTS: ReadonlyMap<string, readonly number[]> = new Map([
  [globalKey('copyreg', '_reconstructor'), [0, 1]],
  [globalKey('copyreg', '__newobj__'), [0]],
  [globalKey('copyreg', '__newobj_ex__'), [0]],
  [globalKey('numpy.core.multiarray', '_reconstruct'), [0]],
  [globalKey('numpy._core.multiarray', '_reconstruct'), [0]],
  [globalKey('sklearn.metrics._dist_metrics', 'newObj'), [0]],
  [globalKey('sklearn.neighbors._kd_tree', 'newObj'), [0]],
  [globalKey('sklearn.neighbors._ball_tree', 'newObj'), [0]],
  [globalKey('pandas.core.indexes.base', '_new_Index'), [0]],
  [globalKey('pandas.core.indexes.datetimes', '_new_DatetimeIndex'), [0]],
]);

function classArguments(module: string, name: string): readonly number[] | undefined {
  return name.startsWith('__pyx_unpickle_') ? [0] : CLASS_ARGUMENTS.get(globalKey(module, name));
}

/** Helpers whose arguments at these positions must be one of these literal strs. */
const LITERAL_ARGUMENTS: ReadonlyMap<string, ReadonlyMap<number, readonly string[]>> = new Map([
  [globalKey('_codecs', 'encode'), new Map([[1, ['latin1']]])],
]);

/** Where rule findings go: the machine at the current opcode, and its policy. */
export interface RuleSite extends ImportSite {
  readonly judgedBy: ModelPolicy;
}

/**
 * Judges using `value` as `use` with `args`, reporting a finding when the policy does not
 * allow it. Returns the class of the object the use builds, when it is a known global.
 */
export function checkUse(site: RuleSite, value: PickleValue, use: 'call' | 'class', args: PickleValue): GlobalValue | undefined {
  const verb = use === 'call' ? 'calls' : 'instantiates';
  const kind = use === 'call' ? 'call' : 'instantiate';
  if (value.kind !== 'global') {
    site.finding(kind, `${verb} ${describe(value)}, which is not an import the policy allows for that`);
    return undefined;
  }
  const full = fullName(value.module, value.name);
  if (value.entry === undefined) {
    const never = neverAllowedReason(full);
    const why = never !== undefined ? `which ${never}; never allowed` : `which the ${site.judgedBy.label} policy does not list`;
    site.finding(kind, `${verb} ${displayName(full)}, ${why}`, full, never !== undefined);
    return value;
  }
  if (!value.entry.uses.has(use)) {
    site.finding(
      kind,
      `${verb} ${full}, which the ${site.judgedBy.label} policy lists for ${usesText(value.entry.uses)} only, not to be ${use === 'call' ? 'called by REDUCE' : 'instantiated'}`,
      full,
    );
    return value;
  }
  if (use !== 'call') return value;
  const key = globalKey(value.module, value.name);
  const classArgs = classArguments(value.module, value.name);
  if (classArgs !== undefined) return checkClassArguments(site, full, classArgs, args);
  const literals = LITERAL_ARGUMENTS.get(key);
  if (literals !== undefined) checkLiteralArguments(site, full, literals, args);
  return value;
}

function checkClassArguments(site: RuleSite, helper: string, positions: readonly number[], args: PickleValue): GlobalValue | undefined {
  if (args.kind !== 'tuple' || args.items === undefined) {
    site.finding('argument', `calls ${helper} with arguments that cannot be read, so the class it builds cannot be checked`, helper);
    return undefined;
  }
  let made: GlobalValue | undefined;
  for (const i of positions) {
    const item = args.items[i];
    if (item === undefined) continue; // too few arguments: the call fails
    if (item.kind !== 'global') {
      site.finding('argument', `calls ${helper} to build ${describe(item)}, which is not a class the policy lists`, helper);
      continue;
    }
    const full = fullName(item.module, item.name);
    if (item.entry === undefined || !item.entry.uses.has('class')) {
      const never = neverAllowedReason(full);
      site.finding(
        'instantiate',
        `calls ${helper} to instantiate ${displayName(full)}, which the ${site.judgedBy.label} policy does not list as a class${never ? ` (it ${never})` : ''}`,
        full,
        never !== undefined,
      );
    }
    made ??= item;
  }
  return made;
}

function checkLiteralArguments(site: RuleSite, helper: string, literals: ReadonlyMap<number, readonly string[]>, args: PickleValue): void {
  const items = args.kind === 'tuple' ? args.items : undefined;
  for (const [i, allowed] of literals) {
    const text = items?.[i] === undefined ? undefined : strText(items[i] as PickleValue);
    if (text === undefined || !allowed.includes(text)) {
      site.finding('argument', `calls ${helper} with argument ${i + 1} ${text === undefined ? 'not a literal str' : JSON.stringify(text)}; only ${allowed.map((a) => JSON.stringify(a)).join(', ')} may be used`, helper);
    }
  }
}

function describe(value: PickleValue): string {
  switch (value.kind) {
    case 'object':
      return value.of ? `an object built by ${value.of.module}.${value.of.name}` : 'the result of an earlier call';
    case 'unknown':
      return 'a value the scan cannot know';
    case 'global':
      return `${value.module}.${value.name}`;
    default:
      return `a ${value.kind}`;
  }
}


import { UsageError } from '../errors.js';

/**
 * Two argparse behaviours that the commander-based programs (intoto-verify, intoto-sign,
 * intoto-keygen, `intoto layout ...`, `intoto pipeline run`, `intoto scan-pickle`) get by
 * having their command line reshaped before commander reads it:
 *
 * 1. Abbreviated long options, exactly as Python's argparse takes them: `--layout-key` for
 *    `--layout-keys`, `--link` for `--link-dir`, `--out=x` for `--output=x`. An exact flag
 *    wins; otherwise a unique prefix stands for its option, and an ambiguous one is a usage
 *    error listing the candidates. One refinement keeps the reference's command lines meaning
 *    what they mean there: a prefix that matches exactly one of the reference's own options is
 *    that option, even if options only we have also match it (`intoto-verify --layout-`
 *    is --layout-keys, as in in-toto-verify, although --layout-threshold also starts so).
 *
 * 2. A list option before a positional does not swallow the positional the command needs:
 *    `intoto layout sign -k keys/owner pipeline.yaml` is the key keys/owner and the file
 *    pipeline.yaml. argparse itself (bpo-9338) and commander would give pipeline.yaml to -k and
 *    then miss the file; here, when required positionals are missing and list options took more
 *    than one value, the last values of the last such list are given back, one per missing
 *    positional (a list keeps at least one value). No reference program has both a list option
 *    and a positional, so this never changes the meaning of a reference command line.
 */

/** One option as commander declares it (only what the reshaping needs). */
export interface ShapeOption {
  readonly long: string | undefined;
  readonly short: string | undefined;
  /** Takes a value (`<v>`): the next word, whatever it looks like. */
  readonly required: boolean;
  /** May take a value (`[v]`): the next word unless it looks like an option. */
  readonly optional: boolean;
  /** Takes every following word that does not look like an option. */
  readonly variadic: boolean;
}

export interface Shape {
  readonly options: readonly ShapeOption[];
  /** How many positionals the command requires. */
  readonly requiredPositionals: number;
  /** The long flags the reference program has, for the refinement in (1); none: plain argparse. */
  readonly referenceFlags?: ReadonlySet<string>;
}

const NEGATIVE_NUMBER = /^-(\d+|\d*\.\d+)(e[+-]?\d+)?$/;

function looksLikeOption(word: string): boolean {
  return word.length > 1 && word.startsWith('-') && !NEGATIVE_NUMBER.test(word);
}

/**
 * The long flag a `--word` stands for: itself when exact, its unique (reference-first)
 * completion, or undefined when nothing matches (commander then reports it as unknown).
 * @throws UsageError E_USAGE for an ambiguous prefix, naming the candidates
 */
export function resolveLongFlag(word: string, shape: Shape): string | undefined {
  const longs = [...new Set(shape.options.map((o) => o.long).filter((l): l is string => l !== undefined))];
  if (longs.includes(word)) return word;
  const matches = longs.filter((flag) => flag.startsWith(word));
  if (matches.length <= 1) return matches[0];
  const reference = shape.referenceFlags === undefined ? [] : matches.filter((flag) => shape.referenceFlags?.has(flag));
  if (reference.length === 1) return reference[0];
  throw new UsageError('E_USAGE', `ambiguous option: ${word} could match ${matches.join(', ')}`);
}

interface Token {
  readonly index: number;
  readonly word: string;
}

/**
 * The command line reshaped for commander: abbreviations expanded, and swallowed positionals
 * given back (moved after a `--`, in their original order with the other positionals).
 * Words it does not understand are left for commander to report.
 * @throws UsageError E_USAGE for an ambiguous abbreviation
 */
export function reshapeArgv(argv: readonly string[], shape: Shape): string[] {
  const out = [...argv];
  const positionals: Token[] = [];
  const lists: Token[][] = [];
  let list: Token[] | undefined;
  const byLong = new Map(shape.options.filter((o) => o.long !== undefined).map((o) => [o.long as string, o]));
  const byShort = new Map(shape.options.filter((o) => o.short !== undefined).map((o) => [o.short as string, o]));
  let unknown = false;
  let i = 0;
  for (; i < out.length; i++) {
    const word = out[i] as string;
    if (word === '--') break;
    if (list !== undefined && !looksLikeOption(word)) {
      list.push({ index: i, word });
      continue;
    }
    list = undefined;
    if (!looksLikeOption(word)) {
      positionals.push({ index: i, word });
      continue;
    }
    let option: ShapeOption | undefined;
    let inlineValue = false;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const head = eq === -1 ? word : word.slice(0, eq);
      const flag = resolveLongFlag(head, shape);
      if (flag !== undefined && flag !== head) out[i] = flag + (eq === -1 ? '' : word.slice(eq));
      option = flag === undefined ? undefined : byLong.get(flag);
      inlineValue = eq !== -1;
    } else {
      option = byShort.get(word.slice(0, 2));
      inlineValue = word.length > 2;
    }
    if (option === undefined) {
      unknown = true;
      continue;
    }
    // A value in the same word (`--keys=a`, `-ka`) ends the option there, as in commander.
    if (inlineValue && (option.required || option.optional)) continue;
    if (option.required) {
      const value = i + 1 < out.length ? (out[i + 1] as string) : undefined;
      if (value === undefined) continue;
      i += 1;
      if (option.variadic) {
        list = [{ index: i, word: value }];
        lists.push(list);
      }
    } else if (option.optional && i + 1 < out.length && !looksLikeOption(out[i + 1] as string) && out[i + 1] !== '--') {
      i += 1;
      if (option.variadic) {
        list = [{ index: i, word: out[i] as string }];
        lists.push(list);
      }
    }
  }
  for (let j = i + 1; j < out.length; j++) positionals.push({ index: j, word: out[j] as string });
  let missing = shape.requiredPositionals - positionals.length;
  if (missing <= 0 || unknown) return out;
  const given: Token[] = [];
  for (let k = lists.length - 1; k >= 0 && missing > 0; k--) {
    const values = lists[k] as Token[];
    while (values.length > 1 && missing > 0) {
      given.unshift(values.pop() as Token);
      missing -= 1;
    }
  }
  if (given.length === 0) return out;
  const moved = new Set([...given, ...positionals].map((t) => t.index));
  const kept = out.slice(0, i).filter((_, index) => !moved.has(index));
  const all = [...positionals, ...given].sort((a, b) => a.index - b.index).map((t) => t.word);
  return [...kept, '--', ...all];
}

import { UsageError } from '../errors.js';

/**
 * Command lines parsed the way Python's argparse (3.11, as used by in-toto 1.3.1) parses them,
 * for the options the step tools share with the reference: users' scripts already type these
 * command lines, so `-na`, `-sx`, `-Ppw`, `--step-name=a`, unique prefixes such as `--step`,
 * `-P` without a value, and `-m a b` lists must mean here what they mean there. Commander
 * cannot be made to agree (it takes `-n -k` as a step named "-k", keeps `--` inside the
 * command, and knows no abbreviations), so the subset argparse features we need is written out.
 *
 * What is left to the caller, on purpose: the command. Everything after the first `--` is
 * returned verbatim; words before it that no option consumed are returned as `positionals`,
 * with the first option met after one of them, so the caller can refuse the command lines
 * where argparse silently does something surprising (see cli/step-command.ts).
 */

/** How an option takes its argument (argparse `action`/`nargs`). */
export type OptionKind =
  | 'flag' // store_true
  | 'value' // one argument; the last occurrence wins, as in argparse
  | 'optional-value' // nargs='?' with const=true: `-P` alone, or `-P pw`
  | 'list' // nargs='+'
  | 'append'; // one argument per occurrence, collected (our own repeatable flags)

/** One option, as argparse.add_argument declares it. */
export interface OptionSpec {
  /** Key in the parsed values. */
  readonly dest: string;
  /** Option strings, short first: ['-n', '--step-name']. */
  readonly flags: readonly string[];
  readonly kind: OptionKind;
  readonly metavar?: string;
  readonly choices?: readonly string[];
  readonly required?: boolean;
  readonly help: string;
  /** Listed under "required named arguments" in the help. */
  readonly named?: boolean;
  /** Help and version: acted on as soon as they are met, as argparse does. */
  readonly action?: 'help' | 'version';
  /**
   * Ours only, not an option of the reference program (in-toto 1.3.1, or the 2.x/3.x flags we
   * also take): an abbreviation that fits exactly one reference option means that option even
   * when it also fits one of ours, so a reference command line keeps its meaning.
   */
  readonly extension?: boolean;
}

/** A program: its options, help text and mutually exclusive groups. */
export interface ParserSpec {
  readonly prog: string;
  readonly usage: string;
  readonly description: string;
  readonly epilog?: string;
  readonly options: readonly OptionSpec[];
  /** Groups of dests that may not be given together (-v/-q). */
  readonly exclusive?: readonly (readonly string[])[];
  /**
   * The positional (the command), if the program takes one: words that no option consumes are
   * returned as `positionals`; without it they are unrecognized arguments.
   */
  readonly positional?: { readonly metavar: string; readonly help: string };
}

/** A parsed value: true for flags (and a bare optional-value option), a string, or a list. */
export type OptionValue = boolean | string | readonly string[];

/** The outcome of parsing a command line. */
export interface Parsed {
  /** 'help' or 'version' when one of them was met (nothing else is then meaningful). */
  readonly action: 'help' | 'version' | undefined;
  /** Values of the options that were given, by dest. */
  readonly values: ReadonlyMap<string, OptionValue>;
  /** How many times each option was given, by dest. */
  readonly counts: ReadonlyMap<string, number>;
  /** Words before `--` that no option consumed. */
  readonly positionals: readonly string[];
  /** The option string of the first option met after a positional word, if any. */
  readonly optionAfterPositional: string | undefined;
  /** Everything after the first `--`, verbatim; undefined when there is no `--`. */
  readonly afterDashDash: readonly string[] | undefined;
}

type Classified =
  | { readonly kind: 'positional' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'option'; readonly spec: OptionSpec; readonly flag: string; readonly explicit: string | undefined };

const NEGATIVE_NUMBER = /^-\d+$|^-\d*\.\d+$/;

function fail(message: string): never {
  throw new UsageError('E_USAGE', message);
}

/** "-n/--step-name", as argparse names an option in its messages. */
export function optionName(spec: OptionSpec): string {
  return spec.flags.join('/');
}

class Classifier {
  private readonly byFlag = new Map<string, OptionSpec>();

  constructor(spec: ParserSpec) {
    for (const option of spec.options) for (const flag of option.flags) this.byFlag.set(flag, option);
  }

  /** argparse's _parse_optional (3.11): option, unknown option, or positional. */
  classify(token: string): Classified {
    if (!token.startsWith('-') || token === '-') return { kind: 'positional' };
    const exact = this.byFlag.get(token);
    if (exact) return { kind: 'option', spec: exact, flag: token, explicit: undefined };
    const eq = token.indexOf('=');
    if (eq > 0) {
      const head = this.byFlag.get(token.slice(0, eq));
      if (head) return { kind: 'option', spec: head, flag: token.slice(0, eq), explicit: token.slice(eq + 1) };
    }
    let matches = this.prefixMatches(token);
    if (matches.length > 1) {
      const reference = matches.filter((m) => m.spec.extension !== true);
      if (reference.length === 1) matches = reference;
      else fail(`ambiguous option: ${token.split('=')[0]} could match ${matches.map((m) => m.flag).join(', ')}`);
    }
    if (matches.length === 1) return matches[0]!;
    // The parser has no option that looks like a negative number, so `-1` is a value; and a
    // token with a space in it is never an option.
    if (NEGATIVE_NUMBER.test(token) || token.includes(' ')) return { kind: 'positional' };
    return { kind: 'unknown' };
  }

  private prefixMatches(token: string): Extract<Classified, { kind: 'option' }>[] {
    const found: Extract<Classified, { kind: 'option' }>[] = [];
    if (token.startsWith('--')) {
      const eq = token.indexOf('=');
      const prefix = eq === -1 ? token : token.slice(0, eq);
      const explicit = eq === -1 ? undefined : token.slice(eq + 1);
      for (const [flag, spec] of this.byFlag) if (flag.startsWith(prefix)) found.push({ kind: 'option', spec, flag, explicit });
    } else {
      const short = token.slice(0, 2);
      for (const [flag, spec] of this.byFlag) {
        if (flag === short) found.push({ kind: 'option', spec, flag, explicit: token.slice(2) });
        else if (flag.startsWith(token)) found.push({ kind: 'option', spec, flag, explicit: undefined });
      }
    }
    return found;
  }

  isOptionLike(token: string): boolean {
    return this.classify(token).kind !== 'positional';
  }
}

/**
 * Parses `argv` (without the program name) as argparse would parse it for `spec`.
 * @throws UsageError E_USAGE with argparse's message for: a missing option argument, an
 *   invalid choice, an ambiguous abbreviation, an explicit argument to a flag, options that
 *   exclude each other, missing required options, unrecognized options
 */
export function parseArguments(spec: ParserSpec, argv: readonly string[]): Parsed {
  const split = argv.indexOf('--');
  const before = split === -1 ? argv : argv.slice(0, split);
  const afterDashDash = split === -1 ? undefined : argv.slice(split + 1);
  const classifier = new Classifier(spec);
  const values = new Map<string, OptionValue>();
  const counts = new Map<string, number>();
  const positionals: string[] = [];
  const unrecognized: string[] = [];
  let optionAfterPositional: string | undefined;

  const set = (option: OptionSpec, value: OptionValue): void => {
    if (option.choices) {
      for (const v of typeof value === 'string' ? [value] : []) {
        if (!option.choices.includes(v)) {
          fail(`argument ${optionName(option)}: invalid choice: '${v}' (choose from ${option.choices.map((c) => `'${c}'`).join(', ')})`);
        }
      }
    }
    for (const group of spec.exclusive ?? []) {
      if (!group.includes(option.dest)) continue;
      const other = group.find((dest) => dest !== option.dest && values.has(dest));
      const otherSpec = spec.options.find((o) => o.dest === other);
      if (otherSpec) fail(`argument ${optionName(option)}: not allowed with argument ${optionName(otherSpec)}`);
    }
    counts.set(option.dest, (counts.get(option.dest) ?? 0) + 1);
    if (option.kind === 'append') {
      const previous = values.get(option.dest);
      values.set(option.dest, [...(Array.isArray(previous) ? (previous as string[]) : []), value as string]);
    } else {
      values.set(option.dest, value);
    }
  };

  for (let i = 0; i < before.length; ) {
    const token = before[i]!;
    const classified = classifier.classify(token);
    if (classified.kind === 'positional') {
      // Without a positional to fill, argparse reports the word among the unrecognized ones.
      if (spec.positional === undefined) unrecognized.push(token);
      else positionals.push(token);
      i += 1;
      continue;
    }
    if (classified.kind === 'unknown') {
      unrecognized.push(token);
      i += 1;
      continue;
    }
    if (positionals.length > 0) optionAfterPositional ??= classified.flag;
    let { spec: option, flag, explicit } = classified;
    i += 1;
    // A cluster of short flags (-sx) or a short option with its value attached (-na, -Ppw).
    for (;;) {
      if (option.action) return { action: option.action, values, counts, positionals, optionAfterPositional, afterDashDash };
      if (option.kind !== 'flag') break;
      if (explicit === undefined) {
        set(option, true);
        break;
      }
      const next = flag.startsWith('--') || explicit === '' ? undefined : classifier.classify(`-${explicit[0]!}`);
      if (next === undefined || next.kind !== 'option' || next.flag !== `-${explicit[0]!}`) {
        fail(`argument ${optionName(option)}: ignored explicit argument '${explicit}'`);
      }
      set(option, true);
      option = next.spec;
      flag = next.flag;
      explicit = explicit.length > 1 ? explicit.slice(1) : undefined;
    }
    if (option.kind === 'flag') continue;
    const takesArgument = (k: number): boolean => k < before.length && !classifier.isOptionLike(before[k]!);
    switch (option.kind) {
      case 'value':
      case 'append':
        if (explicit !== undefined) set(option, explicit);
        else if (takesArgument(i)) set(option, before[i++]!);
        else fail(`argument ${optionName(option)}: expected one argument`);
        break;
      case 'optional-value':
        if (explicit !== undefined) set(option, explicit);
        else if (takesArgument(i)) set(option, before[i++]!);
        else set(option, true);
        break;
      case 'list': {
        if (explicit !== undefined) {
          set(option, [explicit]);
          break;
        }
        const list: string[] = [];
        while (takesArgument(i)) list.push(before[i++]!);
        if (list.length === 0) fail(`argument ${optionName(option)}: expected at least one argument`);
        set(option, list);
        break;
      }
    }
  }

  const missing = spec.options.filter((o) => o.required && !values.has(o.dest));
  if (missing.length > 0) fail(`the following arguments are required: ${missing.map(optionName).join(', ')}`);
  if (spec.positional === undefined && afterDashDash !== undefined) unrecognized.push('--', ...afterDashDash);
  if (unrecognized.length > 0) fail(`unrecognized arguments: ${unrecognized.join(' ')}`);
  return { action: undefined, values, counts, positionals, optionAfterPositional, afterDashDash };
}

/** A string value, or undefined when absent (or given as the bare optional form). */
export function stringValue(parsed: Parsed, dest: string): string | undefined {
  const value = parsed.values.get(dest);
  return typeof value === 'string' ? value : undefined;
}

/** A list value (list or append), or undefined when absent. */
export function listValue(parsed: Parsed, dest: string): readonly string[] | undefined {
  const value = parsed.values.get(dest);
  return Array.isArray(value) ? (value as readonly string[]) : undefined;
}

/** True when a flag was given. */
export function flagValue(parsed: Parsed, dest: string): boolean {
  return parsed.values.get(dest) === true;
}

function metavarOf(option: OptionSpec): string {
  if (option.choices) return `{${option.choices.join(',')}}`;
  return option.metavar ?? `<${option.dest}>`;
}

function invocation(option: OptionSpec): string {
  const m = metavarOf(option);
  const arg = option.kind === 'flag' || option.action ? '' : option.kind === 'optional-value' ? ` [${m}]` : option.kind === 'list' ? ` ${m} [${m} ...]` : ` ${m}`;
  return option.flags.map((f) => `${f}${arg}`).join(', ');
}

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

/**
 * One option or argument of a help text as argparse lays it out: the term indented by two,
 * the help wrapped at 78 columns from column 24 (on the next line when the term is long).
 * Also used for the commander programs, so that every --help reads the same way.
 */
export function helpEntry(term: string, help: string): string[] {
  const head = `  ${term}`;
  const lines = wrap(help, 78, ' '.repeat(24));
  if (head.length <= 22 && lines.length > 0) return [head.padEnd(24) + lines[0]!.trimStart(), ...lines.slice(1)];
  return [head, ...lines];
}

/** The --help text, laid out as argparse lays it out (groups, 24-column option column). */
export function formatHelp(spec: ParserSpec): string {
  const out: string[] = [`usage: ${spec.usage}`, '', spec.description.trim(), ''];
  const section = (title: string, options: readonly OptionSpec[]): void => {
    if (options.length === 0) return;
    out.push(`${title}:`);
    for (const option of options) out.push(...helpEntry(invocation(option), option.help));
    out.push('');
  };
  section(
    'Required Named Arguments',
    spec.options.filter((o) => o.named),
  );
  if (spec.positional) {
    out.push('Positional Arguments:');
    out.push(`  ${spec.positional.metavar}`.padEnd(24) + (wrap(spec.positional.help, 78, ' '.repeat(24)).join('\n').trimStart()), '');
  }
  section(
    'Options',
    spec.options.filter((o) => !o.named),
  );
  if (spec.epilog) out.push(spec.epilog.trim(), '');
  return `${out.join('\n').trimEnd()}\n`;
}

import { FormatError, IoError } from '../errors.js';
import { artifactNameProblem, MAX_ARTIFACT_NAME_LENGTH, stepNameProblem } from './names.js';

/**
 * Artifact rules, parsed once when a layout is loaded (in-toto spec §4.3.3; the grammar of the
 * reference's `rulelib.unpack_rule`):
 *
 *   MATCH <pattern> [IN <source-prefix>] WITH (MATERIALS|PRODUCTS) [IN <dest-prefix>] FROM <step>
 *   CREATE | DELETE | MODIFY | ALLOW | DISALLOW <pattern>
 *   REQUIRE <file>
 *
 * Keywords are case-insensitive, operands keep their case. We are stricter than the reference
 * in what we accept, so that a rule that could never do what its author meant fails at load,
 * not silently at verify time: patterns and prefixes that climb out of the tree (`..`), are
 * absolute, or have `.`/empty segments (no valid artifact name could ever match them) are
 * refused, as are control characters, lone surrogates and text not in NFC (artifact names are
 * NFC, so such a literal could never match either). So are glob constructs that Python's
 * fnmatch, which decides what the reference matches, reads differently from a shell, which is
 * how the layout's author likely read them (see {@link globProblem}).
 */

/** A rule kind that takes one pattern and no other operand. */
export type PatternRuleKind = 'CREATE' | 'DELETE' | 'MODIFY' | 'ALLOW' | 'DISALLOW';

/** One parsed rule, as a step's or inspection's expected_materials/expected_products hold it. */
export type ArtifactRule =
  | {
      readonly kind: 'MATCH';
      readonly pattern: string;
      /** '' when the rule has no `IN` before `WITH`. */
      readonly sourcePrefix: string;
      readonly destType: 'materials' | 'products';
      /** '' when the rule has no `IN` after `WITH`. */
      readonly destPrefix: string;
      readonly destStep: string;
      /** The rule in canonical form, for messages and traces (see {@link ruleText}). */
      readonly text: string;
    }
  | { readonly kind: PatternRuleKind; readonly pattern: string; readonly text: string }
  | {
      readonly kind: 'REQUIRE';
      /** A literal artifact name: the reference never globs REQUIRE's operand. */
      readonly path: string;
      readonly text: string;
    };

/** The MATCH member of {@link ArtifactRule}. */
export type MatchRule = Extract<ArtifactRule, { kind: 'MATCH' }>;

/** At most this many rules per expected_materials / expected_products list (bounded work). */
export const MAX_RULES_PER_LIST = 10_000;
/** At most this many characters in a rule string given to {@link parseRuleString}. */
export const MAX_RULE_STRING_LENGTH = 4 * MAX_ARTIFACT_NAME_LENGTH + 1024;

const PATTERN_KINDS: ReadonlyMap<string, PatternRuleKind> = new Map([
  ['create', 'CREATE'],
  ['delete', 'DELETE'],
  ['modify', 'MODIFY'],
  ['allow', 'ALLOW'],
  ['disallow', 'DISALLOW'],
]);

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * ASCII-only lower-casing for keywords. Python's `str.lower()` also folds a few non-ASCII
 * characters to ASCII (the Kelvin sign to `k`), but none of them to a letter of any rule
 * keyword, so this accepts exactly the keywords the reference accepts.
 */
function keyword(token: string): string {
  return token.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** Why `pattern` cannot be a rule pattern, or undefined when it can. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'is empty';
  if (pattern.length > MAX_ARTIFACT_NAME_LENGTH) return `is longer than ${MAX_ARTIFACT_NAME_LENGTH} characters`;
  if (CONTROL.test(pattern)) return 'contains a control character';
  if (LONE_SURROGATE.test(pattern)) return 'contains a lone surrogate (not well-formed Unicode)';
  if (INVISIBLE.test(pattern)) return 'contains an invisible or bidi control character (no artifact name has one)';
  if (pattern.normalize('NFC') !== pattern) return 'is not in Unicode normal form C (artifact names are)';
  if (pattern.startsWith('/')) return 'is absolute (leading /)';
  const glob = globProblem(pattern);
  if (glob !== undefined) return glob;
  // Splitting on every '/' also splits inside a class such as `[/]`; harmless, because a
  // class never yields a segment that is empty, '.' or '..'.
  for (const segment of pattern.split('/')) {
    if (segment === '..') return "has a '..' segment (climbs out of the tree)";
    if (segment === '.') return "has a '.' segment (no artifact name has one)";
    if (segment === '') return 'has an empty segment (// or a trailing /; no artifact name has one)';
  }
  return undefined;
}

/**
 * Why `pattern` is a malformed glob, or undefined when it is not. The reference matches with
 * Python's `fnmatch`, whose reading of these differs from a shell's, so the rule may not do
 * what its author meant; each is refused rather than read one way silently:
 * - a backslash: fnmatch has no escape (`\*` is a backslash then any text), a shell escapes
 *   with it; and no artifact name contains one (model/names.ts);
 * - a `[` with no closing `]`, including `[]` and `[!]` (a `]` right after `[` or `[!` is a
 *   member): fnmatch matches it as a literal `[`;
 * - a class starting with `^`: a negation in most shells, a literal `^` to fnmatch (write `[!...]`);
 * - `[:alpha:]`, `[.x.]`, `[=x=]` inside a class: POSIX classes in a shell, single
 *   characters to fnmatch;
 * - a reversed range such as `z-a`: fnmatch drops it silently, a shell fails or matches nothing.
 */
export function globProblem(pattern: string): string | undefined {
  if (pattern.includes('\\')) {
    return 'contains a backslash (an escape to a shell, a literal character to fnmatch; no artifact name has one)';
  }
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] !== '[') continue;
    let j = i + 1;
    if (chars[j] === '^') return `has a class starting with '^' at ${JSON.stringify(chars.slice(i, i + 4).join(''))}: a negation to a shell, a literal '^' to fnmatch (write [!...])`;
    if (chars[j] === '!') j++;
    if (chars[j] === ']') j++; // a member, not the end
    const close = chars.indexOf(']', j);
    if (close < 0) return `has an unclosed '[' at ${JSON.stringify(chars.slice(i, i + 8).join(''))} (fnmatch would match it as a literal '[')`;
    const members = chars.slice(chars[i + 1] === '!' ? i + 2 : i + 1, close);
    for (let m = 0; m < members.length; m++) {
      if (members[m] === '[' && (members[m + 1] === ':' || members[m + 1] === '.' || members[m + 1] === '=')) {
        return `has a POSIX bracket expression ${JSON.stringify(`[${members[m + 1]}`)} in ${JSON.stringify(chars.slice(i, close + 1).join(''))}, which fnmatch does not support`;
      }
      const lo = members[m] as string;
      const hi = members[m + 2];
      if (members[m + 1] === '-' && hi !== undefined) {
        if ((lo.codePointAt(0) ?? 0) > (hi.codePointAt(0) ?? 0)) return `has a reversed range ${JSON.stringify(`${lo}-${hi}`)} (fnmatch drops it silently)`;
        m += 2;
      }
    }
    i = close;
  }
  return undefined;
}

/**
 * Why `prefix` cannot be an `IN` prefix, or undefined when it can. A prefix is a literal
 * directory (never globbed) with an optional trailing `/`; '' means "no prefix", as in the
 * reference. Backslashes are refused: the reference rewrites them to `/` when joining.
 */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix === '') return undefined;
  if (prefix.includes('\\')) return 'contains a backslash (the reference would rewrite it to /)';
  const problem = artifactNameProblem(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  if (problem === undefined) return undefined;
  return problem.includes("'..'") ? `${problem} (climbs out of the tree)` : problem;
}

/** A token shown in an error message: JSON-quoted and cut short, so a hostile rule stays one line. */
function show(token: unknown): string {
  if (typeof token !== 'string') return `<${token === null ? 'null' : typeof token}>`;
  const cut = token.length > 80 ? `${token.slice(0, 80)}...` : token;
  return JSON.stringify(cut);
}

function showRule(tokens: readonly unknown[]): string {
  const shown = tokens.slice(0, 12).map(show);
  if (tokens.length > 12) shown.push(`... (${tokens.length} tokens)`);
  return `[${shown.join(', ')}]`;
}

const MATCH_GRAMMAR =
  'MATCH <pattern> [IN <source-prefix>] WITH (MATERIALS|PRODUCTS) [IN <dest-prefix>] FROM <step>';

/**
 * Parses one rule from its JSON form (a list of strings) into a typed value.
 * `where` names the rule for messages, e.g. "step 'train' expected_materials[2]".
 * Accepts any value so that a layout's raw JSON can be passed in unchecked.
 * @throws FormatError E_RULE_SYNTAX naming `where` and the rule: not a list of strings, an
 *   unknown keyword, a wrong arity, a MATCH not in one of its four shapes, a destination other
 *   than MATERIALS/PRODUCTS, or a bad pattern, prefix, step name or REQUIRE path.
 */
export function parseRule(tokens: unknown, where: string): ArtifactRule {
  if (!Array.isArray(tokens)) {
    throw new FormatError('E_RULE_SYNTAX', `${where}: a rule must be a list of strings, got ${show(tokens)}`);
  }
  const list = tokens as readonly unknown[];
  const fail = (problem: string): FormatError =>
    new FormatError('E_RULE_SYNTAX', `${where}: rule ${showRule(list)} ${problem}`, {
      context: { rule: list.filter((t) => typeof t === 'string').join(' ').slice(0, 200) },
    });
  if (!list.every((t): t is string => typeof t === 'string')) throw fail('has an element that is not a string');
  const words = list as readonly string[];
  if (words.length < 2) throw fail('needs a keyword and an operand');
  const head = keyword(words[0] ?? '');
  const operand = words[1] ?? '';

  const patternKind = PATTERN_KINDS.get(head);
  if (patternKind !== undefined || head === 'require') {
    if (words.length !== 2) throw fail(`has ${words.length - 2} extra element(s): ${head.toUpperCase()} takes one operand`);
    if (patternKind !== undefined) {
      const problem = patternProblem(operand);
      if (problem !== undefined) throw fail(`has a pattern that ${problem}`);
      return freezeRule({ kind: patternKind, pattern: operand, text: '' });
    }
    // REQUIRE names one literal artifact; a name no link may contain could never be satisfied.
    const problem = artifactNameProblem(operand);
    if (problem !== undefined) throw fail(`requires an artifact name that ${problem}`);
    return freezeRule({ kind: 'REQUIRE', path: operand, text: '' });
  }
  if (head !== 'match') {
    throw fail('does not start with one of MATCH, CREATE, DELETE, MODIFY, ALLOW, DISALLOW, REQUIRE');
  }

  const k = words.map(keyword);
  let sourcePrefix = '';
  let destPrefix = '';
  let destType: string;
  let destStep: string;
  // The four shapes of unpack_rule, told apart by length and keyword positions.
  if (k.length === 10 && k[2] === 'in' && k[4] === 'with' && k[6] === 'in' && k[8] === 'from') {
    [sourcePrefix, destType, destPrefix, destStep] = [words[3] ?? '', k[5] ?? '', words[7] ?? '', words[9] ?? ''];
  } else if (k.length === 8 && k[2] === 'in' && k[4] === 'with' && k[6] === 'from') {
    [sourcePrefix, destType, destStep] = [words[3] ?? '', k[5] ?? '', words[7] ?? ''];
  } else if (k.length === 8 && k[2] === 'with' && k[4] === 'in' && k[6] === 'from') {
    [destType, destPrefix, destStep] = [k[3] ?? '', words[5] ?? '', words[7] ?? ''];
  } else if (k.length === 6 && k[2] === 'with' && k[4] === 'from') {
    [destType, destStep] = [k[3] ?? '', words[5] ?? ''];
  } else {
    throw fail(`is not of the form ${MATCH_GRAMMAR}`);
  }
  if (destType !== 'materials' && destType !== 'products') throw fail('must match WITH MATERIALS or WITH PRODUCTS');
  const problems = [
    prefixOf('pattern', patternProblem(operand)),
    prefixOf('source prefix', prefixProblem(sourcePrefix)),
    prefixOf('destination prefix', prefixProblem(destPrefix)),
    prefixOf('FROM step name', stepNameProblem(destStep)),
  ].filter((p): p is string => p !== undefined);
  if (problems.length > 0) throw fail(`has a ${problems.join('; and a ')}`);
  return freezeRule({ kind: 'MATCH', pattern: operand, sourcePrefix, destType, destPrefix, destStep, text: '' });
}

function prefixOf(what: string, problem: string | undefined): string | undefined {
  return problem === undefined ? undefined : `${what} that ${problem}`;
}

function freezeRule(rule: ArtifactRule): ArtifactRule {
  return Object.freeze({ ...rule, text: ruleText(rule) });
}

/**
 * Parses a rule written as one string, "MATCH foo WITH PRODUCTS FROM a", split as the
 * reference's `add_material_rule_from_string` splits it: POSIX `shlex.split` (whitespace is
 * space, tab, CR, LF; quotes and backslashes as in a POSIX shell; no comments).
 * @throws FormatError E_RULE_SYNTAX when the string does not split (an unclosed quote, a
 *   trailing backslash), is longer than {@link MAX_RULE_STRING_LENGTH}, or as {@link parseRule}.
 */
export function parseRuleString(text: string, where: string): ArtifactRule {
  if (text.length > MAX_RULE_STRING_LENGTH) {
    throw new FormatError('E_RULE_SYNTAX', `${where}: rule string is longer than ${MAX_RULE_STRING_LENGTH} characters`);
  }
  const split = shlexSplit(text);
  if (!split.ok) throw new FormatError('E_RULE_SYNTAX', `${where}: rule ${show(text)}: ${split.problem}`);
  return parseRule(split.tokens, where);
}

/**
 * Parses a whole expected_materials or expected_products list, naming each rule
 * `${where}[i]`. Every bad rule is reported (the first in the message, all in `details`).
 * @throws FormatError E_RULE_SYNTAX when `list` is not an array or any rule does not parse.
 * @throws IoError E_LIMIT when the list has more than {@link MAX_RULES_PER_LIST} rules.
 */
export function parseRuleList(list: unknown, where: string): ArtifactRule[] {
  if (!Array.isArray(list)) throw new FormatError('E_RULE_SYNTAX', `${where}: must be a list of rules`);
  const rules = list as readonly unknown[];
  if (rules.length > MAX_RULES_PER_LIST) {
    throw new IoError('E_LIMIT', `${where}: ${rules.length} rules, more than the cap of ${MAX_RULES_PER_LIST}`);
  }
  const parsed: ArtifactRule[] = [];
  const errors: FormatError[] = [];
  rules.forEach((tokens, i) => {
    try {
      parsed.push(parseRule(tokens, `${where}[${i}]`));
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      errors.push(error);
    }
  });
  const first = errors[0];
  if (first === undefined) return parsed;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more bad rule(s))` : '';
  throw new FormatError('E_RULE_SYNTAX', `${first.message}${more}`, {
    details: errors.map((e) => e.message),
    context: first.context,
  });
}

/** The canonical token form of a rule, for writing layouts (keywords upper-case, '' prefixes omitted). */
export function ruleToTokens(rule: ArtifactRule): string[] {
  switch (rule.kind) {
    case 'MATCH': {
      const tokens = ['MATCH', rule.pattern];
      if (rule.sourcePrefix !== '') tokens.push('IN', rule.sourcePrefix);
      tokens.push('WITH', rule.destType.toUpperCase());
      if (rule.destPrefix !== '') tokens.push('IN', rule.destPrefix);
      tokens.push('FROM', rule.destStep);
      return tokens;
    }
    case 'REQUIRE':
      return ['REQUIRE', rule.path];
    default:
      return [rule.kind, rule.pattern];
  }
}

/**
 * The canonical tokens joined by spaces, for messages and traces ("MATCH *.py WITH PRODUCTS
 * FROM build"). A token is single-quoted, as Python's `shlex.quote` would, only when it is
 * empty or holds whitespace, a quote or a backslash (the only characters `shlex.split` treats
 * specially), so the text parses back with {@link parseRuleString} to the same rule.
 */
export function ruleText(rule: ArtifactRule): string {
  return ruleToTokens(rule).map(shellQuote).join(' ');
}

function shellQuote(token: string): string {
  if (token !== '' && !/[\s'"\\]/.test(token)) return token;
  return `'${token.replace(/'/g, `'"'"'`)}'`;
}

/** The distinct step names the MATCH rules of `rules` read from (FROM <step>), in first-seen order. */
export function matchTargets(rules: readonly ArtifactRule[]): string[] {
  const seen = new Set<string>();
  for (const rule of rules) if (rule.kind === 'MATCH') seen.add(rule.destStep);
  return [...seen];
}

/**
 * Throws unless every MATCH rule reads from a step (or inspection) in `known`. A name in
 * `inspections` gets its own message: a step's rules are checked before any inspection runs,
 * so a step's MATCH against an inspection could never consume anything and would silently
 * fall through to the next rule.
 * @throws FormatError E_RULE_UNKNOWN_STEP naming `where`, the rule and the step.
 */
export function assertMatchTargets(rules: readonly ArtifactRule[], known: ReadonlySet<string>, where: string, inspections: ReadonlySet<string> = new Set()): void {
  for (const rule of rules) {
    if (rule.kind !== 'MATCH' || known.has(rule.destStep)) continue;
    const why = inspections.has(rule.destStep)
      ? `reads from inspection ${show(rule.destStep)}, which runs only after every step's rules are checked: it can never match`
      : `reads from step ${show(rule.destStep)}, which the layout does not define`;
    throw new FormatError('E_RULE_UNKNOWN_STEP', `${where}: rule '${rule.text}' ${why}`, { context: { rule: rule.text, step: rule.destStep } });
  }
}

/**
 * True when the list does not end by refusing everything left over: no `DISALLOW` whose
 * pattern is only `*`s (spec-legal, but then unconsumed artifacts pass: `layout check` warns).
 * A DISALLOW-all that is not last still closes the list, because DISALLOW consumes nothing:
 * if it passes, the queue is already empty for every later rule.
 */
export function lacksFinalDisallowAll(rules: readonly ArtifactRule[]): boolean {
  return !rules.some((rule) => rule.kind === 'DISALLOW' && /^\*+$/.test(rule.pattern));
}

/**
 * Python's `shlex.split(text)` (POSIX mode, `whitespace_split`, no comments), as a result
 * value. Its ValueErrors ("No closing quotation", "No escaped character") become `problem`.
 */
export function shlexSplit(text: string): { ok: true; tokens: string[] } | { ok: false; problem: string } {
  const tokens: string[] = [];
  let token = '';
  let inToken = false; // a token has started, possibly empty ('' is a token)
  let quote: "'" | '"' | undefined;
  // Iterate by code point, as Python reads one character at a time.
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? '';
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else token += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\') {
        const next = chars[++i];
        if (next === undefined) return { ok: false, problem: 'No escaped character' };
        // Inside double quotes only the quote and the backslash itself are escaped.
        token += next === '"' || next === '\\' ? next : c + next;
      } else token += c;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (inToken) tokens.push(token);
      token = '';
      inToken = false;
    } else {
      inToken = true;
      if (c === "'" || c === '"') quote = c;
      else if (c === '\\') {
        const next = chars[++i];
        if (next === undefined) return { ok: false, problem: 'No escaped character' };
        token += next;
      } else token += c;
    }
  }
  if (quote !== undefined) return { ok: false, problem: 'No closing quotation' };
  if (inToken) tokens.push(token);
  return { ok: true, tokens };
}

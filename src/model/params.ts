import { FormatError } from '../errors.js';

/**
 * Parameter substitution into a layout's rules, expected commands and inspection commands
 * (`intoto-verify --param KEY=VALUE`), in the subset of Python's `str.format` the reference
 * uses: `{NAME}` is replaced by the value, `{{` and `}}` stand for literal braces. Values are
 * literal text: they are never substituted again and never split.
 *
 * Stricter than the reference: a `{NAME}` left without a value, or any other use of braces
 * (`{0}`, `{a.b}`, `{a:>3}`, a lone brace), is an error, so a parameterised rule such as
 * `DISALLOW {FORBIDDEN}` can never silently turn into a rule that matches nothing.
 */

export const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `KEY=VALUE` strings. @throws FormatError E_PARAM */
export function parseParams(assignments: readonly string[]): ReadonlyMap<string, string> {
  const params = new Map<string, string>();
  for (const assignment of assignments) {
    const eq = assignment.indexOf('=');
    const name = eq === -1 ? assignment : assignment.slice(0, eq);
    if (eq === -1 || !PARAM_NAME.test(name)) {
      throw new FormatError('E_PARAM', `--param ${JSON.stringify(assignment)}: expected NAME=VALUE with NAME made of letters, digits and _`);
    }
    if (params.has(name)) throw new FormatError('E_PARAM', `--param ${name} given twice`);
    params.set(name, assignment.slice(eq + 1));
  }
  return params;
}

/**
 * Substitutes parameters in one string.
 * @throws FormatError E_PARAM naming `where`, for a missing value or a malformed brace
 */
export function substituteParams(text: string, params: ReadonlyMap<string, string>, where: string): string {
  if (!text.includes('{') && !text.includes('}')) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '{' && text[i + 1] === '{') {
      out += '{';
      i += 2;
    } else if (c === '}' && text[i + 1] === '}') {
      out += '}';
      i += 2;
    } else if (c === '{') {
      const end = text.indexOf('}', i);
      const name = end === -1 ? '' : text.slice(i + 1, end);
      if (!PARAM_NAME.test(name)) {
        throw new FormatError('E_PARAM', `${where}: malformed parameter reference in ${JSON.stringify(text)} (use {NAME}, or {{ and }} for braces)`);
      }
      const value = params.get(name);
      if (value === undefined) {
        throw new FormatError('E_PARAM', `${where}: parameter {${name}} has no value; pass --param ${name}=VALUE`);
      }
      out += value;
      i = end + 1;
    } else if (c === '}') {
      throw new FormatError('E_PARAM', `${where}: lone '}' in ${JSON.stringify(text)} (write }} for a literal brace)`);
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

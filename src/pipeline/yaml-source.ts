import { Composer, isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, Parser, type CST, type Document, type Node } from 'yaml';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { LIMITS, readRegularFileSync } from '../io/files.js';
import { diagnostic, MAX_DIAGNOSTICS, type Diagnostic, type DiagnosticId, type Position } from './diagnostics.js';
import { syntaxMessage } from './yaml-messages.js';

/**
 * Reads a YAML layout source safely (THREATS.md, "Parsers"), into plain JSON values plus the
 * place of every value, so later checks can say `line:column`:
 * - no implicit typing: the failsafe schema makes every scalar a string, so an unquoted date
 *   stays the text the author wrote and a hex keyid never becomes a number; the few numbers
 *   the format has (a threshold) are parsed by us, strictly;
 * - refused: anchors and aliases (alias bombs), explicit tags (`!!python/object`, `!foo`),
 *   merge keys (`<<`), duplicate keys, keys that are not plain scalars, several documents;
 * - bounded: the file size, the flow nesting depth and the number of values (both checked
 *   on yaml's own lexer tokens before the recursive composer ever sees the text), the overall
 *   depth, and the number of errors: reading stops at the first {@link MAX_DIAGNOSTICS}.
 * Maps become null-prototype objects, so a key such as `__proto__` is just a key.
 */

/** Flow collections (`[`, `{`) nested deeper than this are refused before composing. */
export const MAX_FLOW_DEPTH = 32;
/** Maps and lists nested deeper than this are refused (a layout needs five levels). */
export const MAX_DEPTH = 32;
/** At most this many nodes (scalars, maps, lists) per document. */
export const MAX_NODES = 200_000;

/** A YAML document read into JSON values, with a way back to each value's place. */
export interface SourceTree {
  readonly value: JsonValue;
  /**
   * Where the value (or, with `key`, the map key) at a JSON pointer starts; for a pointer
   * that names nothing, the nearest enclosing value that exists.
   */
  positionOf(pointer: string, part?: 'key' | 'value'): Position | undefined;
}

export type YamlReadResult =
  | { readonly ok: true; readonly tree: SourceTree; readonly diagnostics: readonly Diagnostic[] }
  | {
      readonly ok: false;
      readonly diagnostics: readonly Diagnostic[];
      /** True when reading stopped before the end of the file (too many errors, or a limit): more problems may follow. */
      readonly stoppedEarly: boolean;
    };

type Token = CST.Token;

/** Escapes one JSON pointer segment (RFC 6901), as ajv writes instance paths. */
export function pointerSegment(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Reads a YAML file (a regular file of at most {@link LIMITS.yamlBytes}).
 * @throws IoError E_IO, E_NOT_REGULAR_FILE, E_FILE_TOO_LARGE; everything about the content is
 *   returned as diagnostics instead
 */
export function readYamlFile(path: string): YamlReadResult {
  const bytes = readRegularFileSync(path, { maxBytes: LIMITS.yamlBytes, what: 'layout source' });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return failed([error('yaml-syntax', 'the file is not valid UTF-8')], false);
  }
  return readYamlText(text);
}

/** Reads YAML text; never throws for any content, and stops early on hopeless input. */
export function readYamlText(text: string): YamlReadResult {
  const lines = new LineCounter();
  const at = (offset: number | undefined): Position | undefined => {
    if (offset === undefined) return undefined;
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const scanned = scanTokens(text, lines);
  if (!scanned.ok) {
    return failed(scanned.problems.map((p) => error(p.id, p.message, { offset: p.offset, at })), scanned.stoppedEarly);
  }
  const composed = composeDocument(scanned.tokens, text.length, at);
  if (!composed.ok) return failed(composed.problems, composed.stoppedEarly);
  const { document } = composed;

  const values = new Map<string, number>();
  const keys = new Map<string, number>();
  const walker = new Walker(values, keys, at);
  const value = document.contents === null ? null : walker.convert(document.contents, '', 0);
  if (walker.problems.length > 0) return failed(walker.problems, walker.stoppedEarly);

  const positionOf = (pointer: string, part: 'key' | 'value' = 'value'): Position | undefined => {
    let p = pointer;
    for (;;) {
      const offset = (part === 'key' ? keys.get(p) : undefined) ?? values.get(p);
      if (offset !== undefined) return at(offset);
      if (p === '') return undefined;
      p = p.slice(0, p.lastIndexOf('/'));
    }
  };
  return { ok: true, tree: { value, positionOf }, diagnostics: [] };
}

interface RawProblem {
  readonly id: DiagnosticId;
  readonly message: string;
  readonly offset: number;
}

type Scanned = { readonly ok: true; readonly tokens: readonly Token[] } | { readonly ok: false; readonly problems: readonly RawProblem[]; readonly stoppedEarly: boolean };

/**
 * One pass of yaml's lexer and parser (both iterative, so deep input cannot overflow the
 * stack) over the text, before the recursive composer sees anything. It refuses flow nesting
 * past {@link MAX_FLOW_DEPTH} and more scalars than {@link MAX_NODES} as soon as it meets
 * them, and collects the parser's syntax errors, stopping at {@link MAX_DIAGNOSTICS}: a
 * 4 MiB file of broken lines is not read to its end to list a million errors (each of which
 * the library would have made an Error object with a stack trace).
 */
function scanTokens(text: string, lines: LineCounter): Scanned {
  const parser = new Parser(lines.addNewLine);
  lines.addNewLine(0);
  const tokens: Token[] = [];
  const problems: RawProblem[] = [];
  let depth = 0;
  let offset = 0;
  let scalars = 0;
  const take = (produced: Iterable<Token>): boolean => {
    for (const token of produced) {
      if (token.type !== 'error') {
        tokens.push(token);
        continue;
      }
      problems.push({ id: 'yaml-syntax', message: syntaxMessage(token.message, token.source), offset: token.offset });
      if (problems.length >= MAX_DIAGNOSTICS) return false;
    }
    return true;
  };
  for (const lexeme of new Lexer().lex(text)) {
    if (lexeme === '[' || lexeme === '{') {
      if (++depth > MAX_FLOW_DEPTH) {
        return { ok: false, problems: [...problems, { id: 'yaml-limit', message: `flow collections ([ or {) nested more than ${MAX_FLOW_DEPTH} deep`, offset }], stoppedEarly: false };
      }
    } else if (lexeme === ']' || lexeme === '}') {
      depth = Math.max(0, depth - 1);
    } else if (lexeme === SCALAR_TOKEN && ++scalars > MAX_NODES) {
      return { ok: false, problems: [...problems, { id: 'yaml-limit', message: `more than ${MAX_NODES} values in the document`, offset }], stoppedEarly: false };
    }
    // The lexer also yields one-character control tokens that are not in the text.
    if (!CONTROL_TOKEN.test(lexeme)) offset += lexeme.length;
    if (!take(parser.next(lexeme))) return { ok: false, problems, stoppedEarly: true };
  }
  if (!take(parser.end())) return { ok: false, problems, stoppedEarly: true };
  return problems.length > 0 ? { ok: false, problems, stoppedEarly: false } : { ok: true, tokens };
}

type Composed =
  | { readonly ok: true; readonly document: Document.Parsed }
  | { readonly ok: false; readonly problems: readonly Diagnostic[]; readonly stoppedEarly: boolean };

/** Thrown from the composer's error callback to stop it once the cap is reached. */
class StopComposing {}

/**
 * Composes the parsed tokens into one document with yaml's composer (failsafe schema, unique
 * keys, no merge keys), taking its errors through our own callback so that they are counted
 * as they come and the composer is stopped at the cap. A second document is an error.
 */
function composeDocument(tokens: readonly Token[], length: number, at: (offset: number | undefined) => Position | undefined): Composed {
  // uniqueKeys is off on purpose: yaml compares each new key with every earlier one of its
  // mapping (95,000 keys took 100 s); the walker finds duplicates with a set instead.
  const composer = new Composer({ schema: 'failsafe', uniqueKeys: false, merge: false, strict: true, prettyErrors: false, keepSourceTokens: false });
  const problems: Diagnostic[] = [];
  let stoppedEarly = false;
  // The callback is the composer's own (a private field in its types): every problem it finds
  // inside a document goes through it, so replacing it sees them all.
  (composer as unknown as { onError: ComposerErrorCallback }).onError = (source, code, message) => {
    // An unknown tag is reported by the walker, with every other tag, in our words.
    if (code === 'TAG_RESOLVE_FAILED') return;
    problems.push(error('yaml-syntax', syntaxMessage(message, undefined), { offset: errorOffset(source), at }));
    if (problems.length >= MAX_DIAGNOSTICS) {
      stoppedEarly = true;
      throw new StopComposing();
    }
  };
  const documents: Document.Parsed[] = [];
  try {
    for (const token of tokens) for (const document of composer.next(token)) documents.push(document);
    for (const document of composer.end(true, length)) documents.push(document);
  } catch (thrown) {
    if (thrown instanceof StopComposing) return { ok: false, problems, stoppedEarly };
    // The library is not expected to throw; if it does (a stack overflow on some input it
    // recurses over), the input is refused rather than the process brought down.
    return { ok: false, problems: [...problems, error('yaml-limit', `the YAML could not be read: ${thrown instanceof Error ? thrown.message : String(thrown)}`)], stoppedEarly: true };
  }
  const second = documents[1];
  if (second !== undefined) {
    problems.push(
      error('yaml-multiple-documents', 'a second YAML document starts here (a line "---" or "..." ends the first): a layout source is one document', {
        offset: second.range[0],
        at,
      }),
    );
  }
  const document = documents[0];
  if (problems.length > 0 || document === undefined) return { ok: false, problems, stoppedEarly };
  return { ok: true, document };
}

type ComposerErrorCallback = (source: number | readonly [number, number] | { offset: number }, code: string, message: string, warning?: boolean) => void;

function errorOffset(source: number | readonly [number, number] | { offset: number }): number {
  if (typeof source === 'number') return source;
  if (Array.isArray(source)) return source[0] as number;
  return (source as { offset: number }).offset;
}

function failed(diagnostics: readonly Diagnostic[], stoppedEarly: boolean): YamlReadResult {
  return { ok: false, diagnostics, stoppedEarly };
}

function error(
  id: DiagnosticId,
  message: string,
  where: { offset?: number | undefined; at?: (offset: number | undefined) => Position | undefined } = {},
): Diagnostic {
  return diagnostic('error', id, 'E_LAYOUT_SOURCE', message, { position: where.at?.(where.offset) });
}

const CONTROL_TOKEN = /^[\u0002\u0018\u001f]$/;
const SCALAR_TOKEN = '\u001f';

/** Turns yaml nodes into JSON values, refusing what a layout source must not contain. */
class Walker {
  readonly problems: Diagnostic[] = [];
  /** Set once problems past the cap were dropped. */
  stoppedEarly = false;
  private nodes = 0;

  constructor(
    private readonly values: Map<string, number>,
    private readonly keys: Map<string, number>,
    private readonly at: (offset: number | undefined) => Position | undefined,
  ) {}

  private refuse(id: DiagnosticId, message: string, offset: number | undefined): null {
    // One problem per kind and place is enough; a bomb of aliases must not make a bomb of lines.
    if (this.problems.length < MAX_DIAGNOSTICS) this.problems.push(error(id, message, { offset, at: this.at }));
    else this.stoppedEarly = true;
    return null;
  }

  convert(node: unknown, pointer: string, depth: number): JsonValue {
    const start = rangeStart(node);
    if (++this.nodes > MAX_NODES) return this.refuse('yaml-limit', `more than ${MAX_NODES} values in the document`, start);
    if (depth > MAX_DEPTH) return this.refuse('yaml-limit', `values nested more than ${MAX_DEPTH} deep`, start);
    if (isAlias(node)) return this.refuse('yaml-alias', `alias *${node.source} refused: anchors and aliases are not allowed (they can expand without bound)`, start);
    if (!isNodeLike(node)) return this.refuse('yaml-syntax', 'an empty or unreadable value', start);
    if (node.anchor !== undefined) this.refuse('yaml-alias', `anchor &${node.anchor} refused: anchors and aliases are not allowed`, start);
    if (node.tag !== undefined) this.refuse('yaml-tag', `tag ${node.tag} refused: explicit tags are not allowed (every value is plain text)`, start);
    if (start !== undefined) this.values.set(pointer, start);

    if (isScalar(node)) return node.value === null || node.value === undefined ? '' : String(node.value);
    if (isSeq(node)) return node.items.map((item, i) => this.convert(item, `${pointer}/${i}`, depth + 1));
    if (isMap(node)) {
      const object = Object.create(null) as Record<string, JsonValue>;
      for (const pair of node.items) {
        const keyNode: unknown = pair.key;
        const keyStart = rangeStart(keyNode);
        if (!isScalar(keyNode) || keyNode.anchor !== undefined || keyNode.tag !== undefined || isAlias(keyNode)) {
          this.refuse('yaml-complex-key', 'a mapping key must be plain text (no lists, maps, anchors, aliases or tags as keys)', keyStart ?? start);
          continue;
        }
        const key = keyNode.value === null || keyNode.value === undefined ? '' : String(keyNode.value);
        if (key === '<<') {
          this.refuse('yaml-merge-key', 'merge keys (<<) are not allowed: write each field out', keyStart);
          continue;
        }
        if (Object.hasOwn(object, key)) {
          this.refuse('yaml-duplicate-key', `the key ${JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}...` : key)} appears twice in one mapping (only one value could win)`, keyStart);
          continue;
        }
        const child = `${pointer}/${pointerSegment(key)}`;
        if (keyStart !== undefined) this.keys.set(child, keyStart);
        // `key:` with nothing after it is an empty string in the failsafe schema.
        object[key] = pair.value === null ? '' : this.convert(pair.value, child, depth + 1);
        if (pair.value === null && keyStart !== undefined) this.values.set(child, keyStart);
      }
      return object as JsonObject;
    }
    return this.refuse('yaml-syntax', 'an unsupported kind of YAML value', start);
  }
}

function isNodeLike(node: unknown): node is Node {
  return isScalar(node) || isSeq(node) || isMap(node);
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: readonly number[] | null } | null | undefined)?.range;
  return Array.isArray(range) && typeof range[0] === 'number' ? range[0] : undefined;
}

import { isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, parseDocument, type Node } from 'yaml';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { LIMITS, readRegularFileSync } from '../io/files.js';
import { diagnostic, type Diagnostic, type DiagnosticId, type Position } from './diagnostics.js';

/**
 * Reads a YAML layout source safely (THREATS.md, "Parsers"), into plain JSON values plus the
 * place of every value, so later checks can say `line:column`:
 * - no implicit typing: the failsafe schema makes every scalar a string, so an unquoted date
 *   stays the text the author wrote and a hex keyid never becomes a number; the few numbers
 *   the format has (a threshold) are parsed by us, strictly;
 * - refused: anchors and aliases (alias bombs), explicit tags (`!!python/object`, `!foo`),
 *   merge keys (`<<`), duplicate keys, keys that are not plain scalars, several documents;
 * - bounded: the file size, the flow nesting depth (checked with yaml's own lexer before the
 *   recursive composer ever sees the text), the overall depth and the number of nodes.
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
  | { readonly ok: false; readonly diagnostics: readonly Diagnostic[] };

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
    return failed([error('yaml-syntax', 'the file is not valid UTF-8')]);
  }
  return readYamlText(text);
}

/** Reads YAML text; never throws for any content. */
export function readYamlText(text: string): YamlReadResult {
  const lines = new LineCounter();
  const at = (offset: number | undefined): Position | undefined => {
    if (offset === undefined) return undefined;
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const flow = flowDepthProblem(text);
  if (flow !== undefined) {
    // The line counter is only filled while composing, which did not happen: count here.
    const before = text.slice(0, flow.offset);
    const position = { line: before.split('\n').length, column: flow.offset - before.lastIndexOf('\n') };
    return failed([diagnostic('error', 'yaml-limit', 'E_LAYOUT_SOURCE', flow.message, { position })]);
  }

  let document;
  try {
    document = parseDocument(text, {
      schema: 'failsafe',
      uniqueKeys: true,
      merge: false,
      strict: true,
      prettyErrors: false,
      lineCounter: lines,
      keepSourceTokens: false,
    });
  } catch (cause) {
    // The library is not expected to throw; if it does (a stack overflow on some input it
    // recurses over), the input is refused rather than the process brought down.
    return failed([error('yaml-limit', `the YAML parser gave up: ${cause instanceof Error ? cause.message : String(cause)}`)]);
  }
  const problems: Diagnostic[] = [];
  for (const e of [...document.errors, ...document.warnings]) {
    const id: DiagnosticId =
      e.code === 'DUPLICATE_KEY' ? 'yaml-duplicate-key' : e.code === 'MULTIPLE_DOCS' ? 'yaml-multiple-documents' : e.code === 'TAG_RESOLVE_FAILED' ? 'yaml-tag' : 'yaml-syntax';
    const message = id === 'yaml-duplicate-key' ? 'a key appears twice in one mapping (only one value could win)' : firstLine(e.message);
    problems.push(error(id, message, { offset: e.pos[0], at }));
  }
  if (problems.length > 0) return failed(problems);

  const values = new Map<string, number>();
  const keys = new Map<string, number>();
  const walker = new Walker(values, keys, at);
  const value = document.contents === null ? null : walker.convert(document.contents, '', 0);
  if (walker.problems.length > 0) return failed(walker.problems);

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

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? text).replace(/ at line \d+, column \d+.*$/, '');
}

function failed(diagnostics: Diagnostic[]): YamlReadResult {
  return { ok: false, diagnostics };
}

function error(
  id: DiagnosticId,
  message: string,
  where: { offset?: number | undefined; at?: (offset: number | undefined) => Position | undefined } = {},
): Diagnostic {
  return diagnostic('error', id, 'E_LAYOUT_SOURCE', message, { position: where.at?.(where.offset) });
}

/**
 * The deepest flow nesting, from yaml's own lexer (so brackets inside quoted or plain
 * scalars are not counted), stopping at the first level past the cap.
 */
function flowDepthProblem(text: string): { message: string; offset: number } | undefined {
  let depth = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      depth++;
      if (depth > MAX_FLOW_DEPTH) {
        return { message: `flow collections ([ or {) nested more than ${MAX_FLOW_DEPTH} deep`, offset };
      }
    } else if (token === ']' || token === '}') {
      depth = Math.max(0, depth - 1);
    }
    // The lexer also yields one-character control tokens that are not in the text.
    if (!CONTROL_TOKEN.test(token)) offset += token.length;
  }
  return undefined;
}

const CONTROL_TOKEN = /^[\u0002\u0018\u001f]$/;

/** Turns yaml nodes into JSON values, refusing what a layout source must not contain. */
class Walker {
  readonly problems: Diagnostic[] = [];
  private nodes = 0;

  constructor(
    private readonly values: Map<string, number>,
    private readonly keys: Map<string, number>,
    private readonly at: (offset: number | undefined) => Position | undefined,
  ) {}

  private refuse(id: DiagnosticId, message: string, offset: number | undefined): null {
    // One problem per kind and place is enough; a bomb of aliases must not make a bomb of lines.
    if (this.problems.length < 100) this.problems.push(error(id, message, { offset, at: this.at }));
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

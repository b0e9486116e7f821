/**
 * The YAML library's syntax messages in the words of a YAML author: one line, without the
 * library's internal token names or its API (issue 18, item 7).
 */

/** yaml's token names, as the characters a YAML author typed. */
const TOKEN_WORDS: Readonly<Record<string, string>> = {
  'flow-seq-start': '"["',
  'flow-seq-end': '"]"',
  'flow-map-start': '"{"',
  'flow-map-end': '"}"',
  'flow-error-end': 'a closing bracket',
  'seq-item-ind': '"-"',
  'map-value-ind': '":"',
  'explicit-key-ind': '"?"',
  'doc-start': '"---"',
  'doc-end': '"..."',
  'doc-mode': 'a document marker',
  'block-scalar-header': 'a "|" or ">" block header',
  'directive-line': 'a % directive',
  comma: '","',
  anchor: 'an anchor (&)',
  tag: 'a tag (!)',
  alias: 'an alias (*)',
  scalar: 'a value',
  'block-map': 'a mapping',
  'block-seq': 'a list',
  'flow-collection': 'a [ ] or { } collection',
};

/**
 * A parser message in the words of a YAML author: one line, without yaml's internal token
 * names ("Unexpected flow-seq-end token in YAML stream" becomes 'unexpected "]"').
 */
export function syntaxMessage(message: string, source: string | undefined): string {
  let text = firstLine(message);
  const unexpected = /^Unexpected ([a-z-]+) token in YAML stream(?:: .*)?$/.exec(text);
  if (unexpected !== null) {
    const word = TOKEN_WORDS[unexpected[1] ?? ''] ?? unexpected[1] ?? 'text';
    return `unexpected ${word} here`;
  }
  text = text.replace(/\b(flow-seq-start|flow-seq-end|flow-map-start|flow-map-end|flow-error-end|seq-item-ind|map-value-ind|explicit-key-ind|doc-start|doc-end|block-scalar-header|block-map|block-seq|flow-collection)\b/g, (name) => TOKEN_WORDS[name] ?? name);
  const shown = source !== undefined && source.trim() !== '' && !text.includes(source) ? `: ${JSON.stringify(source.length > 40 ? `${source.slice(0, 40)}...` : source)}` : '';
  return `${text.charAt(0).toLowerCase()}${text.slice(1)}${shown}`;
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? text).replace(/ at line \d+, column \d+.*$/, '');
}

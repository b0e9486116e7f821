import type { ByteSource } from './source.js';

/**
 * Files a model directory holds beside the model that no loader executes: JSON
 * (config.json, tokenizer.json), UTF-8 text (README.md, vocab.txt, merges.txt, CSV, YAML such
 * as MLflow's MLmodel), PNG and JPEG images. Recognised by content so that a whole Hugging
 * Face or MLflow directory scans clean, and so that nothing else hides behind their names.
 */

const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isPng(head: Uint8Array): boolean {
  // The signature, then an IHDR chunk of 13 bytes.
  return PNG.every((b, i) => head[i] === b) && head[11] === 13 && head[12] === 0x49 && head[13] === 0x48 && head[14] === 0x44 && head[15] === 0x52;
}

export function isJpeg(head: Uint8Array): boolean {
  return head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
}

const CHUNK = 4 * 1024 * 1024;

/**
 * 'json' or 'text' when the whole source is UTF-8 text (no NUL or other control characters
 * but tab, newline, carriage return and form feed; a leading BOM allowed), else undefined.
 * Reads the source in chunks, up to `max` bytes.
 */
export function textKind(source: ByteSource, max: number): 'json' | 'text' | undefined {
  if (source.size > max) return undefined;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let first = '';
  let whole = '';
  const keepWhole = source.size <= 64 * 1024 * 1024;
  for (let at = 0; at < source.size; at += CHUNK) {
    const bytes = source.read(at, CHUNK);
    for (const b of bytes) {
      if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c) return undefined;
      if (b === 0x7f) return undefined;
    }
    let chunk: string;
    try {
      chunk = decoder.decode(bytes, { stream: at + CHUNK < source.size });
    } catch {
      return undefined;
    }
    if (first === '') first = chunk.trimStart().slice(0, 1);
    if (keepWhole) whole += chunk;
  }
  if ((first === '{' || first === '[') && keepWhole) {
    try {
      JSON.parse(whole);
      return 'json';
    } catch {
      return 'text';
    }
  }
  return 'text';
}

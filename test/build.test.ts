import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The commands ship as one-file bundles (scripts/build.mjs): loading about 40 ES modules one by
 * one cost intoto-run 50 to 80 ms of every start. These checks keep the build honest: a command
 * that imports one of our modules or a package at run time is no longer one file.
 */
const BIN = new URL('../dist/bin/', import.meta.url).pathname;
const COMMANDS = readdirSync(BIN).filter((file) => file.endsWith('.js') && file !== 'hash-worker.js');

/** Every module specifier a bundle imports, statically or dynamically. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/^\s*import\s[^;]*?\sfrom\s*["']([^"']+)["']/gm)) found.push(match[1]!);
  for (const match of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(match[1]!);
  return found;
}

describe('built commands', () => {
  it('are all there, with the hashing worker beside them', () => {
    expect(COMMANDS.sort()).toEqual([
      'intoto-keygen.js',
      'intoto-match-products.js',
      'intoto-mock.js',
      'intoto-record.js',
      'intoto-run.js',
      'intoto-sign.js',
      'intoto-verify.js',
      'intoto.js',
    ]);
    expect(readdirSync(BIN)).toContain('hash-worker.js');
  });

  it.each(COMMANDS.concat('hash-worker.js'))('%s imports nothing but Node built-ins', (file) => {
    const text = readFileSync(join(BIN, file), 'utf8');
    const imported = specifiers(text);
    expect(imported.length).toBeGreaterThan(0); // the pattern does find imports
    expect(imported.filter((specifier) => !specifier.startsWith('node:'))).toEqual([]);
  });

  it.each(COMMANDS)('%s starts with its shebang', (file) => {
    expect(readFileSync(join(BIN, file), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('finds a relative import when there is one (the check can fail)', () => {
    expect(specifiers('import { a } from "../cli/main.js";\nconst m = await import("./run.js");')).toEqual([
      '../cli/main.js',
      './run.js',
    ]);
  });
});

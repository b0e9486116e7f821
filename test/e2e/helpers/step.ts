import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runBin } from '../../helpers/bin.js';

/** Helpers for the step tools' end-to-end tests (intoto-run, -record, -mock, -match-products). */

export interface LinkFile {
  readonly signatures: readonly { keyid: string; sig: string }[];
  readonly signed: {
    readonly name: string;
    readonly command: readonly string[];
    readonly materials: Record<string, Record<string, string>>;
    readonly products: Record<string, Record<string, string>>;
    readonly byproducts: Record<string, unknown>;
    readonly environment: Record<string, unknown>;
  };
}

/** An ed25519 key pair made by our intoto-keygen (the reference reads it too): returns the private key path. */
export function makeKey(dir: string, name = 'key'): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  const result = runBin('intoto-keygen', ['-t', 'ed25519', path]);
  expect(result.status, result.stderr).toBe(0);
  return path;
}

/** The Metablock link in `dir` whose name starts with `step.` (exactly one must exist). */
export function linkIn(dir: string, step: string): { path: string; link: LinkFile } {
  const files = readdirSync(dir).filter((f) => f.startsWith(`${step}.`) && f.endsWith('.link'));
  expect(files, `links for ${step} in ${dir}`).toHaveLength(1);
  const path = join(dir, files[0]!);
  return { path, link: JSON.parse(readFileSync(path, 'utf8')) as LinkFile };
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A minimal environment for our binaries plus `extra` (nothing else from the test's environment). */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root', LANG: 'C.UTF-8', ...extra };
}

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { linkJson } from '../../src/bench/verify-chain.js';
import type { JsonObject, JsonValue } from '../../src/canonical/json.js';
import { generateSigningKey } from '../../src/crypto/keyfiles.js';
import { publicKeyToObject } from '../../src/crypto/keys.js';
import type { SigningKey } from '../../src/crypto/signatures.js';
import { dsseText, metablockText } from '../../src/model/envelope.js';
import { linkFileName } from '../../src/model/link.js';
import { verifySupplyChain, type VerifyOptions, type VerifyReport } from '../../src/verify/verify.js';

/**
 * Signed supply chains built in memory and written to a temporary directory, for the verifier
 * tests: keys made by our generator (ed25519, fast), links and layouts written as the reference
 * writes them (Metablock, or DSSE on request).
 */

export const sha = (content: string): string => createHash('sha256').update(content).digest('hex');

/** name -> content, as a link's materials or products. */
export function arts(entries: Record<string, string>): JsonObject {
  const object: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
  for (const [name, content] of Object.entries(entries)) object[name] = { sha256: sha(content) };
  return object;
}

export { linkJson };

export interface StepSpec {
  readonly name: string;
  readonly keys: readonly SigningKey[];
  readonly threshold?: number;
  readonly materials?: readonly (readonly string[])[];
  readonly products?: readonly (readonly string[])[];
  readonly command?: readonly string[];
}

export interface InspectionSpec {
  readonly name: string;
  readonly run: readonly string[];
  readonly materials?: readonly (readonly string[])[];
  readonly products?: readonly (readonly string[])[];
}

export function layoutJson(steps: readonly StepSpec[], inspections: readonly InspectionSpec[] = [], expires = '2099-01-01T00:00:00Z'): JsonObject {
  const keys: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
  for (const s of steps) for (const k of s.keys) keys[k.keyid] = publicKeyToObject(k.public);
  return {
    _type: 'layout',
    expires,
    inspect: inspections.map((i) => ({
      _type: 'inspection',
      expected_materials: (i.materials ?? []).map((r) => [...r]),
      expected_products: (i.products ?? []).map((r) => [...r]),
      name: i.name,
      run: [...i.run],
    })),
    keys,
    readme: 'test layout',
    steps: steps.map((s) => ({
      _type: 'step',
      expected_command: [...(s.command ?? [s.name])],
      expected_materials: (s.materials ?? []).map((r) => [...r]),
      expected_products: (s.products ?? []).map((r) => [...r]),
      name: s.name,
      pubkeys: s.keys.map((k) => k.keyid),
      threshold: s.threshold ?? 1,
    })),
  };
}

const keyCache: SigningKey[] = [];
/** The i-th test key (ed25519, made once per test file). */
export function key(i: number): SigningKey {
  while (keyCache.length <= i) keyCache.push(generateSigningKey({ type: 'ed25519' }));
  return keyCache[i] as SigningKey;
}

const made: string[] = [];
// Registered when a test file imports this module (hooks cannot be added from inside a test).
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory with a `links` subdirectory, removed after the test file. */
export function workDir(): { dir: string; linkDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'intoto-verify-test-'));
  made.push(dir);
  const linkDir = join(dir, 'links');
  mkdirSync(linkDir);
  return { dir, linkDir };
}

export function writeSigned(path: string, signed: JsonValue, keys: readonly SigningKey[], envelope: 'metablock' | 'dsse' = 'metablock'): void {
  writeFileSync(path, envelope === 'dsse' ? dsseText(signed, keys) : metablockText(signed, keys));
}

export function writeLink(linkDir: string, link: JsonObject, signer: SigningKey, options: { step?: string; envelope?: 'metablock' | 'dsse' } = {}): string {
  const path = join(linkDir, linkFileName(options.step ?? (link['name'] as string), signer.keyid));
  writeSigned(path, link, [signer], options.envelope);
  return path;
}

/** The standard two-step chain: train (alice) creates model.pkl from data.csv; evaluate (bob) matches it. */
export function trainEvaluate(): { steps: StepSpec[]; links: { train: JsonObject; evaluate: JsonObject } } {
  const alice = key(1);
  const bob = key(2);
  return {
    steps: [
      { name: 'train', keys: [alice], materials: [['ALLOW', 'data.csv'], ['DISALLOW', '*']], products: [['CREATE', 'model.pkl'], ['DISALLOW', '*']] },
      {
        name: 'evaluate',
        keys: [bob],
        materials: [['MATCH', 'model.pkl', 'WITH', 'PRODUCTS', 'FROM', 'train'], ['DISALLOW', '*']],
        products: [['CREATE', 'report.txt'], ['DISALLOW', '*']],
      },
    ],
    links: {
      train: linkJson('train', arts({ 'data.csv': 'data' }), arts({ 'model.pkl': 'model' })),
      evaluate: linkJson('evaluate', arts({ 'model.pkl': 'model' }), arts({ 'report.txt': 'ok' })),
    },
  };
}

/** Writes the standard chain (layout signed by key(0)) into a fresh directory. */
export function standardChain(): { dir: string; linkDir: string; layoutPath: string } {
  const { dir, linkDir } = workDir();
  const { steps, links } = trainEvaluate();
  const layoutPath = join(dir, 'root.layout');
  writeSigned(layoutPath, layoutJson(steps), [key(0)]);
  writeLink(linkDir, links.train, key(1));
  writeLink(linkDir, links.evaluate, key(2));
  return { dir, linkDir, layoutPath };
}

/** verifySupplyChain with test defaults: owner key(0), no sandbox, fixed clock. */
export function verify(options: Partial<VerifyOptions> & { layoutPath: string; linkDir: string }): Promise<VerifyReport> {
  return verifySupplyChain({
    layoutKeys: [key(0).public],
    sandbox: 'none',
    now: new Date('2030-01-01T00:00:00Z'),
    ...options,
  });
}

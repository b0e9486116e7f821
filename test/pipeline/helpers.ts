import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKey, writeKeyPair } from '../../src/crypto/keyfiles.js';
import type { SigningKey } from '../../src/crypto/signatures.js';
import { ROOT } from '../helpers/bin.js';

/**
 * A project directory for YAML layout tests: keys/<name>{,.pub} and src/hello.txt. Keys are
 * ed25519, except the names in `ecdsa` (P-256, as `intoto keygen -t ecdsa` makes them: the
 * example's `platform`, which signs models).
 */
export function makeProject(dir: string, names: readonly string[], ecdsa: readonly string[] = ['platform']): Map<string, SigningKey> {
  mkdirSync(join(dir, 'keys'), { recursive: true });
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'src', 'hello.txt'), 'hello\n');
  const keys = new Map<string, SigningKey>();
  for (const name of names) {
    const key = generateSigningKey({ type: ecdsa.includes(name) ? 'ecdsa' : 'ed25519' });
    writeKeyPair(key, join(dir, 'keys', name));
    keys.set(name, key);
  }
  return keys;
}

/** 2026-11-22T00:00:00Z: tests never read the clock. */
export const NOW = Date.UTC(2026, 10, 22);

/** A good two-step layout (build a tarball, compress it); cases edit it line by line. */
export const BASE_YAML = `expires: "2027-01-01T00:00:00Z"
readme: a test pipeline
functionaries:
  alice: keys/alice.pub
  bob: keys/bob.pub
inputs:
  src/hello.txt: src/hello.txt
steps:
  - name: build
    functionaries: [alice]
    run: [tar, -cf, app.tar, src]
    materials: ["ALLOW src/*", "DISALLOW *"]
    products: ["CREATE app.tar", "MATCH src/* WITH MATERIALS FROM build", "DISALLOW *"]
  - name: package
    functionaries: [bob]
    run: gzip -n app.tar
    materials: ["MATCH app.tar WITH PRODUCTS FROM build", "DISALLOW *"]
    products: ["CREATE app.tar.gz", "DISALLOW *"]
`;

/** Replaces one exact piece of the base text; throws when it is not there (a broken case). */
export function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`test case edits text that is not there: ${from}`);
  return text.replace(from, to);
}

/**
 * An environment with `intoto` on PATH, for inspections such as `intoto scan-pickle`. The
 * command runs inside the sandbox, which hides /tmp, so the link lives under the repository
 * (build/ is not committed), never in a temporary directory.
 */
export function intotoOnPath(): NodeJS.ProcessEnv {
  const dir = join(ROOT, 'build', 'test-bin');
  mkdirSync(dir, { recursive: true });
  const link = join(dir, 'intoto');
  if (!existsSync(link)) {
    // Several test files may race here: make the link under a private name, then rename.
    const temp = `${link}.${process.pid}.${Math.random().toString(16).slice(2)}`;
    symlinkSync(join(ROOT, 'dist', 'bin', 'intoto.js'), temp);
    renameSync(temp, link);
  }
  return { PATH: `${dir}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: process.env['HOME'] ?? '/root', LANG: 'C.UTF-8', CI: process.env['CI'] ?? '' };
}

/**
 * The base layout with a built-in model-sign step (platform signs app.tar.gz; platform's key
 * is ECDSA) and a model-verify inspection; cases edit it line by line. Line numbers:
 * 6 platform's key, 20 the sign step, 21 its functionaries, 22 uses, 23 model, 24 materials,
 * 25 products, 27 the inspection, 28 uses, 29 model, 30 signer.
 */
export const SIGN_YAML = edit(BASE_YAML, '  bob: keys/bob.pub\n', '  bob: keys/bob.pub\n  platform: keys/platform.pub\n') + `  - name: sign
    functionaries: [platform]
    uses: model-sign
    model: app.tar.gz
    materials: ["MATCH app.tar.gz WITH PRODUCTS FROM package", "DISALLOW *"]
    products: ["CREATE app.tar.gz.sig", "MATCH app.tar.gz WITH PRODUCTS FROM package", "DISALLOW *"]
inspections:
  - name: verify-model
    uses: model-verify
    model: app.tar.gz
    signer: platform
    materials: ["MATCH app.tar.gz WITH PRODUCTS FROM package", "MATCH app.tar.gz.sig WITH PRODUCTS FROM sign", "DISALLOW *"]
    products: ["MATCH * WITH MATERIALS FROM verify-model", "DISALLOW *"]
`;

import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll } from 'vitest';
import { ModelSigner } from '../../src/oms/keys.js';

/** Test helpers for OMS: model directories, keys, and a small CA made with openssl. */

const made: string[] = [];
// Registered when a test file imports this module (each file has its own copy of it).
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new temporary directory, removed after the test file's tests; callable inside a test too. */
export function tempDir(prefix = 'oms-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Writes `files` (relative name -> content) under `root`. */
export function writeModel(root: string, files: Readonly<Record<string, string | Buffer>>): string {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), content);
  }
  return root;
}

/** model_signing's conftest `sample_model_folder`: d0/f00..d1/f12 and f0..f3. */
export function sampleModelFolder(root: string): string {
  const files: Record<string, string> = {};
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) files[`d${i}/f${i}${j}`] = `This is file f${i}${j} in d${i}.`;
  for (let i = 0; i < 4; i++) files[`f${i}`] = `This is file f${i} in root.`;
  return writeModel(root, files);
}

/** A fresh key pair on `curve` and its signer. */
export function ecKey(curve: 'prime256v1' | 'secp384r1' | 'secp521r1' = 'prime256v1'): { signer: ModelSigner; publicKey: KeyObject; privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return { signer: ModelSigner.fromKeyObject(privateKey), publicKey, privateKey };
}

function openssl(args: readonly string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr}`);
}

export interface TestCa {
  readonly dir: string;
  readonly caPem: string;
  readonly leafPem: string;
  readonly leafKeyPem: string;
  readonly intermediatePem: string | undefined;
}

/**
 * A root CA (and optionally an intermediate) and a leaf for code signing, all P-256, made with
 * openssl in `dir`; the leaf is valid for `leafDays` days from now.
 */
export function makeCa(dir: string, options: { intermediate?: boolean; leafDays?: number; leafUsage?: string } = {}): TestCa {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=test-root',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  let issuer = { cert: 'ca.pem', key: 'ca.key' };
  if (options.intermediate) {
    writeFileSync(join(dir, 'int.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n');
    openssl(['req', '-new', ...ec, '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=test-intermediate'], dir);
    openssl(['x509', '-req', '-in', 'int.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'int.pem', '-days', '30', '-extfile', 'int.ext'], dir);
    issuer = { cert: 'int.pem', key: 'int.key' };
  }
  writeFileSync(join(dir, 'leaf.ext'), `basicConstraints=critical,CA:FALSE\n${options.leafUsage ?? 'keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning'}\n`);
  openssl(['req', '-new', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=test-signer'], dir);
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', issuer.cert, '-CAkey', issuer.key, '-CAcreateserial', '-out', 'leaf.pem', '-days', String(options.leafDays ?? 2), '-extfile', 'leaf.ext'], dir);
  return {
    dir,
    caPem: join(dir, 'ca.pem'),
    leafPem: join(dir, 'leaf.pem'),
    leafKeyPem: join(dir, 'leaf.key'),
    intermediatePem: options.intermediate ? join(dir, 'int.pem') : undefined,
  };
}

export const read = (path: string): Buffer => readFileSync(path);

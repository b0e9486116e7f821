import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKey, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { parseEnvelope, unverifiedPayload, isSignedBy } from '../../src/model/envelope.js';
import { linkFromJson } from '../../src/model/link.js';
import { PipelineError } from '../../src/errors.js';
import { runStep, type RunStepOptions } from '../../src/runner/run-step.js';
import { byproductsOf, referenceStreamText } from '../../src/runner/step-files.js';
import { tempDir } from '../helpers/reference.js';

/** runStep as a library call (no sandbox here: the e2e tests drive bubblewrap). */

const root = tempDir('intoto-run-step-');
const keyDir = join(root, 'keys');
mkdirSync(keyDir);
const key = generateSigningKey({ type: 'ed25519' });
const keyPath = join(keyDir, 'alice');
writeKeyPair(key, keyPath);

function workspace(name: string): string {
  const ws = join(root, name);
  mkdirSync(ws, { recursive: true });
  writeFileSync(join(ws, 'data.csv'), 'a,b\n');
  return ws;
}

const options = (ws: string, extra: Partial<RunStepOptions> = {}): RunStepOptions => ({
  name: 'train',
  keyPath,
  materials: ['data.csv'],
  products: ['.'],
  command: [],
  cwd: ws,
  sandbox: 'none',
  echo: false,
  warn: () => undefined,
  ...extra,
});

describe('runStep', () => {
  it('records, runs, signs and writes <name>.<keyid8>.link; the link verifies with the key', async () => {
    const ws = workspace('basic');
    const result = await runStep(options(ws, { command: ['sh', '-c', 'echo out; cp data.csv model.bin'], recordStreams: true }));
    expect(result.linkPath).toBe(join(ws, `train.${key.keyid.slice(0, 8)}.link`));
    expect(result.returnValue).toBe(0);
    expect(result.timedOut).toBe(false);
    expect(Object.values(result.timings).every((ms) => ms >= 0)).toBe(true);
    const envelope = parseEnvelope(readFileSync(result.linkPath), result.linkPath);
    expect(envelope.kind).toBe('metablock');
    expect(isSignedBy(envelope, key.public)).toBe(true);
    const link = linkFromJson(unverifiedPayload(envelope), result.linkPath);
    expect([...link.products.keys()]).toEqual(['data.csv', 'model.bin']);
    expect(link.byproducts).toEqual({ 'return-value': 0, stderr: '', stdout: 'out\n' });
    expect(link.environment).toEqual({});
  });

  it('writes DSSE with useDsse, and records the requested algorithms', async () => {
    const ws = workspace('dsse');
    const result = await runStep(options(ws, { useDsse: true, algorithms: ['sha256', 'sha512'] }));
    const envelope = parseEnvelope(readFileSync(result.linkPath), result.linkPath);
    expect(envelope.kind).toBe('dsse');
    expect(isSignedBy(envelope, key.public)).toBe(true);
    expect([...result.link.materials.get('data.csv')!.keys()]).toEqual(['sha256', 'sha512']);
  });

  it('without a command: empty byproducts and command; without -s: empty streams but the return value', async () => {
    const ws = workspace('byproducts');
    expect((await runStep(options(ws))).link.byproducts).toEqual({});
    const quiet = await runStep(options(ws, { command: ['sh', '-c', 'echo hidden; exit 5'] }));
    expect(quiet.returnValue).toBe(5);
    expect(quiet.link.byproducts).toEqual({ 'return-value': 5, stderr: '', stdout: '' });
    expect(existsSync(quiet.linkPath)).toBe(true);
  });

  it("reads the key's bytes only after the command: a key file filled in by the command signs the link", async () => {
    const ws = workspace('late-key');
    const placeholder = join(root, 'late-key-file');
    writeFileSync(placeholder, 'not a key yet');
    const result = await runStep(options(ws, { keyPath: placeholder, command: ['cp', keyPath, placeholder] }));
    expect(result.keyid).toBe(key.keyid);
  });

  it('checks the key file, the link directory and the command before running or hashing anything', async () => {
    const ws = workspace('early');
    const marker = ['sh', '-c', 'touch ran'];
    await expect(runStep(options(ws, { keyPath: join(root, 'nope'), command: marker }))).rejects.toMatchObject({ code: 'E_IO' });
    await expect(runStep(options(ws, { keyPath: keyDir, command: marker }))).rejects.toMatchObject({ code: 'E_NOT_REGULAR_FILE' });
    await expect(runStep(options(ws, { metadataDirectory: join(root, 'missing'), command: marker }))).rejects.toMatchObject({ code: 'E_IO' });
    await expect(runStep(options(ws, { command: ['no-such-program-xyz'] }))).rejects.toMatchObject({ code: 'E_COMMAND_NOT_FOUND' });
    await expect(runStep(options(ws, { name: '../evil', command: marker }))).rejects.toMatchObject({ code: 'E_STEP_NAME' });
    await expect(runStep(options(ws, { timeoutSeconds: 0, command: marker }))).rejects.toMatchObject({ code: 'E_USAGE' });
    expect(existsSync(join(ws, 'ran'))).toBe(false);
  });

  it('a wrong key password fails after the command, says so, and writes no link', async () => {
    const ws = workspace('password');
    const encrypted = join(root, 'encrypted');
    writeKeyPair(key, encrypted, 'right');
    const error = await runStep(options(ws, { keyPath: encrypted, password: 'wrong', command: ['true'] })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_KEY_PASSWORD', message: expect.stringContaining('the command ran (exit 0), but no link was written') });
    const signed = await runStep(options(ws, { keyPath: encrypted, password: 'right', command: ['true'] }));
    expect(signed.keyid).toBe(key.keyid);
  });

  it('relative paths resolve against cwd: key, base path, metadata directory', async () => {
    const ws = workspace('relative');
    mkdirSync(join(ws, 'proj'));
    mkdirSync(join(ws, 'out'));
    writeFileSync(join(ws, 'proj', 'x.txt'), 'x');
    copyFileSync(keyPath, join(ws, 'k'));
    const result = await runStep(options(ws, { keyPath: 'k', basePath: 'proj', metadataDirectory: 'out', materials: ['.'], products: [] }));
    expect(result.linkPath).toBe(join(ws, 'out', `train.${key.keyid.slice(0, 8)}.link`));
    expect([...result.link.materials.keys()]).toEqual(['x.txt']);
  });
});

describe('byproducts as in-toto-run 1.3.1 records them', () => {
  it('universal newlines in recorded streams (the reference reads them back in text mode)', () => {
    expect(referenceStreamText('a\r\nb\rc\n\r')).toBe('a\nb\nc\n\n');
    expect(referenceStreamText('plain\n')).toBe('plain\n');
  });
  it('streams only when recorded; nothing without a command', () => {
    const result = { returnValue: -9, stdout: 'o', stderr: 'e' };
    expect(byproductsOf(result, true)).toEqual({ 'return-value': -9, stderr: 'e', stdout: 'o' });
    expect(byproductsOf(result, false)).toEqual({ 'return-value': -9, stderr: '', stdout: '' });
    expect(byproductsOf(undefined, true)).toEqual({});
  });
});

describe('runStep with a built-in action (a YAML step\'s uses:, no command)', () => {
  const action = (ws: string, seen: { keyid?: string; materials?: string[]; wrote?: boolean }): NonNullable<RunStepOptions['action']> => ({
    command: ['intoto', 'model', 'sign', 'data.csv', '-o', 'data.csv.sig'],
    async perform(signingKey, materials) {
      seen.keyid = signingKey.keyid;
      seen.materials = [...materials.keys()];
      writeFileSync(join(ws, 'data.csv.sig'), 'signature');
      seen.wrote = true;
      return 'signed data.csv\n';
    },
  });

  it('performs it after the materials and before the products, with the key that then signs the link', async () => {
    const ws = workspace('builtin');
    const seen: { keyid?: string; materials?: string[]; wrote?: boolean } = {};
    const result = await runStep(options(ws, { materials: ['.'], products: ['.'], recordStreams: true, action: action(ws, seen) }));
    expect(seen).toEqual({ keyid: key.keyid, materials: ['data.csv'], wrote: true });
    const envelope = parseEnvelope(readFileSync(result.linkPath), result.linkPath);
    expect(isSignedBy(envelope, key.public)).toBe(true);
    const link = linkFromJson(unverifiedPayload(envelope), result.linkPath);
    expect(link.command).toEqual(['intoto', 'model', 'sign', 'data.csv', '-o', 'data.csv.sig']);
    expect([...link.materials.keys()]).toEqual(['data.csv']);
    expect([...link.products.keys()]).toEqual(['data.csv', 'data.csv.sig']);
    expect(link.byproducts).toEqual({ 'return-value': 0, stderr: '', stdout: 'signed data.csv\n' });
    expect(result.returnValue).toBe(0);
    expect(result.sandboxed).toBe(false);
  });

  it('an action that fails: its error, and no link', async () => {
    const ws = workspace('builtin-fails');
    const failing: NonNullable<RunStepOptions['action']> = {
      command: ['intoto', 'model', 'sign', 'x'],
      perform: () => Promise.reject(new PipelineError('E_STEP_FAILED', 'could not sign x')),
    };
    await expect(runStep(options(ws, { action: failing }))).rejects.toMatchObject({ code: 'E_STEP_FAILED' });
    expect(existsSync(join(ws, `train.${key.keyid.slice(0, 8)}.link`))).toBe(false);
  });

  it('a command and an action together are a usage error, before anything is recorded', async () => {
    const ws = workspace('builtin-and-command');
    const seen = {};
    await expect(runStep(options(ws, { command: ['true'], action: action(ws, seen) }))).rejects.toMatchObject({ code: 'E_USAGE' });
    expect(seen).toEqual({});
  });
});

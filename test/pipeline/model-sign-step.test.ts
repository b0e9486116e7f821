import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/crypto/keyfiles.js';
import type { HashDict } from '../../src/model/artifacts.js';
import { modelSignAction, signedAgainstMaterials } from '../../src/pipeline/model-sign-step.js';
import { recordArtifacts } from '../../src/runner/record.js';
import { tempDir } from '../helpers/reference.js';

/**
 * The model-sign action as the runner performs it, in memory: what it signs is exactly the
 * step's recorded materials (checked after signing), the signature goes where the layout says,
 * and each way it cannot sign is E_STEP_FAILED naming the step, the functionary and the model.
 */
const root = tempDir('intoto-model-sign-step-');
const ecdsa = generateSigningKey({ type: 'ecdsa' });
const digests = (entries: Record<string, string>): Map<string, HashDict> => new Map(Object.entries(entries).map(([name, hex]) => [name, new Map([['sha256', hex]])]));
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('signedAgainstMaterials: the signature and the link tell one story', () => {
  const dirModel = { resources: [{ name: 'config.json', algorithm: 'sha256', digest: A }, { name: 'w.bin', algorithm: 'sha256', digest: B }], serialization: { method: 'files' as const, hashType: 'sha256' as const, allowSymlinks: false, ignorePaths: ['.git', 'model.sig'], shardSize: undefined } };
  it.each([
    ['the same files and digests', dirModel, digests({ 'm/config.json': A, 'm/w.bin': B, 'other.txt': A }), undefined],
    ['an ignored path is a material but not signed', dirModel, digests({ 'm/config.json': A, 'm/w.bin': B, 'm/.git/HEAD': A }), undefined],
    ['a signed file whose digest differs from the recorded one', dirModel, digests({ 'm/config.json': A, 'm/w.bin': A }), 'm/w.bin: sha256 bbbb'],
    ['a signed file that is not a material', dirModel, digests({ 'm/config.json': A }), 'm/w.bin is signed but is not a material'],
    ['a material under the model that is not signed', dirModel, digests({ 'm/config.json': A, 'm/w.bin': B, 'm/extra.py': A }), 'm/extra.py is a material but is not signed'],
    ['a name that only starts like the model is not under it', dirModel, digests({ 'm/config.json': A, 'm/w.bin': B, 'm2/x': A }), undefined],
  ])('%s', (_name, signed, materials, problem) => {
    const found = signedAgainstMaterials('m', false, signed, materials);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toContain(problem);
  });

  it('a single-file model: its one resource is the material of the model\'s own name', () => {
    const single = { resources: [{ name: 'model.pkl', algorithm: 'sha256', digest: A }], serialization: { ...dirModel.serialization, ignorePaths: undefined } };
    expect(signedAgainstMaterials('out/model.pkl', true, single, digests({ 'out/model.pkl': A }))).toBeUndefined();
    expect(signedAgainstMaterials('out/model.pkl', true, single, digests({ 'out/model.pkl': B }))).toMatch(/out\/model\.pkl: sha256/);
  });
});

describe('modelSignAction', () => {
  const workspace = (name: string, files: Record<string, string>): string => {
    const ws = join(root, name);
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(join(ws, file, '..'), { recursive: true });
      writeFileSync(join(ws, file), text);
    }
    return ws;
  };
  const perform = async (ws: string, model: string, signature: string): Promise<string> => {
    const action = modelSignAction({ step: 'sign', functionary: 'platform', use: { kind: 'model-sign', model, signature }, workspace: ws });
    expect(action.command).toEqual(['intoto', 'model', 'sign', model, '-o', signature]);
    return action.perform(ecdsa, await recordArtifacts(['.'], { basePath: ws }));
  };

  it('signs a directory model into the signature the layout names (a new subdirectory is made)', async () => {
    const ws = workspace('dir', { 'model/a.bin': 'a', 'model/b/c.json': '{}' });
    const out = await perform(ws, 'model', 'sigs/model.sig');
    expect(out).toMatch(/^signed model: 2 file\(s\), root digest sha256:[0-9a-f]{64}, key hint [0-9a-f]{64} -> sigs\/model\.sig/);
    const bundle = JSON.parse(readFileSync(join(ws, 'sigs', 'model.sig'), 'utf8')) as { mediaType: string };
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
  });

  it('a signature inside the model directory is left out of what it signs', async () => {
    const ws = workspace('inside', { 'model/a.bin': 'a' });
    expect(await perform(ws, 'model', 'model/model.sig')).toMatch(/^signed model: 1 file\(s\)/);
  });

  it.each([
    ['no model among the materials', { 'data.csv': 'x' }, 'model.pkl', 'model.pkl.sig', /step 'sign' \(functionary platform\) could not sign model\.pkl: it is not among the step's materials \(its rules staged 1 file\(s\): data\.csv\)/],
    ['the signature is already there', { 'model.pkl': 'm', 'model.pkl.sig': 'forged' }, 'model.pkl', 'model.pkl.sig', /model\.pkl\.sig is already in the workspace/],
    ['a model of ignored files only', { 'model/.gitignore': '' }, 'model', 'model.sig', /no file to sign .*\[E_MODEL_EMPTY\]/],
    ['a signature path through a file', { 'model.pkl': 'm' }, 'model.pkl', 'model.pkl/x.sig', /could not sign model\.pkl: .*\[E_IO\]/],
  ])('%s: E_STEP_FAILED', async (_name, files, model, signature, message) => {
    const ws = workspace(`fail-${model}-${Object.keys(files).length}-${signature.length}`, files);
    await expect(perform(ws, model, signature)).rejects.toMatchObject({ code: 'E_STEP_FAILED', message: expect.stringMatching(message) as unknown as string });
  });

  it('an ed25519 key cannot make an OMS signature: E_STEP_FAILED naming the key problem', async () => {
    const ws = workspace('ed', { 'model.pkl': 'm' });
    const action = modelSignAction({ step: 'sign', functionary: 'platform', use: { kind: 'model-sign', model: 'model.pkl', signature: 'model.pkl.sig' }, workspace: ws });
    await expect(action.perform(generateSigningKey({ type: 'ed25519' }), await recordArtifacts(['.'], { basePath: ws }))).rejects.toMatchObject({ code: 'E_STEP_FAILED', message: expect.stringMatching(/need ECDSA .*\[E_KEY_UNSUPPORTED\]/) as unknown as string });
  });
});

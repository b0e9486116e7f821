import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBin } from '../helpers/bin.js';
import { referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { cleanEnv, linkIn, makeKey, sha256 } from './helpers/step.js';

/** intoto-mock and intoto-match-products through the built binaries. */

const haveReference = referenceAvailable();
const REFERENCE_LAYOUT = new URL('../fixtures/reference/chain/root.layout', import.meta.url).pathname;

function workspace(root: string, name: string, files: Record<string, string>): string {
  const ws = join(root, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(ws, path, '..'), { recursive: true });
    writeFileSync(join(ws, path), content);
  }
  mkdirSync(ws, { recursive: true });
  return ws;
}

describe('intoto-mock', () => {
  const root = tempDir('intoto-e2e-mock-');
  const env = cleanEnv({ HOME: root });

  it('writes an unsigned <name>.link recording everything, and exits 1 when the command fails', () => {
    const ws = workspace(root, 'failing', { 'in.txt': 'i\n' });
    const result = runBin('intoto-mock', ['-n', 'try', '--', 'sh', '-c', 'echo made > out.txt; exit 4'], { cwd: ws, env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[E_COMMAND_FAILED]');
    const link = JSON.parse(readFileSync(join(ws, 'try.link'), 'utf8')) as { signatures: unknown[]; signed: { products: object; byproducts: object } };
    expect(link.signatures).toEqual([]);
    expect(Object.keys(link.signed.products).sort()).toEqual(['in.txt', 'out.txt']);
    expect(link.signed.byproducts).toEqual({ 'return-value': 4, stderr: '', stdout: '' });
  });

  it.skipIf(!haveReference)('writes the same bytes as in-toto-mock', () => {
    const files = { 'data/a.csv': 'a\n', 'src/b.py': 'b\n' };
    const ours = workspace(root, 'ours', files);
    const theirs = workspace(root, 'theirs', files);
    const command = ['sh', '-c', 'echo training; cat data/a.csv > model.bin; echo done >&2'];
    expect(run('in-toto-mock', ['-n', 'train', '--', ...command], { cwd: theirs, env }).status).toBe(0);
    const result = runBin('intoto-mock', ['-n', 'train', '--', ...command], { cwd: ours, env });
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(ours, 'train.link'), 'utf8')).toBe(readFileSync(join(theirs, 'train.link'), 'utf8'));
  });
});

describe('intoto-match-products', () => {
  const root = tempDir('intoto-e2e-match-');
  const env = cleanEnv({ HOME: root });
  const key = makeKey(join(root, 'keys'));
  const files = { 'dist/app.tar': 'tar\n', 'dist/app.sig': 'sig\n', 'model/weights.bin': 'w\n' };
  const match = (ws: string, args: string[]): ReturnType<typeof runBin> => runBin('intoto-match-products', args, { cwd: ws, env });

  it.skipIf(!haveReference)("accepts the reference's links: exit 0 when the disk matches, 1 listing every difference", () => {
    const ws = workspace(root, 'reference-link', files);
    const made = run('in-toto-run', ['-n', 'package', '-k', key, '-t', 'ed25519', '-p', 'dist', 'model', '-x'], { cwd: ws, env });
    expect(made.status, made.stderr).toBe(0);
    const { path } = linkIn(ws, 'package');
    const same = match(ws, ['-l', path, '-p', 'dist', 'model']);
    expect(same.status, same.stderr).toBe(0);
    expect(same.stderr).toContain('not checked');

    writeFileSync(join(ws, 'dist/app.tar'), 'evil\n');
    rmSync(join(ws, 'dist/app.sig'));
    writeFileSync(join(ws, 'model/extra.pkl'), 'x\n');
    const differs = match(ws, ['-l', path, '-p', 'dist', 'model']);
    expect(differs.status).toBe(1);
    expect(differs.stderr).toContain('[E_ARTIFACTS_DIFFER]');
    expect(differs.stdout).toContain('only on disk: model/extra.pkl');
    expect(differs.stdout).toContain('only in the link: dist/app.sig');
    expect(differs.stdout).toContain(`differs: dist/app.tar\n  link: sha256:${sha256('tar\n')}\n  disk: sha256:${sha256('evil\n')}`);
    // Excluding the extra file and naming only what is left narrows the comparison.
    const narrowed = match(ws, ['-l', path, '-p', 'model', '-e', '*.pkl']);
    expect(narrowed.status).toBe(1);
    expect(narrowed.stdout).not.toContain('extra.pkl');
  });

  it('reads a DSSE link from intoto-run --use-dsse, and --lstrip-paths names as the link does', () => {
    const ws = workspace(root, 'dsse', files);
    const made = runBin('intoto-run', ['-n', 'package', '-k', key, '--use-dsse', '-p', 'dist', '--lstrip-paths', 'dist/', '-x'], { cwd: ws, env });
    expect(made.status, made.stderr).toBe(0);
    const [file] = readdirSync(ws).filter((f) => f.endsWith('.link'));
    expect(JSON.parse(readFileSync(join(ws, file!), 'utf8'))).toHaveProperty('payloadType', 'application/vnd.in-toto+json');
    expect(match(ws, ['-l', file!, '-p', 'dist', '--lstrip-paths', 'dist/']).status).toBe(0);
    const unstripped = match(ws, ['-l', file!, '-p', 'dist']);
    expect(unstripped.status).toBe(1);
    expect(unstripped.stdout).toContain('only on disk: dist/app.tar');
  });

  it('refuses a layout given as the link (E_METADATA_TYPE)', () => {
    const result = match(root, ['-l', REFERENCE_LAYOUT]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[E_METADATA_TYPE]');
  });
});

import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBin } from '../helpers/bin.js';
import { referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { cleanEnv, linkIn, makeKey, sha256 } from './helpers/step.js';

/**
 * intoto-record start|stop through the built binary, and mixed with in-toto-record 1.3.1:
 * the unfinished file is the reference's format, so either tool can start and the other stop,
 * and the finished links are the same bytes whoever did which half.
 */

type Tool = 'ours' | 'theirs';

describe('intoto-record start/stop', () => {
  const root = tempDir('intoto-e2e-record-');
  const env = cleanEnv({ HOME: root });
  const alice = makeKey(join(root, 'keys'), 'alice');
  const mallory = makeKey(join(root, 'keys'), 'mallory');

  function workspace(name: string): string {
    const ws = join(root, name);
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, 'draft.md'), 'draft\n');
    return ws;
  }

  it('start writes the signed unfinished link; stop adds products, writes the link and removes the unfinished file', () => {
    const ws = workspace('ours');
    const start = runBin('intoto-record', ['start', '-n', 'edit', '-k', alice, '-m', 'draft.md'], { cwd: ws, env });
    expect(start.status, start.stderr).toBe(0);
    const unfinished = readdirSync(ws).filter((f) => f.endsWith('.link-unfinished'));
    expect(unfinished).toEqual([expect.stringMatching(/^\.edit\.[0-9a-f]{8}\.link-unfinished$/)]);
    writeFileSync(join(ws, 'final.md'), 'final\n');
    const out = join(ws, 'links');
    mkdirSync(out);
    const stop = runBin('intoto-record', ['stop', '-n', 'edit', '-k', alice, '-p', 'draft.md', 'final.md', '-d', out], { cwd: ws, env });
    expect(stop.status, stop.stderr).toBe(0);
    expect(existsSync(join(ws, unfinished[0]!))).toBe(false);
    const { link } = linkIn(out, 'edit');
    expect(link.signed.materials).toEqual({ 'draft.md': { sha256: sha256('draft\n') } });
    expect(link.signed.products).toEqual({ 'draft.md': { sha256: sha256('draft\n') }, 'final.md': { sha256: sha256('final\n') } });
    expect(link.signed.command).toEqual([]);
    expect(link.signed.byproducts).toEqual({});
  });

  it('stop without a start fails with E_UNFINISHED_LINK', () => {
    const ws = workspace('missing');
    const stop = runBin('intoto-record', ['stop', '-n', 'edit', '-k', alice, '-p', '.'], { cwd: ws, env });
    expect(stop.status).toBe(1);
    expect(stop.stderr).toContain('[E_UNFINISHED_LINK]');
  });

  it('attack: an unfinished link signed by another key is refused (E_UNFINISHED_LINK), nothing is written', () => {
    const ws = workspace('forged');
    expect(runBin('intoto-record', ['start', '-n', 'edit', '-k', mallory, '-m', 'draft.md'], { cwd: ws, env }).status).toBe(0);
    const malloryFile = readdirSync(ws).find((f) => f.endsWith('.link-unfinished'))!;
    // Mallory's unfinished link put where alice's would be.
    const aliceKeyid = linkKeyid(alice, root, env);
    const forgedName = `.edit.${aliceKeyid.slice(0, 8)}.link-unfinished`;
    writeFileSync(join(ws, forgedName), readFileSync(join(ws, malloryFile)));
    const stop = runBin('intoto-record', ['stop', '-n', 'edit', '-k', alice, '-p', '.'], { cwd: ws, env });
    expect(stop.status).toBe(1);
    expect(stop.stderr).toContain('[E_UNFINISHED_LINK]');
    expect(readdirSync(ws).filter((f) => f.endsWith('.link'))).toEqual([]);
  });

  it('attack: an unfinished link of another step, renamed, is refused', () => {
    const ws = workspace('renamed');
    expect(runBin('intoto-record', ['start', '-n', 'review', '-k', alice, '-m', 'draft.md'], { cwd: ws, env }).status).toBe(0);
    const file = readdirSync(ws).find((f) => f.endsWith('.link-unfinished'))!;
    writeFileSync(join(ws, file.replace('.review.', '.edit.')), readFileSync(join(ws, file)));
    const stop = runBin('intoto-record', ['stop', '-n', 'edit', '-k', alice, '-p', '.'], { cwd: ws, env });
    expect(stop.status).toBe(1);
    expect(stop.stderr).toMatch(/records step "review", not "edit" \[E_UNFINISHED_LINK\]/);
  });

  const haveReference = referenceAvailable();
  const combos: [Tool, Tool][] = [
    ['ours', 'theirs'],
    ['theirs', 'ours'],
    ['theirs', 'theirs'],
    ['ours', 'ours'],
  ];
  describe.skipIf(!haveReference)('mixed with in-toto-record 1.3.1', () => {
    const results = new Map<string, string>();
    for (const [starter, stopper] of combos) {
      it(`start with ${starter}, stop with ${stopper}: the same link bytes`, () => {
        const ws = workspace(`mix-${starter}-${stopper}`);
        const call = (tool: Tool, args: string[]): void => {
          const result =
            tool === 'ours'
              ? runBin('intoto-record', args, { cwd: ws, env })
              : run('in-toto-record', [...args.slice(0, 1), '-t', 'ed25519', ...args.slice(1)], { cwd: ws, env });
          expect(result.status, `${tool} ${args.join(' ')}: ${result.stderr}`).toBe(0);
        };
        call(starter, ['start', '-n', 'edit', '-k', alice, '-m', 'draft.md']);
        writeFileSync(join(ws, 'final.md'), 'final\n');
        call(stopper, ['stop', '-n', 'edit', '-k', alice, '-p', '.']);
        expect(readdirSync(ws).filter((f) => f.endsWith('.link-unfinished'))).toEqual([]);
        const text = readFileSync(linkIn(ws, 'edit').path, 'utf8');
        results.set(`${starter}-${stopper}`, text);
        expect(text).toBe(results.values().next().value);
      });
    }
  });
});

/** The keyid of a key, read from a link our intoto-run writes with it (no key parsing in the test). */
function linkKeyid(key: string, root: string, env: NodeJS.ProcessEnv): string {
  const dir = join(root, `keyid-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  const result = runBin('intoto-run', ['-n', 'probe', '-k', key, '-x'], { cwd: dir, env });
  expect(result.status, result.stderr).toBe(0);
  return linkIn(dir, 'probe').link.signatures[0]!.keyid;
}

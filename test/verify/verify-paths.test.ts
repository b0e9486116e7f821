import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, symlinkSync, writeFileSync, ftruncateSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Layout } from '../../src/model/layout.js';
import { linkFileName } from '../../src/model/link.js';
import { loadLinks } from '../../src/verify/link-files.js';
import { Session } from '../../src/verify/session.js';
import { arts, key, layoutJson, linkJson, standardChain, trainEvaluate, verify, workDir, writeLink, writeSigned } from './chain.js';

/**
 * Paths and files (THREATS.md): link files that are symlinks, FIFOs or enormous; sublayouts
 * whose names or directories would lead outside the link directory; prefix collisions.
 */

describe('link files', () => {
  it('a link file that is a symlink out of the link directory: E_NOT_REGULAR_FILE', async () => {
    const { dir, layoutPath, linkDir } = standardChain();
    const outside = join(dir, 'outside.link');
    const name = linkFileName('train', key(1).keyid);
    execFileSync('mv', [join(linkDir, name), outside]);
    symlinkSync(outside, join(linkDir, name));
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_NOT_REGULAR_FILE');
    expect(report.failure?.context.step).toBe('train');
  });

  it('a FIFO in place of a link file fails at once, never hangs: E_NOT_REGULAR_FILE', async () => {
    const { layoutPath, linkDir } = standardChain();
    const name = join(linkDir, linkFileName('evaluate', key(2).keyid));
    execFileSync('rm', [name]);
    execFileSync('mkfifo', [name]);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_NOT_REGULAR_FILE');
  });

  it('an enormous link file is refused by its size, before reading: E_FILE_TOO_LARGE', async () => {
    const { layoutPath, linkDir } = standardChain();
    const name = join(linkDir, linkFileName('evaluate', key(2).keyid));
    const fd = openSync(name, 'w');
    ftruncateSync(fd, 300 * 1024 * 1024); // sparse: no disk used
    closeSync(fd);
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_FILE_TOO_LARGE');
  });

  it('an empty or truncated link file: a parse error, not a crash', async () => {
    const { layoutPath, linkDir } = standardChain();
    writeFileSync(join(linkDir, linkFileName('evaluate', key(2).keyid)), '{"signatures": [');
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_JSON_SYNTAX');
  });

  it('duplicate JSON keys in a link: E_JSON_DUPLICATE_KEY', async () => {
    const { layoutPath, linkDir } = standardChain();
    const file = join(linkDir, linkFileName('evaluate', key(2).keyid));
    writeFileSync(file, '{"signatures": [], "signed": {"_type": "link", "_type": "link"}}');
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_JSON_DUPLICATE_KEY');
  });

  it('colliding 8-digit prefixes: one file, tried against every key with that prefix, credited only to the signer', async () => {
    const { linkDir } = workDir();
    const [alice, carol] = [key(1), key(3)];
    // Two authorised keys filed under keyids that share their first 8 digits (as two real
    // keyids may): both look for the one file, and only the key that signed it gets the credit.
    const shared = 'cafebabe';
    const layout: Layout = {
      type: 'layout',
      expires: '2099-01-01T00:00:00Z',
      expiresAt: Date.UTC(2099, 0, 1),
      readme: '',
      keys: new Map([
        [`${shared}${'0'.repeat(56)}`, alice.public],
        [`${shared}${'1'.repeat(56)}`, carol.public],
      ]),
      steps: [{ name: 'train', threshold: 1, pubkeys: [`${shared}${'0'.repeat(56)}`, `${shared}${'1'.repeat(56)}`], expectedCommand: [], expectedMaterials: [], expectedProducts: [] }],
      inspections: [],
    };
    writeSigned(join(linkDir, `train.${shared}.link`), linkJson('train', {}, {}), [carol]);
    const session = new Session(
      { layoutKeys: [], layoutThreshold: undefined, params: new Map(), finalProducts: undefined, excludeFromFinalProducts: [], inspectionTimeoutSeconds: undefined, allowSublayoutInspections: false, sandbox: 'none', now: 0, cwd: linkDir },
      undefined,
    );
    const [train] = await loadLinks(layout, linkDir, session);
    expect(train?.filesFound).toEqual([join(linkDir, `train.${shared}.link`)]);
    expect(train?.evidence.map((e) => e.keyid)).toEqual([carol.keyid]);
  });
});

/** A root layout whose step `build` (functionary alice) is delegated to a sublayout. */
function sublayoutChain(sub: { stepName?: string; inspections?: boolean; expires?: string; subDirSymlink?: boolean } = {}): {
  dir: string;
  linkDir: string;
  layoutPath: string;
} {
  const { dir, linkDir } = workDir();
  const [alice, bob] = [key(1), key(2)];
  const root = layoutJson([{ name: 'build', keys: [alice], products: [['CREATE', 'app.bin'], ['DISALLOW', '*']] }, { name: 'ship', keys: [bob], materials: [['MATCH', 'app.bin', 'WITH', 'PRODUCTS', 'FROM', 'build'], ['DISALLOW', '*']] }]);
  const layoutPath = join(dir, 'root.layout');
  writeSigned(layoutPath, root, [key(0)]);
  const carol = key(3);
  const stepName = sub.stepName ?? 'compile';
  const sublayout = layoutJson(
    [{ name: stepName, keys: [carol], products: [['CREATE', 'app.bin'], ['DISALLOW', '*']] }],
    sub.inspections ? [{ name: 'check', run: ['true'] }] : [],
    sub.expires,
  );
  writeSigned(join(linkDir, linkFileName('build', alice.keyid)), sublayout, [alice]);
  const subDir = join(linkDir, `build.${alice.keyid.slice(0, 8)}`);
  if (sub.subDirSymlink) {
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync(join(dir, 'elsewhere'), subDir);
    writeLink(join(dir, 'elsewhere'), linkJson(stepName, {}, arts({ 'app.bin': 'app' })), carol);
  } else {
    mkdirSync(subDir);
    if (/^[^/]+$/.test(stepName)) writeLink(subDir, linkJson(stepName, {}, arts({ 'app.bin': 'app' })), carol);
  }
  writeLink(linkDir, linkJson('ship', arts({ 'app.bin': 'app' }), {}), bob);
  return { dir, linkDir, layoutPath };
}

describe('sublayouts', () => {
  it('a sublayout is verified in its own directory and stands for its step by its summary link', async () => {
    const { layoutPath, linkDir } = sublayoutChain();
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure).toBeUndefined();
    const build = report.layout.steps[0];
    expect(build?.sublayouts[0]?.steps[0]?.name).toBe('compile');
    expect(build?.sublayouts[0]?.signedBy).toEqual([key(1).keyid]);
  });

  it('a sublayout naming a step ../../x: E_SUBLAYOUT_NAME, and nothing outside the link directory is read', async () => {
    const { layoutPath, linkDir, dir } = sublayoutChain({ stepName: '../../x' });
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_SUBLAYOUT_NAME');
    expect(existsSync(join(dir, '..', 'x'))).toBe(false);
  });

  it('a sublayout link directory that is a symlink out of the link directory: E_NOT_REGULAR_FILE', async () => {
    const { layoutPath, linkDir } = sublayoutChain({ subDirSymlink: true });
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_NOT_REGULAR_FILE');
  });

  it('an expired sublayout: E_LAYOUT_EXPIRED, naming the step it stands for', async () => {
    const { layoutPath, linkDir } = sublayoutChain({ expires: '2020-01-01T00:00:00Z' });
    const report = await verify({ layoutPath, linkDir });
    expect(report.failure?.code).toBe('E_LAYOUT_EXPIRED');
    expect(report.failure?.context.step).toBe('build');
  });

  it('inspections in a sublayout (commands chosen by a functionary) are refused unless allowed', async () => {
    const { layoutPath, linkDir, dir } = sublayoutChain({ inspections: true });
    expect((await verify({ layoutPath, linkDir })).failure?.code).toBe('E_INSPECTION_REFUSED');
    const allowed = await verify({ layoutPath, linkDir, allowSublayoutInspections: true, cwd: dir, finalProducts: [] });
    expect(allowed.failure).toBeUndefined();
    expect(allowed.layout.steps[0]?.sublayouts[0]?.inspections[0]?.exitCode).toBe(0);
  });
});

describe('inspections', () => {
  function inspectionChain(run: readonly string[], rules: { materials?: string[][]; products?: string[][] } = {}): { dir: string; linkDir: string; layoutPath: string } {
    const { dir, linkDir } = workDir();
    const { steps, links } = trainEvaluate();
    const layoutPath = join(dir, 'root.layout');
    writeSigned(layoutPath, layoutJson(steps, [{ name: 'inspect', run, ...rules }]), [key(0)]);
    writeLink(linkDir, links.train, key(1));
    writeLink(linkDir, links.evaluate, key(2));
    writeFileSync(join(dir, 'model.pkl'), 'model');
    writeFileSync(join(dir, 'stray.link'), 'not a final product');
    return { dir, linkDir, layoutPath };
  }

  it('run in a scratch directory holding only the final product (no layout, no links), then its rules', async () => {
    const { dir, linkDir, layoutPath } = inspectionChain(
      ['sh', '-c', 'test -f model.pkl && test ! -e root.layout && test ! -e links && test ! -e stray.link && echo ok > seen.txt'],
      { materials: [['MATCH', 'model.pkl', 'WITH', 'PRODUCTS', 'FROM', 'train'], ['DISALLOW', '*']], products: [['MATCH', 'model.pkl', 'WITH', 'PRODUCTS', 'FROM', 'train'], ['CREATE', 'seen.txt'], ['DISALLOW', '*']] },
    );
    const report = await verify({ layoutPath, linkDir, cwd: dir });
    expect(report.failure).toBeUndefined();
    const inspection = report.layout.inspections[0];
    expect(inspection?.exitCode).toBe(0);
    expect(inspection?.placement?.hardLinked).toBe(1);
    expect(inspection?.products.find((r) => r.rule === 'CREATE seen.txt')?.consumed).toEqual(['seen.txt']);
    expect(existsSync(join(dir, 'seen.txt'))).toBe(false); // nothing written into the verifier's directory
  });

  it('a non-zero exit fails verification with its stderr: E_INSPECTION_FAILED', async () => {
    const { dir, linkDir, layoutPath } = inspectionChain(['sh', '-c', 'echo broken model >&2; exit 3']);
    const report = await verify({ layoutPath, linkDir, cwd: dir });
    expect(report.failure?.code).toBe('E_INSPECTION_FAILED');
    expect(report.failure?.details.join('\n')).toContain('broken model');
    expect(report.layout.inspections[0]?.exitCode).toBe(3);
  });

  it('a command that does not exist: E_INSPECTION_FAILED', async () => {
    const { dir, linkDir, layoutPath } = inspectionChain(['/nonexistent/inspector']);
    expect((await verify({ layoutPath, linkDir, cwd: dir })).failure?.code).toBe('E_INSPECTION_FAILED');
  });

  it('an inspection that never ends is stopped by the timeout: E_INSPECTION_FAILED', async () => {
    const { dir, linkDir, layoutPath } = inspectionChain(['sleep', '600']);
    const report = await verify({ layoutPath, linkDir, cwd: dir, inspectionTimeoutSeconds: 0.5 });
    expect(report.failure?.code).toBe('E_INSPECTION_FAILED');
    expect(report.layout.inspections[0]?.timedOut).toBe(true);
  });

  it('an inspection that writes into a hard-linked final product in place is caught: E_INSPECTION_FAILED', async () => {
    const { dir, linkDir, layoutPath } = inspectionChain(['sh', '-c', 'echo tampered >> model.pkl'], { products: [['ALLOW', '*']] });
    const report = await verify({ layoutPath, linkDir, cwd: dir });
    expect(report.failure?.code).toBe('E_INSPECTION_FAILED');
    expect(report.failure?.context.artifact).toBe('model.pkl');
  });

  it('--final-products names what the inspection sees; the work area is removed afterwards', async () => {
    const { dir, linkDir, layoutPath } = inspectionChain(['sh', '-c', 'test -f model.pkl && test ! -e other.txt'], { materials: [['ALLOW', 'model.pkl'], ['DISALLOW', '*']] });
    writeFileSync(join(dir, 'other.txt'), 'x');
    const before = readdirSync(join(dir, '..')).filter((n) => n.startsWith('intoto-verify-')).length;
    const report = await verify({ layoutPath, linkDir, cwd: dir, finalProducts: ['model.pkl'] });
    expect(report.failure).toBeUndefined();
    expect(readdirSync(join(dir, '..')).filter((n) => n.startsWith('intoto-verify-') && !n.startsWith('intoto-verify-test')).length).toBeLessThanOrEqual(before);
  });
});

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/crypto/keyfiles.js';
import { makeDigests } from '../../src/model/digests.js';
import { linkFileName, makeLink } from '../../src/model/link.js';
import { linkMetablockText } from '../../src/model/link-text.js';
import { traceArtifact } from '../../src/trace/trace.js';
import { codeOfAsync } from '../helpers/errors.js';

/** traceArtifact on links written here: digest mode, modification inside a step, data-flow order. */

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const key = generateSigningKey({ type: 'ed25519' });

function writeLink(dir: string, name: string, materials: Record<string, string>, products: Record<string, string>, mtime: number): void {
  const map = (o: Record<string, string>): Map<string, ReturnType<typeof makeDigests>> => new Map(Object.entries(o).map(([n, c]) => [n, makeDigests('sha256', sha(c), undefined, undefined)]));
  const link = makeLink({ name, command: ['true'], materials: map(materials), products: map(products), byproducts: {} });
  const file = join(dir, linkFileName(name, key.keyid));
  writeFileSync(file, linkMetablockText(link, [key]), 'latin1');
  utimesSync(file, mtime, mtime);
}

function chain(): string {
  const dir = mkdtempSync(join(tmpdir(), 'trace-'));
  dirs.push(dir);
  // clean makes data/clean.csv from data/raw.csv; train uses it; written in the "wrong" time order.
  writeLink(dir, 'train', { 'data/clean.csv': 'clean' }, { 'model.pkl': 'm', 'data/clean.csv': 'clean' }, 1000);
  writeLink(dir, 'clean', { 'data/raw.csv': 'raw' }, { 'data/raw.csv': 'raw', 'data/clean.csv': 'clean' }, 2000);
  return dir;
}

describe('traceArtifact', () => {
  it('orders unverified links by data flow (clean made what train used), whatever the file times', async () => {
    const dir = chain();
    const result = await traceArtifact({ artifact: 'data/clean.csv', linkDir: dir, cwd: dir });
    expect(result.signaturesChecked).toBe(false);
    expect(result.points.map((p) => p.name)).toEqual(['clean', 'train']);
    expect(result.points[0]).toMatchObject({ materials: undefined, products: sha('clean') });
    expect(result.changes).toEqual([]);
  });

  it('finds a content digest under any name', async () => {
    const dir = chain();
    const result = await traceArtifact({ artifact: `sha256:${sha('clean')}`, linkDir: dir, cwd: dir });
    expect(result.mode).toBe('digest');
    expect(result.points.map((p) => [p.name, p.artifacts])).toEqual([
      ['clean', ['data/clean.csv']],
      ['train', ['data/clean.csv']],
    ]);
  });

  it('a step that modifies the artifact is a change within the step; a different digest at the next step is a change between steps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trace-'));
    dirs.push(dir);
    writeLink(dir, 'a', { 'x.csv': 'v1' }, { 'x.csv': 'v2' }, 1000);
    writeLink(dir, 'b', { 'x.csv': 'v3' }, {}, 2000);
    const result = await traceArtifact({ artifact: 'x.csv', linkDir: dir, cwd: dir });
    expect(result.changes).toEqual([
      { kind: 'within-step', after: "step 'a' materials", before: "step 'a' products", from: sha('v1'), to: sha('v2') },
      { kind: 'between-steps', after: "step 'a' products", before: "step 'b' materials", from: sha('v2'), to: sha('v3') },
    ]);
  });

  it('an artifact nobody recorded: E_TRACE_NOT_FOUND', async () => {
    const dir = chain();
    expect(await codeOfAsync(traceArtifact({ artifact: 'other.csv', linkDir: dir, cwd: dir }))).toBe('E_TRACE_NOT_FOUND');
  });
});

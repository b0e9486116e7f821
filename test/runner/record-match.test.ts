import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKey, writeKeyPair } from '../../src/crypto/keyfiles.js';
import { dsseText, metablockText, parseEnvelope } from '../../src/model/envelope.js';
import { linkToJson, makeLink } from '../../src/model/link.js';
import { matchProducts, productsMatch } from '../../src/runner/match-products.js';
import { recordStart, recordStop } from '../../src/runner/record-step.js';
import { tempDir } from '../helpers/reference.js';

/** intoto-record's and intoto-match-products' library flows. */

const root = tempDir('intoto-record-match-');
const key = generateSigningKey({ type: 'ed25519' });
const keyPath = join(root, 'key');
writeKeyPair(key, keyPath);
const warn = (): void => undefined;

function workspace(name: string, files: Record<string, string>): string {
  const ws = join(root, name);
  mkdirSync(ws, { recursive: true });
  for (const [path, content] of Object.entries(files)) writeFileSync(join(ws, path), content);
  return ws;
}

describe('recordStart / recordStop', () => {
  it('a recording started in DSSE is finished in DSSE', async () => {
    const ws = workspace('dsse', { 'a.txt': 'a' });
    const started = await recordStart({ name: 'edit', keyPath, materials: ['.'], cwd: ws, useDsse: true, warn });
    expect(parseEnvelope(readFileSync(started.linkPath), started.linkPath).kind).toBe('dsse');
    const stopped = await recordStop({ name: 'edit', keyPath, products: ['.'], cwd: ws, warn });
    expect(parseEnvelope(readFileSync(stopped.linkPath), stopped.linkPath).kind).toBe('dsse');
    expect([...stopped.link.materials.keys()]).toEqual(['a.txt']);
  });

  it('stop refuses a name that is not a safe step name before touching anything', async () => {
    await expect(recordStop({ name: 'a/b', keyPath, products: [], cwd: root, warn })).rejects.toMatchObject({ code: 'E_STEP_NAME' });
  });
});

describe('matchProducts', () => {
  const digestsOf = (text: string): Map<string, string> => new Map([['sha256', createHashHex('sha256', text)]]);

  function linkWith(ws: string, products: Record<string, Map<string, string>>, dsse = false): string {
    const link = makeLink({ name: 'p', command: [], materials: new Map(), products: new Map(Object.entries(products)), byproducts: {} });
    const path = join(ws, 'p.link');
    writeFileSync(path, dsse ? dsseText(linkToJson(link), [key]) : metablockText(linkToJson(link), []));
    return path;
  }

  it('reports only-on-disk, only-in-link and differing artifacts', async () => {
    const ws = workspace('match', { 'same.txt': 's', 'changed.txt': 'new', 'extra.txt': 'e' });
    const linkPath = linkWith(ws, { 'same.txt': digestsOf('s'), 'changed.txt': digestsOf('old'), 'gone.txt': digestsOf('g') });
    const result = await matchProducts({ linkPath, basePath: ws, warn });
    expect(productsMatch(result)).toBe(false);
    expect(result.onlyOnDisk).toEqual(['extra.txt']);
    expect(result.onlyInLink).toEqual(['gone.txt']);
    expect(result.differ.map((d) => d.name)).toEqual(['changed.txt']);
  });

  it('compares the algorithms both sides have: an extra md5 in the link is ignored, sha512-only links are hashed with sha512', async () => {
    const ws = workspace('algorithms', { 'a.txt': 'a' });
    const both = new Map([...digestsOf('a'), ['md5', createHashHex('md5', 'a')]]);
    expect(productsMatch(await matchProducts({ linkPath: linkWith(ws, { 'a.txt': both }, true), basePath: ws, warn }))).toBe(true);
    const sha512 = new Map([['sha512', createHashHex('sha512', 'a')]]);
    expect(productsMatch(await matchProducts({ linkPath: linkWith(ws, { 'a.txt': sha512 }), basePath: ws, warn }))).toBe(true);
  });

  it('a link whose digests share no algorithm with the disk does not match (md5 only)', async () => {
    const ws = workspace('md5', { 'a.txt': 'a' });
    const result = await matchProducts({ linkPath: linkWith(ws, { 'a.txt': new Map([['md5', createHashHex('md5', 'a')]]) }), basePath: ws, warn });
    expect(result.differ.map((d) => d.name)).toEqual(['a.txt']);
  });
});

function createHashHex(algorithm: string, text: string): string {
  return createHash(algorithm).update(text).digest('hex');
}

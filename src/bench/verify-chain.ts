import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonObject, JsonValue } from '../canonical/json.js';
import { loadSigningKeyFile } from '../crypto/keyfiles.js';
import { publicKeyToObject } from '../crypto/keys.js';
import { metablockText } from '../model/envelope.js';
import { linkFileName } from '../model/link.js';

/**
 * The verify benchmark's supply chains. Keys are made by in-toto-keygen; the links and the
 * layout are written and signed by our Metablock writer, which produces the bytes the
 * reference's `Metablock.dump` does (the interop tests check that), so both verifiers read the
 * very same files.
 * - {@link ensureVerifyChain} (issue 4): three steps, `fetch` -> `train` -> `package`, each
 *   link with N materials and N products (fetch: products only), chained by MATCH rules.
 * - {@link ensureBuildChain} (issue 18): a build, `checkout` -> `build` -> `package`, with
 *   50,000 source files and 50,000 built files, chained by `MATCH ... IN prefix ... WITH ...
 *   IN prefix ... FROM` rules, about 43 MB of links.
 * Every rule list ends in `DISALLOW *`.
 */

export interface Chain {
  readonly dir: string;
  readonly layout: string;
  readonly ownerPub: string;
  readonly linkDir: string;
}

function digest(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}

function artifacts(prefix: string, count: number, salt: string, name = (i: number, width: number): string => `${String(Math.floor(i / 1000)).padStart(3, '0')}/f${String(i).padStart(width, '0')}.bin`): JsonObject {
  const object: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
  const width = String(count - 1).length;
  for (let i = 0; i < count; i++) object[`${prefix}/${name(i, width)}`] = { sha256: digest(`${salt}${i}`) };
  return object;
}

/** Both maps' entries in one object (the prefixes keep names apart). */
function merged(...maps: JsonObject[]): JsonObject {
  return Object.assign(Object.create(null) as Record<string, JsonValue>, ...maps) as JsonObject;
}

/**
 * The signed part of a link for a step named `name` that ran the command [name] and succeeded;
 * `extra` replaces any field (the verify tests build their chains with it too).
 */
export function linkJson(name: string, materials: JsonObject, products: JsonObject, extra: Partial<Record<string, JsonValue>> = {}): JsonObject {
  return {
    _type: 'link',
    byproducts: { 'return-value': 0, stderr: '', stdout: '' },
    command: [name],
    environment: {},
    materials,
    name,
    products,
    ...(extra as Record<string, JsonValue>),
  };
}

const step = (name: string, keyid: string, materials: string[][], products: string[][]): JsonObject => ({
  _type: 'step',
  expected_command: [name],
  expected_materials: materials,
  expected_products: products,
  name,
  pubkeys: [keyid],
  threshold: 1,
});

/**
 * Generates the chain in `dir` (reused when complete).
 * @throws when in-toto-keygen is missing or a file cannot be written
 */
export function ensureVerifyChain(dir: string, count: number, env: NodeJS.ProcessEnv): Chain {
  const chain = { dir, layout: join(dir, 'root.layout'), ownerPub: join(dir, 'owner.pub'), linkDir: join(dir, 'links') };
  const marker = join(dir, `.complete-${count}`);
  if (existsSync(marker)) return chain;
  mkdirSync(chain.linkDir, { recursive: true });
  const names = ['owner', 'fetch', 'train', 'package'];
  for (const name of names) {
    if (!existsSync(join(dir, name))) execFileSync('in-toto-keygen', ['-t', 'ed25519', join(dir, name)], { env, stdio: 'pipe' });
  }
  const [owner, fetch, train, pack] = names.map((n) => loadSigningKeyFile(join(dir, n)));
  if (!owner || !fetch || !train || !pack) throw new Error('keys missing');
  const data = artifacts('data', count, 'data');
  const model = artifacts('model', count, 'model');
  const dist = artifacts('dist', count, 'dist');
  writeFileSync(join(chain.linkDir, linkFileName('fetch', fetch.keyid)), metablockText(linkJson('fetch', {}, data), [fetch]));
  writeFileSync(join(chain.linkDir, linkFileName('train', train.keyid)), metablockText(linkJson('train', data, model), [train]));
  writeFileSync(join(chain.linkDir, linkFileName('package', pack.keyid)), metablockText(linkJson('package', model, dist), [pack]));
  const keys: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
  for (const key of [fetch, train, pack]) keys[key.keyid] = publicKeyToObject(key.public);
  const layout: JsonObject = {
    _type: 'layout',
    expires: '2099-01-01T00:00:00Z',
    inspect: [],
    keys,
    readme: `verify benchmark: 3 steps, ${count} artifacts each`,
    steps: [
      step('fetch', fetch.keyid, [['DISALLOW', '*']], [['CREATE', 'data/*'], ['DISALLOW', '*']]),
      step(
        'train',
        train.keyid,
        [['MATCH', '*', 'WITH', 'PRODUCTS', 'FROM', 'fetch'], ['DISALLOW', '*']],
        [['CREATE', 'model/*'], ['DISALLOW', '*']],
      ),
      step(
        'package',
        pack.keyid,
        [['MATCH', 'model/*', 'WITH', 'PRODUCTS', 'FROM', 'train'], ['DISALLOW', '*']],
        [['CREATE', 'dist/*'], ['DISALLOW', '*']],
      ),
    ],
  };
  writeFileSync(chain.layout, metablockText(layout, [owner]));
  writeFileSync(marker, '');
  return chain;
}

/** Source and built file names of the build chain: a tree of packages and modules. */
const sourceName = (i: number): string => `project/components/pkg${String(Math.floor(i / 250)).padStart(3, '0')}/module_${String(i).padStart(6, '0')}.py`;
const builtName = (i: number): string => `project/components/pkg${String(Math.floor(i / 250)).padStart(3, '0')}/module_${String(i).padStart(6, '0')}.pyc`;

/**
 * The issue 18 build chain in `dir` (reused when complete), `count` (50,000) sources:
 * - checkout (alice): products `repo/src/...` (the sources);
 * - build (bob): materials `src/...` (the sources, checked out under another prefix), products
 *   `src/...` unchanged plus `out/...` (one built file per source);
 * - package (carol): materials `stage/...` (the built files, staged under another prefix),
 *   products the same plus `app.tar.gz`.
 * Rules: build `MATCH * IN src WITH PRODUCTS IN repo/src FROM checkout`; its products `MATCH *
 * IN src WITH MATERIALS IN src FROM build`, `CREATE out/*`; package `MATCH * IN stage WITH
 * PRODUCTS IN out FROM build`, then products `MATCH * IN stage WITH MATERIALS IN stage FROM
 * package`, `CREATE app.tar.gz`; each list ending in `DISALLOW *`.
 * @throws when in-toto-keygen is missing or a file cannot be written
 */
export function ensureBuildChain(dir: string, count: number, env: NodeJS.ProcessEnv): Chain {
  const chain = { dir, layout: join(dir, 'root.layout'), ownerPub: join(dir, 'owner.pub'), linkDir: join(dir, 'links') };
  const marker = join(dir, `.complete-build-${count}`);
  if (existsSync(marker)) return chain;
  mkdirSync(chain.linkDir, { recursive: true });
  const names = ['owner', 'alice', 'bob', 'carol'];
  for (const name of names) {
    if (!existsSync(join(dir, name))) execFileSync('in-toto-keygen', ['-t', 'ed25519', join(dir, name)], { env, stdio: 'pipe' });
  }
  const [owner, alice, bob, carol] = names.map((n) => loadSigningKeyFile(join(dir, n)));
  if (!owner || !alice || !bob || !carol) throw new Error('keys missing');
  const sources = (prefix: string): JsonObject => artifacts(prefix, count, 'source', sourceName);
  const built = (prefix: string): JsonObject => artifacts(prefix, count, 'built', builtName);
  const tarball: JsonObject = { 'app.tar.gz': { sha256: digest('app.tar.gz') } };
  writeFileSync(join(chain.linkDir, linkFileName('checkout', alice.keyid)), metablockText(linkJson('checkout', {}, sources('repo/src')), [alice]));
  writeFileSync(join(chain.linkDir, linkFileName('build', bob.keyid)), metablockText(linkJson('build', sources('src'), merged(sources('src'), built('out'))), [bob]));
  writeFileSync(join(chain.linkDir, linkFileName('package', carol.keyid)), metablockText(linkJson('package', built('stage'), merged(built('stage'), tarball)), [carol]));
  const keys: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
  for (const key of [alice, bob, carol]) keys[key.keyid] = publicKeyToObject(key.public);
  const layout: JsonObject = {
    _type: 'layout',
    expires: '2099-01-01T00:00:00Z',
    inspect: [],
    keys,
    readme: `verify benchmark: a build of ${count} sources into ${count} built files`,
    steps: [
      step('checkout', alice.keyid, [['DISALLOW', '*']], [['CREATE', 'repo/src/*'], ['DISALLOW', '*']]),
      step(
        'build',
        bob.keyid,
        [['MATCH', '*', 'IN', 'src', 'WITH', 'PRODUCTS', 'IN', 'repo/src', 'FROM', 'checkout'], ['DISALLOW', '*']],
        [['MATCH', '*', 'IN', 'src', 'WITH', 'MATERIALS', 'IN', 'src', 'FROM', 'build'], ['CREATE', 'out/*'], ['DISALLOW', '*']],
      ),
      step(
        'package',
        carol.keyid,
        [['MATCH', '*', 'IN', 'stage', 'WITH', 'PRODUCTS', 'IN', 'out', 'FROM', 'build'], ['DISALLOW', '*']],
        [['MATCH', '*', 'IN', 'stage', 'WITH', 'MATERIALS', 'IN', 'stage', 'FROM', 'package'], ['CREATE', 'app.tar.gz'], ['DISALLOW', '*']],
      ),
    ],
  };
  writeFileSync(chain.layout, metablockText(layout, [owner]));
  writeFileSync(marker, '');
  return chain;
}

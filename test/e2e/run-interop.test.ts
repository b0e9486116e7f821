import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBin } from '../helpers/bin.js';
import { REFERENCE_PYTHON, referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { cleanEnv, linkIn, makeKey, sha256 } from './helpers/step.js';

/**
 * intoto-run against the reference in-toto-run 1.3.1: for the same files, key, flags and
 * command the link files are byte for byte the same (ed25519 signatures are deterministic),
 * and our links pass the reference's in-toto-verify.
 */

const haveReference = referenceAvailable();

/** Two identical workspaces (one per tool), a link directory each, and a reference-safe environment. */
function twins(root: string, name: string, files: Record<string, string>): { ours: string; theirs: string; oursLinks: string; theirLinks: string } {
  const base = join(root, name);
  const made = { ours: join(base, 'ours'), theirs: join(base, 'theirs'), oursLinks: join(base, 'ours-links'), theirLinks: join(base, 'their-links') };
  for (const dir of Object.values(made)) mkdirSync(dir, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    for (const ws of [made.ours, made.theirs]) {
      mkdirSync(join(ws, path, '..'), { recursive: true });
      writeFileSync(join(ws, path), content);
    }
  }
  return made;
}

describe.skipIf(!haveReference)('intoto-run and in-toto-run write the same link', () => {
  const root = tempDir('intoto-e2e-interop-');
  const home = join(root, 'home');
  mkdirSync(home);
  const env = cleanEnv({ HOME: home });
  const key = makeKey(join(root, 'keys'), 'alice');

  const cases: { title: string; files: Record<string, string>; args: string[]; oursExit?: number }[] = [
    {
      title: 'materials, products, recorded streams and a command',
      files: { 'src/main.py': 'print(1)\n', 'data/train.csv': 'x,y\n1,2\n', 'README.md': '# r\n' },
      args: ['-m', 'src', 'data', '-p', '.', '-s', '--', 'sh', '-c', 'printf "line1\\r\\nline2\\n"; echo warn >&2; mkdir -p out; cp data/train.csv out/model.bin'],
    },
    { title: 'no -s: empty streams, the return value kept', files: { 'a.txt': 'a\n' }, args: ['-m', 'a.txt', '-p', 'a.txt', '--', 'sh', '-c', 'echo hidden'] },
    { title: '-x: no command, empty byproducts', files: { 'doc.pdf': '%PDF\n', 'sub/x': 'x' }, args: ['-m', 'doc.pdf', 'sub', '-x'] },
    {
      title: '--exclude, --lstrip-paths and --base-path',
      files: { 'proj/keep.txt': 'k\n', 'proj/skip.log': 'l\n', 'proj/deep/k2.txt': 'k2\n' },
      args: ['--base-path', 'proj', '-m', '.', '--exclude', '*.log', '--lstrip-paths', 'deep/', '-x'],
    },
    { title: 'unicode and spaces in names', files: { 'données/été 1.csv': 'é\n', 'naïve.txt': 'n\n' }, args: ['-p', '.', '-x'] },
    { title: 'a failing command (the reference exits 0, we exit 1: same link)', files: { 'in.txt': 'i\n' }, args: ['-m', 'in.txt', '-p', '.', '-s', '--', 'sh', '-c', 'echo oops >&2; exit 7'], oursExit: 1 },
  ];

  for (const c of cases) {
    it(`byte-identical: ${c.title}`, () => {
      const t = twins(root, c.title.replace(/\W+/g, '-'), c.files);
      const theirs = run('in-toto-run', ['-n', 'build', '-k', key, '-t', 'ed25519', '-d', t.theirLinks, ...c.args], { cwd: t.theirs, env });
      expect(theirs.status, theirs.stderr).toBe(0);
      const ours = runBin('intoto-run', ['-n', 'build', '-k', key, '-d', t.oursLinks, ...c.args], { cwd: t.ours, env });
      expect(ours.status, ours.stderr).toBe(c.oursExit ?? 0);
      const [theirFile] = readdirSync(t.theirLinks);
      const [ourFile] = readdirSync(t.oursLinks);
      expect(ourFile).toBe(theirFile);
      expect(readFileSync(join(t.oursLinks, ourFile!), 'utf8')).toBe(readFileSync(join(t.theirLinks, theirFile!), 'utf8'));
    });
  }

  it('our links pass the reference in-toto-verify (a two-step layout made with the reference library)', () => {
    const ws = join(root, 'verify');
    mkdirSync(ws);
    const owner = makeKey(join(root, 'owner-keys'), 'owner');
    writeFileSync(join(ws, 'data.csv'), 'name,value\nx,1\n');
    const layout = `
from in_toto.models.layout import Layout, Step
from in_toto.models.metadata import Metablock
from securesystemslib.interface import import_ed25519_privatekey_from_file, import_ed25519_publickey_from_file
owner = import_ed25519_privatekey_from_file(${JSON.stringify(owner)})
func = import_ed25519_publickey_from_file(${JSON.stringify(`${key}.pub`)})
layout = Layout()
layout.expires = "2036-01-01T00:00:00Z"
layout.add_functionary_key(func)
fetch = Step(name="fetch")
fetch.pubkeys = [func["keyid"]]
fetch.add_product_rule_from_string("CREATE data.csv")
fetch.add_product_rule_from_string("DISALLOW *")
train = Step(name="train")
train.pubkeys = [func["keyid"]]
train.set_expected_command_from_string("sh -c 'tr a-z A-Z < data.csv > model.bin'")
train.add_material_rule_from_string("MATCH data.csv WITH PRODUCTS FROM fetch")
train.add_material_rule_from_string("DISALLOW *")
train.add_product_rule_from_string("ALLOW data.csv")
train.add_product_rule_from_string("CREATE model.bin")
train.add_product_rule_from_string("DISALLOW *")
layout.steps = [fetch, train]
m = Metablock(signed=layout)
m.sign(owner)
m.dump("root.layout")
`;
    const made = run(REFERENCE_PYTHON, ['-c', layout], { cwd: ws, env });
    expect(made.status, made.stderr).toBe(0);
    const runIn = (args: string[]): void => {
      const result = runBin('intoto-run', ['-k', key, '--exclude', '*.link*', '*.layout', ...args], { cwd: ws, env });
      expect(result.status, result.stderr).toBe(0);
    };
    runIn(['-n', 'fetch', '-p', '.', '-x']);
    runIn(['-n', 'train', '-m', '.', '-p', '.', '--', 'sh', '-c', 'tr a-z A-Z < data.csv > model.bin']);
    const verified = run('in-toto-verify', ['-l', 'root.layout', '-k', `${owner}.pub`, '-t', 'ed25519'], { cwd: ws, env });
    expect(verified.status, verified.stderr).toBe(0);
    // Control: a product changed after the step fails the reference's verification.
    const tampered = join(root, 'verify-tampered');
    cpSync(ws, tampered, { recursive: true });
    const { path } = linkIn(tampered, 'train');
    const text = readFileSync(path, 'utf8').replace(sha256('NAME,VALUE\nX,1\n'), sha256('evil'));
    writeFileSync(path, text);
    const failed = run('in-toto-verify', ['-l', 'root.layout', '-k', `${owner}.pub`, '-t', 'ed25519'], { cwd: tampered, env });
    expect(failed.status).toBe(1);
  });

  it('ignores .in_totorc and IN_TOTO_* variables, which change what the reference records', () => {
    const t = twins(root, 'rc-files', { 'model.pkl': 'm\n', 'notes.txt': 't\n' });
    for (const ws of [t.ours, t.theirs]) writeFileSync(join(ws, '.in_totorc'), '[settings]\nARTIFACT_EXCLUDE_PATTERNS=*.pkl:*.bak\n');
    const rcEnv = { ...env, IN_TOTO_ARTIFACT_EXCLUDE_PATTERNS: '*.pkl:*.txt', IN_TOTO_LINK_CMD_EXEC_TIMEOUT: '1' };
    const theirs = run('in-toto-run', ['-n', 'build', '-k', key, '-t', 'ed25519', '-d', t.theirLinks, '-p', '.', '-x'], { cwd: t.theirs, env: rcEnv });
    expect(theirs.status, theirs.stderr).toBe(0);
    expect(Object.keys(linkIn(t.theirLinks, 'build').link.signed.products)).not.toContain('model.pkl');
    const ours = runBin('intoto-run', ['-n', 'build', '-k', key, '-d', t.oursLinks, '-p', '.', '-x'], { cwd: t.ours, env: rcEnv });
    expect(ours.status, ours.stderr).toBe(0);
    expect(Object.keys(linkIn(t.oursLinks, 'build').link.signed.products).sort()).toEqual(['.in_totorc', 'model.pkl', 'notes.txt']);
    rmSync(join(root, 'rc-files'), { recursive: true, force: true });
  });
});

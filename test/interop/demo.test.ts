import { appendFileSync, chmodSync, copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBin } from '../helpers/bin.js';
import { REFERENCE_PYTHON, referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { sharedPath } from '../helpers/shared.js';

/**
 * The official in-toto demo (github.com/in-toto/demo), replayed with our tools in place of the
 * reference's: the same command lines its run_demo.py types, in Alice's, Bob's and Carl's
 * directories, with its keys as fetched (../shared/peer/fixtures/demo@*, read there).
 *
 * - in-toto 3.0 (demo HEAD, 056e6e0): PEM keys with in-toto 2.x/3.x keyids (210dcc50 for Bob,
 *   be06db20 for Carl), `--signing-key`, DSSE, and the layout its create_layout.py makes
 *   (../shared/peer/cases/M07-layout, signed by Alice's key); verified with its own command
 *   line (`--verification-keys`) and the older README's (`--layout-key`, an abbreviation).
 * - in-toto 1.3.1 (demo f99c895): `--key`, Metablock links named with the 1.3.1 keyids
 *   (776a00e2, 2f89b927), the layout made and signed by the reference library here; both
 *   verifiers verify the same final product. And its DSSE variant (demo c7d2cfa, in-toto 1.4):
 *   the same with `--use-dsse` and the layout re-signed as DSSE.
 * Each flow then plays the demo's attack (Carl packages a tampered foo.py): it must fail.
 *
 * The demo clones github.com/in-toto/demo-project; no network here, so Bob clones a git bundle
 * of a repository made here (our own foo.py) beside his keys, as the peer harness does. The
 * recorded command then differs from the layout's expected command: a warning, as in-toto's.
 */

const PEER = sharedPath('peer');
const haveReference = referenceAvailable();

interface Flow {
  readonly keys: string;
  /** The flags that name the signing key, as the demo of that version types them. */
  readonly keyFlag: string;
  readonly dsse: boolean;
  /** Links' keyid prefixes, for the names run_demo.py copies. */
  readonly bob: string;
  readonly carl: string;
}

function git(args: readonly string[], cwd: string): void {
  const result = run('git', ['-c', 'user.name=demo', '-c', 'user.email=demo@example.com', ...args], { cwd });
  expect(result.status, result.stderr).toBe(0);
}

/** Alice's, Bob's and Carl's directories with their keys, and Bob's bundle of demo-project. */
function setUp(root: string, keys: string): string {
  for (const [who, dir] of [['alice', 'owner_alice'], ['bob', 'functionary_bob'], ['carl', 'functionary_carl']] as const) {
    mkdirSync(join(root, dir), { recursive: true });
    for (const file of [who, `${who}.pub`]) {
      copyFileSync(join(keys, dir, file), join(root, dir, file));
      chmodSync(join(root, dir, file), 0o600);
    }
  }
  const source = join(root, 'source', 'demo-project');
  mkdirSync(source, { recursive: true });
  writeFileSync(join(source, 'foo.py'), 'VERSION = "foo-v0"\n\nprint("Hello in-toto")\n');
  git(['init', '-q', '.'], source);
  git(['add', 'foo.py'], source);
  git(['commit', '-q', '-m', 'demo project'], source);
  git(['bundle', 'create', '-q', join(root, 'functionary_bob', 'demo-project.bundle'), 'HEAD'], source);
  return root;
}

function ours(tool: string, args: readonly string[], cwd: string): void {
  const result = runBin(tool, args, { cwd });
  expect(result.status, `${tool} ${args.join(' ')}\n${result.stderr}`).toBe(0);
  expect(result.stderr).not.toContain('E_INTERNAL');
}

/** run_demo.py's supply chain, Bob's and Carl's commands with our tools. */
function supplyChain(root: string, flow: Flow): void {
  const dsse = flow.dsse ? ['--use-dsse'] : [];
  const bob = join(root, 'functionary_bob');
  ours('intoto-run', ['--verbose', ...dsse, '--step-name', 'clone', '--products', 'demo-project/foo.py', flow.keyFlag, 'bob', '--', 'git', 'clone', 'demo-project.bundle', 'demo-project'], bob);
  ours('intoto-record', ['start', '--verbose', ...dsse, '--step-name', 'update-version', flow.keyFlag, 'bob', '--materials', 'demo-project/foo.py'], bob);
  writeFileSync(join(bob, 'demo-project', 'foo.py'), 'VERSION = "foo-v1"\n\nprint("Hello in-toto")\n');
  ours('intoto-record', ['stop', '--verbose', ...dsse, '--step-name', 'update-version', flow.keyFlag, 'bob', '--products', 'demo-project/foo.py'], bob);
  cpSync(join(bob, 'demo-project'), join(root, 'functionary_carl', 'demo-project'), { recursive: true });
  pack(root, flow);
}

function pack(root: string, flow: Flow): void {
  const dsse = flow.dsse ? ['--use-dsse'] : [];
  const carl = join(root, 'functionary_carl');
  ours('intoto-run', ['--verbose', ...dsse, '--step-name', 'package', '--materials', 'demo-project/foo.py', '--products', 'demo-project.tar.gz', flow.keyFlag, 'carl', '--record-streams', '--', 'tar', '--exclude', '.git', '-zcvf', 'demo-project.tar.gz', 'demo-project'], carl);
}

/** "Create final product": the files run_demo.py copies (it names the links by keyid), in a fresh directory. */
function finalProduct(root: string, flow: Flow, name: string): string {
  const out = join(root, name);
  mkdirSync(out);
  const copies: [string, string][] = [
    ['owner_alice/root.layout', 'root.layout'],
    [`functionary_bob/clone.${flow.bob}.link`, `clone.${flow.bob}.link`],
    [`functionary_bob/update-version.${flow.bob}.link`, `update-version.${flow.bob}.link`],
    [`functionary_carl/package.${flow.carl}.link`, `package.${flow.carl}.link`],
    ['functionary_carl/demo-project.tar.gz', 'demo-project.tar.gz'],
    ['owner_alice/alice.pub', 'alice.pub'],
  ];
  for (const [from, to] of copies) copyFileSync(join(root, from), join(out, to));
  return out;
}

function verifyOurs(dir: string, args: readonly string[]): { status: number | null; stderr: string } {
  const result = runBin('intoto-verify', args, { cwd: dir });
  expect(result.stderr).not.toContain('E_INTERNAL');
  return { status: result.status, stderr: result.stderr + result.stdout };
}

/** The demo layout, made and signed by the reference library (in-toto 1.3.1 API), as create_layout.py does. */
const CREATE_LAYOUT_PY = `
import sys
from in_toto.models.layout import Layout, Step, Inspection
from in_toto.models.metadata import Metablock
from securesystemslib.interface import import_rsa_privatekey_from_file, import_rsa_publickey_from_file
alice = import_rsa_privatekey_from_file("alice")
bob = import_rsa_publickey_from_file("../functionary_bob/bob.pub")
carl = import_rsa_publickey_from_file("../functionary_carl/carl.pub")
layout = Layout()
layout.set_relative_expiration(months=4)
layout.add_functionary_key(bob)
layout.add_functionary_key(carl)
clone = Step(name="clone")
clone.pubkeys = [bob["keyid"]]
clone.set_expected_command_from_string("git clone https://github.com/in-toto/demo-project.git")
clone.add_product_rule_from_string("CREATE demo-project/foo.py")
clone.add_product_rule_from_string("DISALLOW *")
update = Step(name="update-version")
update.pubkeys = [bob["keyid"]]
update.add_material_rule_from_string("MATCH demo-project/* WITH PRODUCTS FROM clone")
update.add_material_rule_from_string("DISALLOW *")
update.add_product_rule_from_string("MODIFY demo-project/foo.py")
update.add_product_rule_from_string("DISALLOW *")
package = Step(name="package")
package.pubkeys = [carl["keyid"]]
package.set_expected_command_from_string("tar --exclude .git -zcvf demo-project.tar.gz demo-project")
package.add_material_rule_from_string("MATCH demo-project/* WITH PRODUCTS FROM update-version")
package.add_material_rule_from_string("DISALLOW *")
package.add_product_rule_from_string("CREATE demo-project.tar.gz")
package.add_product_rule_from_string("DISALLOW *")
untar = Inspection(name="untar")
untar.set_run_from_string("tar xzf demo-project.tar.gz")
for rule in ["MATCH demo-project.tar.gz WITH PRODUCTS FROM package", "ALLOW .keep", "ALLOW alice.pub", "ALLOW root.layout", "ALLOW *.link", "DISALLOW *"]:
    untar.add_material_rule_from_string(rule)
for rule in ["MATCH demo-project/foo.py WITH PRODUCTS FROM update-version", "ALLOW demo-project/.git/*", "ALLOW demo-project.tar.gz", "ALLOW .keep", "ALLOW alice.pub", "ALLOW root.layout", "ALLOW *.link", "DISALLOW *"]:
    untar.add_product_rule_from_string(rule)
layout.steps = [clone, update, package]
layout.inspect = [untar]
metablock = Metablock(signed=layout)
metablock.sign(alice)
metablock.dump("root.layout")
`;

describe.skipIf(PEER === undefined)('the in-toto demo, run with our tools in place of the reference', () => {
  const root = tempDir('intoto-demo-');

  it('in-toto 3.0 (demo HEAD): --signing-key, DSSE, 2.x keyids; passes, and Carl packaging a tampered foo.py fails', () => {
    const flow: Flow = { keys: join(PEER ?? '', 'fixtures', 'demo@056e6e0'), keyFlag: '--signing-key', dsse: true, bob: '210dcc50', carl: 'be06db20' };
    const dir = setUp(join(root, 'v3'), flow.keys);
    copyFileSync(join(PEER ?? '', 'cases', 'M07-layout', 'root.layout'), join(dir, 'owner_alice', 'root.layout'));
    supplyChain(dir, flow);
    expect(readdirSync(join(dir, 'functionary_bob')).filter((f) => f.endsWith('.link')).sort()).toEqual(['clone.210dcc50.link', 'update-version.210dcc50.link']);
    const out = finalProduct(dir, flow, 'final_product');
    // The demo's own verify command line (in-toto 3.0), and the one its README still shows.
    const verified = verifyOurs(out, ['--verbose', '--layout', 'root.layout', '--verification-keys', 'alice.pub']);
    expect(verified.status, verified.stderr).toBe(0);
    expect(verifyOurs(out, ['--verbose', '--layout', 'root.layout', '--layout-key', 'alice.pub']).status).toBe(0);

    appendFileSync(join(dir, 'functionary_carl', 'demo-project', 'foo.py'), 'something evil\n');
    pack(dir, flow);
    const tampered = verifyOurs(finalProduct(dir, flow, 'final_product_tampered'), ['--verbose', '--layout', 'root.layout', '--verification-keys', 'alice.pub']);
    expect(tampered.status).toBe(1);
    expect(tampered.stderr).toMatch(/FAIL E_RULE_DISALLOW: .*demo-project\/foo\.py/);
  });

  for (const dsse of [false, true]) {
    it.skipIf(!haveReference)(`in-toto 1.3.1 (demo f99c895${dsse ? ', DSSE as demo c7d2cfa' : ''}): --key, 1.3.1 keyids; the reference agrees on both verdicts`, () => {
      const flow: Flow = { keys: join(PEER ?? '', 'fixtures', 'demo@f99c895'), keyFlag: '--key', dsse, bob: '776a00e2', carl: '2f89b927' };
      const dir = setUp(join(root, dsse ? 'v1-dsse' : 'v1'), flow.keys);
      const alice = join(dir, 'owner_alice');
      const made = run(REFERENCE_PYTHON, ['-c', CREATE_LAYOUT_PY], { cwd: alice });
      expect(made.status, made.stderr).toBe(0);
      if (dsse) ours('intoto-sign', ['-f', 'root.layout', '-k', 'alice', '--use-dsse'], alice);
      supplyChain(dir, flow);
      const out = finalProduct(dir, flow, 'final_product');
      expect(verifyOurs(out, ['--verbose', '--layout', 'root.layout', '--layout-key', 'alice.pub']).status).toBe(0);
      if (!dsse) {
        const reference = run('in-toto-verify', ['--verbose', '--layout', 'root.layout', '--layout-key', 'alice.pub'], { cwd: out });
        expect(reference.status, reference.stderr).toBe(0);
      }

      appendFileSync(join(dir, 'functionary_carl', 'demo-project', 'foo.py'), 'something evil\n');
      pack(dir, flow);
      const tamperedDir = finalProduct(dir, flow, 'final_product_tampered');
      expect(verifyOurs(tamperedDir, ['--layout', 'root.layout', '--layout-key', 'alice.pub']).status).toBe(1);
      if (!dsse) expect(run('in-toto-verify', ['--layout', 'root.layout', '--layout-key', 'alice.pub'], { cwd: tamperedDir }).status).toBe(1);
      expect(readFileSync(join(tamperedDir, 'root.layout'), 'utf8')).toContain(dsse ? 'payloadType' : '"signed"');
    });
  }
});

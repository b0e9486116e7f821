import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPublicKeyFile } from '../../src/crypto/keyfiles.js';
import { runBin } from '../helpers/bin.js';
import { REFERENCE_PYTHON, referenceAvailable, run, runOk, tempDir } from '../helpers/reference.js';

/**
 * A whole supply chain built by the reference (in-toto 1.3.1): its keys (ed25519 owner, its
 * default RSA, ECDSA), its links made by in-toto-run, its layout made and signed by its
 * library, with an inspection and a sublayout. Ours must pass it; tampered copies must be
 * rejected by both verifiers (both run on the same files, verdicts compared).
 */
const haveReference = referenceAvailable();

const LAYOUT_PY = `
import sys
from in_toto.models.layout import Layout, Step, Inspection
from in_toto.models.metadata import Metablock
from securesystemslib.interface import *
K = "../keys/"
owner = import_ed25519_privatekey_from_file(K + "owner")
bob = import_rsa_publickey_from_file(K + "bob.pub")
carol_priv = import_ecdsa_privatekey_from_file(K + "carol")
carol = import_ecdsa_publickey_from_file(K + "carol.pub")
dave = import_ed25519_publickey_from_file(K + "dave.pub")
expires = sys.argv[1]

# The sublayout, signed by carol, for the step "build": dave compiles.
sub = Layout(); sub.expires = expires
sub.add_functionary_key(dave)
compile = Step(name="compile"); compile.pubkeys = [dave["keyid"]]
compile.add_material_rule_from_string("ALLOW data.csv")
compile.add_material_rule_from_string("DISALLOW *")
compile.add_product_rule_from_string("CREATE app.tar")
compile.add_product_rule_from_string("ALLOW data.csv")
compile.add_product_rule_from_string("DISALLOW *")
sub.steps = [compile]
m = Metablock(signed=sub); m.sign(carol_priv); m.dump("build.%s.link" % carol["keyid"][:8])

root = Layout(); root.expires = expires
root.add_functionary_key(bob); root.add_functionary_key(carol)
fetch = Step(name="fetch"); fetch.pubkeys = [bob["keyid"]]
fetch.add_product_rule_from_string("CREATE data.csv")
fetch.add_product_rule_from_string("DISALLOW *")
build = Step(name="build"); build.pubkeys = [carol["keyid"]]
build.add_material_rule_from_string("MATCH data.csv WITH PRODUCTS FROM fetch")
build.add_material_rule_from_string("DISALLOW *")
build.add_product_rule_from_string("CREATE app.tar")
build.add_product_rule_from_string("MATCH data.csv WITH PRODUCTS FROM fetch")
build.add_product_rule_from_string("DISALLOW *")
untar = Inspection(name="untar")
untar.set_run_from_string("tar xf app.tar")
untar.add_material_rule_from_string("MATCH app.tar WITH PRODUCTS FROM build")
untar.add_material_rule_from_string("MATCH data.csv WITH PRODUCTS FROM fetch")
untar.add_material_rule_from_string("ALLOW root.layout")
untar.add_material_rule_from_string("DISALLOW *")
untar.add_product_rule_from_string("MATCH data.csv WITH PRODUCTS FROM fetch")
untar.add_product_rule_from_string("MATCH app.tar WITH PRODUCTS FROM build")
untar.add_product_rule_from_string("ALLOW root.layout")
untar.add_product_rule_from_string("DISALLOW *")
root.steps = [fetch, build]
root.inspect = [untar]
m = Metablock(signed=root); m.sign(owner); m.dump("root.layout")
`;

describe.skipIf(!haveReference)('interop: a whole chain made by in-toto 1.3.1', () => {
  const base = tempDir('intoto-verify-interop-');
  const keys = join(base, 'keys');
  const chain = join(base, 'chain');
  let carol8 = '';

  beforeAll(() => {
    mkdirSync(keys);
    mkdirSync(chain);
    runOk('in-toto-keygen', ['-t', 'ed25519', 'owner'], { cwd: keys });
    runOk('in-toto-keygen', ['bob'], { cwd: keys }); // the reference's default type: RSA
    runOk('in-toto-keygen', ['-t', 'ecdsa', 'carol'], { cwd: keys });
    runOk('in-toto-keygen', ['-t', 'ed25519', 'dave'], { cwd: keys });
    carol8 = loadPublicKeyFile(join(keys, 'carol.pub')).keyid.slice(0, 8);
    writeFileSync(join(chain, 'data.csv'), 'name,value\nx,1\n');
    runOk('in-toto-run', ['-n', 'fetch', '-k', '../keys/bob', '-p', 'data.csv', '--', 'true'], { cwd: chain });
    const subDir = join(chain, `build.${carol8}`);
    mkdirSync(subDir);
    runOk(
      'in-toto-run',
      ['-n', 'compile', '-k', '../keys/dave', '-t', 'ed25519', '-m', 'data.csv', '-p', 'data.csv', 'app.tar', '-d', subDir, '--', 'tar', 'cf', 'app.tar', 'data.csv'],
      { cwd: chain },
    );
    runOk(REFERENCE_PYTHON, ['-c', LAYOUT_PY, '2099-01-01T00:00:00Z'], { cwd: chain });
  });

  /** A fresh copy of the chain, changed by `tamper`, verified by both; returns [reference, ours] exit codes. */
  function both(name: string, tamper: (dir: string) => void = () => undefined): [number | null, number | null, string] {
    const dir = join(base, name);
    rmSync(dir, { recursive: true, force: true });
    cpSync(chain, dir, { recursive: true });
    tamper(dir);
    const reference = run('in-toto-verify', ['-l', 'root.layout', '-k', '../keys/owner.pub', '-t', 'ed25519'], { cwd: dir });
    rmSync(join(dir, 'untar.link'), { force: true }); // the reference writes its inspection's link here
    const ours = runBin('intoto-verify', ['-l', 'root.layout', '-k', '../keys/owner.pub', '-t', 'ed25519'], { cwd: dir });
    return [reference.status, ours.status, `${reference.stderr}\n${ours.stderr}`];
  }

  it('both pass the chain as the reference made it (RSA and ECDSA links, a sublayout, an inspection)', () => {
    const [reference, ours, output] = both('valid');
    expect(output).not.toContain('FAIL');
    expect([reference, ours]).toEqual([0, 0]);
  });

  it('ours reports the sublayout and the inspection', () => {
    const dir = join(base, 'report');
    rmSync(dir, { recursive: true, force: true });
    cpSync(chain, dir, { recursive: true });
    const result = runBin('intoto-verify', ['-l', 'root.layout', '-k', '../keys/owner.pub', '--json'], { cwd: dir });
    expect(result.stderr).not.toContain('FAIL');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, any>;
    expect(report['layout'].steps[1].sublayouts[0].steps[0].name).toBe('compile');
    expect(report['layout'].inspections[0]).toMatchObject({ name: 'untar', exitCode: 0 });
  });

  it.each([
    ['a final product changed on disk', (dir: string) => writeFileSync(join(dir, 'app.tar'), 'not the tar the sublayout made')],
    ['a product digest changed in a signed link', (dir: string) => {
      const file = readdirSync(dir).find((f) => f.startsWith('fetch.'))!;
      const text = readFileSync(join(dir, file), 'utf8');
      writeFileSync(join(dir, file), text.replace(/"sha256": "([0-9a-f])/, (_, c: string) => `"sha256": "${c === '0' ? '1' : '0'}`));
    }],
    ['a link removed', (dir: string) => rmSync(join(dir, readdirSync(dir).find((f) => f.startsWith('fetch.'))!))],
    ['a link removed from the sublayout directory', (dir: string) => {
      const sub = join(dir, readdirSync(dir).find((f) => f.startsWith('build.') && !f.endsWith('.link'))!);
      for (const f of readdirSync(sub)) rmSync(join(sub, f));
    }],
    ['the layout re-signed by another key', (dir: string) => {
      runOk(REFERENCE_PYTHON, ['-c', `
from in_toto.models.metadata import Metablock
from securesystemslib.interface import import_ed25519_privatekey_from_file
m = Metablock.load("root.layout"); m.signatures = []
m.sign(import_ed25519_privatekey_from_file("../keys/dave")); m.dump("root.layout")`], { cwd: dir });
    }],
    ['an expired layout', (dir: string) => runOk(REFERENCE_PYTHON, ['-c', LAYOUT_PY, '2020-01-01T00:00:00Z'], { cwd: dir })],
  ])('both reject: %s', (name, tamper) => {
    const [reference, ours] = both(name.replace(/\W+/g, '-'), tamper);
    expect([reference, ours]).toEqual([1, 1]);
  });

  it('stricter than the reference: a link moved into another step\'s slot by a functionary authorised for both', () => {
    // Here carol (authorised for build) signs a link named "fetch" and it is placed as build's
    // link; the reference never compares the signed name with the step, we do.
    const [reference, ours] = both('name-mismatch', (dir) => {
      runOk('in-toto-run', ['-n', 'fetch', '-k', '../keys/carol', '-t', 'ecdsa', '-m', 'data.csv', '-p', 'data.csv', 'app.tar', '--', 'true'], { cwd: dir });
      const file = readdirSync(dir).find((f) => f === `fetch.${carol8}.link`)!;
      cpSync(join(dir, file), join(dir, `build.${carol8}.link`));
      rmSync(join(dir, file));
    });
    expect(ours).toBe(1);
    expect(reference).toBe(0);
  });
});

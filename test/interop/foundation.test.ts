import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPublicKeyFile, loadSigningKeyFile } from '../../src/crypto/keyfiles.js';
import { isSignedBy, unverifiedPayload, verifiedPayload } from '../../src/model/envelope.js';
import { layoutFromJson } from '../../src/model/layout.js';
import { linkFromJson } from '../../src/model/link.js';
import { readEnvelopeFile } from '../../src/model/metadata.js';
import { runBin } from '../helpers/bin.js';
import { REFERENCE_PYTHON, referenceAvailable, run, runOk, tempDir } from '../helpers/reference.js';

/**
 * Interop with the Python reference, run live: the reference makes keys, links and a layout
 * that ours must read and verify; ours makes keys and signatures the reference must accept.
 */
const haveReference = referenceAvailable();

describe.skipIf(!haveReference)('interop with in-toto 1.3.1: keys, signatures, metadata', () => {
  const dir = tempDir('intoto-interop-');
  let rsaKeyid = '';
  let edKeyid = '';

  beforeAll(() => {
    runOk('in-toto-keygen', ['-t', 'ed25519', 'owner'], { cwd: dir });
    runOk('in-toto-keygen', ['-t', 'ed25519', 'ed'], { cwd: dir });
    runOk('in-toto-keygen', ['rsa'], { cwd: dir }); // the reference's default: RSA
    writeFileSync(join(dir, 'input.txt'), 'input\n');
    runOk('in-toto-run', ['-n', 'build', '-k', 'rsa', '-m', 'input.txt', '-p', 'input.txt', '--', 'true'], { cwd: dir });
    runOk('in-toto-run', ['-n', 'test', '-k', 'ed', '-t', 'ed25519', '-m', 'input.txt', '-s', '--', 'echo', 'tested'], { cwd: dir });
    rsaKeyid = loadPublicKeyFile(join(dir, 'rsa.pub')).keyid;
    edKeyid = loadPublicKeyFile(join(dir, 'ed.pub')).keyid;
    runOk(
      REFERENCE_PYTHON,
      [
        '-c',
        `
from in_toto.models.layout import Layout, Step
from in_toto.models.metadata import Metablock
from securesystemslib.interface import *
owner = import_ed25519_privatekey_from_file("owner")
rsa = import_rsa_publickey_from_file("rsa.pub")
ed = import_ed25519_publickey_from_file("ed.pub")
l = Layout(); l.set_relative_expiration(days=30)
l.add_functionary_key(rsa); l.add_functionary_key(ed)
build = Step(name="build"); build.pubkeys = [rsa["keyid"]]
build.add_product_rule_from_string("ALLOW input.txt"); build.add_product_rule_from_string("DISALLOW *")
test = Step(name="test"); test.pubkeys = [ed["keyid"]]
test.add_material_rule_from_string("MATCH input.txt WITH PRODUCTS FROM build")
l.steps = [build, test]
m = Metablock(signed=l); m.sign(owner); m.dump("root.layout")
`,
      ],
      { cwd: dir },
    );
  });

  it('the reference\'s layout (ed25519 owner) verifies and loads with ours', () => {
    const envelope = readEnvelopeFile(join(dir, 'root.layout'));
    const owner = loadPublicKeyFile(join(dir, 'owner.pub'));
    const payload = verifiedPayload(envelope, owner);
    expect(payload).toBeDefined();
    const layout = layoutFromJson(payload!, 'root.layout');
    expect(layout.keys.has(rsaKeyid)).toBe(true);
    expect(layout.keys.has(edKeyid)).toBe(true);
  });

  it('the reference\'s links (its default RSA key, and ed25519) verify with the keys from its layout', () => {
    const layout = layoutFromJson(unverifiedPayload(readEnvelopeFile(join(dir, 'root.layout'))), 'root.layout');
    const build = readEnvelopeFile(join(dir, `build.${rsaKeyid.slice(0, 8)}.link`));
    const test = readEnvelopeFile(join(dir, `test.${edKeyid.slice(0, 8)}.link`));
    const buildLink = linkFromJson(verifiedPayload(build, layout.keys.get(rsaKeyid)!)!, 'build');
    const testLink = linkFromJson(verifiedPayload(test, layout.keys.get(edKeyid)!)!, 'test');
    expect(buildLink.products.has('input.txt')).toBe(true);
    expect(testLink.byproducts['stdout']).toBe('tested\n');
    expect(isSignedBy(build, layout.keys.get(edKeyid)!)).toBe(false);
  });

  it.each(['ed25519', 'rsa', 'ecdsa'])('keys from intoto-keygen -t %s are accepted by in-toto-run, with the keyid we compute', (type) => {
    const name = `ours-${type}`;
    const made = runBin('intoto-keygen', ['-t', type, name], { cwd: dir });
    expect(made.status, made.stderr).toBe(0);
    const ran = run('in-toto-run', ['-n', `step-${type}`, '-k', name, ...(type === 'rsa' ? [] : ['-t', type]), '-p', 'input.txt', '--', 'true'], { cwd: dir });
    expect(ran.status, ran.stderr).toBe(0);
    const keyid = loadPublicKeyFile(join(dir, `${name}.pub`)).keyid;
    expect(loadSigningKeyFile(join(dir, name)).keyid).toBe(keyid);
    const link = readEnvelopeFile(join(dir, `step-${type}.${keyid.slice(0, 8)}.link`));
    expect(isSignedBy(link, loadPublicKeyFile(join(dir, `${name}.pub`)))).toBe(true);
  });

  it('an encrypted key from intoto-keygen -p is accepted by in-toto-run -P', () => {
    const made = runBin('intoto-keygen', ['-p', 'enc'], { cwd: dir, input: 's3cret\n' });
    expect(made.status, made.stderr).toBe(0);
    expect(readFileSync(join(dir, 'enc'), 'utf8')).not.toContain('private');
    const ran = run('in-toto-run', ['-n', 'enc-step', '-k', 'enc', '-t', 'ed25519', '-P', 's3cret', '-p', 'input.txt', '--', 'true'], { cwd: dir });
    expect(ran.status, ran.stderr).toBe(0);
  });

  it('a layout signed by intoto-sign verifies with in-toto-verify and in-toto-sign --verify', () => {
    copyFileSync(join(dir, 'root.layout'), join(dir, 'ours.layout'));
    const signed = runBin('intoto-sign', ['-f', 'ours.layout', '-k', 'rsa'], { cwd: dir });
    expect(signed.status, signed.stderr).toBe(0);
    const verified = run('in-toto-sign', ['-f', 'ours.layout', '-k', 'rsa.pub', '--verify'], { cwd: dir });
    expect(verified.status, verified.stderr).toBe(0);
    // The whole chain: the layout re-signed by ours (owner key), checked by the reference verifier.
    const resigned = runBin('intoto-sign', ['-f', 'ours.layout', '-k', 'owner', '-t', 'ed25519'], { cwd: dir });
    expect(resigned.status, resigned.stderr).toBe(0);
    const chain = run('in-toto-verify', ['-l', 'ours.layout', '-k', 'owner.pub', '-t', 'ed25519'], { cwd: dir });
    expect(chain.status, chain.stdout + chain.stderr).toBe(0);
  });

  it('intoto-sign writes byte-for-byte what in-toto-sign writes (deterministic ed25519)', () => {
    copyFileSync(join(dir, 'root.layout'), join(dir, 'a.layout'));
    copyFileSync(join(dir, 'root.layout'), join(dir, 'b.layout'));
    runOk('in-toto-sign', ['-f', 'a.layout', '-k', 'owner', '-t', 'ed25519'], { cwd: dir });
    expect(runBin('intoto-sign', ['-f', 'b.layout', '-k', 'owner'], { cwd: dir }).status).toBe(0);
    expect(readFileSync(join(dir, 'b.layout'), 'utf8')).toBe(readFileSync(join(dir, 'a.layout'), 'utf8'));
  });

  it('intoto-sign --verify fails (exit 1) for a key that did not sign, and -a appends', () => {
    copyFileSync(join(dir, 'root.layout'), join(dir, 'c.layout'));
    const wrong = runBin('intoto-sign', ['-f', 'c.layout', '-k', 'ed.pub', '--verify'], { cwd: dir });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('E_SIGNATURE');
    expect(runBin('intoto-sign', ['-f', 'c.layout', '-k', 'ed', '-a'], { cwd: dir }).status).toBe(0);
    const both = run('in-toto-sign', ['-f', 'c.layout', '-k', 'owner.pub', 'ed.pub', '-t', 'ed25519', 'ed25519', '--verify'], { cwd: dir });
    expect(both.status, both.stderr).toBe(0);
  });

  it('usage errors exit 2 with one line', () => {
    const result = runBin('intoto-sign', ['-k', 'owner'], { cwd: dir });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(runBin('intoto-sign', ['-f', 'root.layout', '-k', 'owner', '-g'], { cwd: dir }).status).toBe(2);
  });
});

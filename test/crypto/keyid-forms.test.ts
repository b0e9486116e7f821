import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../../src/canonical/parse.js';
import { loadPublicKeyFile, loadSigningKeyFile } from '../../src/crypto/keyfiles.js';
import { keyHasKeyid, publicKeyFromObject, publicKeyInForm, publicKeyToObject } from '../../src/crypto/keys.js';
import { verifySignature } from '../../src/crypto/signatures.js';
import { InTotoError } from '../../src/errors.js';
import { isSignedBy, parseEnvelope, signatureEncodingProblem } from '../../src/model/envelope.js';
import { layoutFromJson } from '../../src/model/layout.js';
import { readEnvelopeFile } from '../../src/model/metadata.js';
import { loadLinkFile } from '../../src/verify/link-load.js';
import { REFERENCE_PYTHON, referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { sharedPath } from '../helpers/shared.js';
import { outcomeOf } from '../helpers/errors.js';

/**
 * Keys as in-toto 2.x and 3.x write them (securesystemslib >= 0.28): PEM key files, whose
 * keyid is compute_default_keyid over {keytype, scheme, keyval} with the PEM pyca/cryptography
 * writes, beside in-toto 1.3.1's (with keyid_hash_algorithms). Vectors: the keyids in-toto 2.x
 * itself wrote into its test layout for its tests/pems keys (../shared/peer case D05), the
 * ones the in-toto demo's run_demo.py names its links with (210dcc50, be06db20), and the
 * 1.3.1 keyids computed by the reference library here. Then the refusals that name what is
 * wrong: GPG, unsupported curves, hex DSSE signatures.
 */

const PEER = sharedPath('peer');
const haveReference = referenceAvailable();
const root = tempDir('intoto-keyid-forms-');


describe.skipIf(PEER === undefined)('both keyid forms of PEM keys', () => {
  const pems = join(PEER ?? '', 'fixtures', 'in-toto@9a1efed', 'tests', 'pems');

  it('in-toto 2.x wrote its PEM keys into its layout under the standard keyids we compute', () => {
    const envelope = readEnvelopeFile(join(PEER ?? '', 'cases', 'D05', 'root.layout'));
    const layoutKeyids = new Set(envelope.signatures.map((s) => s.keyid));
    for (const type of ['rsa', 'ed25519', 'ecdsa']) {
      const key = loadPublicKeyFile(join(pems, `${type}_public.pem`));
      expect(layoutKeyids.has(key.keyidForms.standard), type).toBe(true);
      // The key file's own keyid stays in-toto 1.3.1's; either one names the key.
      expect(key.keyid).toBe(key.keyidForms.legacy);
      expect(keyHasKeyid(key, key.keyidForms.standard)).toBe(true);
      expect(isSignedBy(envelope, key), type).toBe(true);
    }
  });

  it('the in-toto demo (3.0) names its links 210dcc50 (Bob) and be06db20 (Carl): the standard form', () => {
    const demo = join(PEER ?? '', 'fixtures', 'demo@056e6e0');
    expect(loadPublicKeyFile(join(demo, 'functionary_bob', 'bob.pub')).keyidForms.standard.slice(0, 8)).toBe('210dcc50');
    expect(loadPublicKeyFile(join(demo, 'functionary_carl', 'carl.pub')).keyidForms.standard.slice(0, 8)).toBe('be06db20');
    // The private key files give the same keys in either form (what --signing-key signs with).
    const bob = loadSigningKeyFile(join(demo, 'functionary_bob', 'bob'));
    expect(bob.inForm('standard').keyid.slice(0, 8)).toBe('210dcc50');
    expect(bob.inForm('legacy').keyid.slice(0, 8)).toBe('776a00e2');
  });

  it.skipIf(!haveReference)('the legacy form is what in-toto 1.3.1 computes for the same PEM files', () => {
    const script = `
import sys, json
from securesystemslib.interface import import_rsa_publickey_from_file
print(json.dumps([import_rsa_publickey_from_file(p)["keyid"] for p in sys.argv[1:]]))`;
    const files = [join(pems, 'rsa_public.pem'), join(PEER ?? '', 'fixtures', 'demo@056e6e0', 'functionary_bob', 'bob.pub')];
    const result = run(REFERENCE_PYTHON, ['-c', script, ...files]);
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(files.map((f) => loadPublicKeyFile(f).keyidForms.legacy));
  });

  it('a key object in either form is the same key (one identity: it can never count twice)', () => {
    for (const type of ['rsa', 'ed25519', 'ecdsa']) {
      const key = loadPublicKeyFile(join(pems, `${type}_public.pem`));
      const standard = publicKeyInForm(key, 'standard');
      const reread = publicKeyFromObject(publicKeyToObject(standard), { where: type });
      expect(reread.keyid).toBe(key.keyidForms.standard);
      expect(reread.identity).toBe(key.identity);
      expect(reread.keyidForms).toEqual(key.keyidForms);
    }
  });
});

describe('ECDSA curves', () => {
  it('P-521 (ecdsa-sha2-nistp521, SHA-512) signs and verifies; its key file loads with that scheme', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
    const file = join(root, 'p521.pem');
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const key = loadSigningKeyFile(file);
    expect(key.public.scheme).toBe('ecdsa-sha2-nistp521');
    const data = Buffer.from('payload');
    expect(verifySignature(key.public, key.sign(data), data)).toBe(true);
    expect(verifySignature(key.public, key.sign(data), Buffer.from('other'))).toBe(false);
  });

  it('an unsupported curve is named as such, in a key file and in a layout key claiming nistp256', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    const file = join(root, 'k1.pem');
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    let message = '';
    try {
      loadSigningKeyFile(file);
    } catch (error) {
      message = (error as InTotoError).message;
      expect((error as InTotoError).code).toBe('E_KEY_UNSUPPORTED');
    }
    expect(message).toMatch(/unsupported elliptic curve secp256k1/);
    const object = { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: publicKey.export({ type: 'spki', format: 'pem' }).toString() } };
    expect(outcomeOf(() => publicKeyFromObject(object, { where: 'k' }))).toBe('E_KEY_UNSUPPORTED');
    try {
      publicKeyFromObject(object, { where: 'k' });
    } catch (error) {
      expect((error as Error).message).toMatch(/unsupported elliptic curve secp256k1 \(the key claims ecdsa-sha2-nistp256\)/);
    }
  });

  it('a scheme we do not implement is named, with the ones we do', () => {
    const object = { keytype: 'rsa', scheme: 'rsa-pkcs1v15-sha256', keyval: { public: 'x' } };
    expect(() => publicKeyFromObject(object, { where: 'k' })).toThrow(/unsupported signature scheme "rsa-pkcs1v15-sha256" for keytype rsa: supported are rsassa-pss-sha256/);
  });
});

describe.skipIf(PEER === undefined)('GPG, refused by name', () => {
  const gpg = join(PEER ?? '', 'fixtures', 'in-toto@v1.3.1', 'tests', 'demo_files_gpg');

  it("a layout with GPG functionary keys (in-toto's demo_files_gpg) is E_KEY_UNSUPPORTED naming GPG and what to use", () => {
    const envelope = readEnvelopeFile(join(gpg, 'demo.layout.template'));
    const payload = parseJson(Buffer.from(JSON.stringify(JSON.parse(readFileSync(join(gpg, 'demo.layout.template'), 'utf8')).signed)), { source: 'x' });
    expect(envelope.kind).toBe('metablock');
    expect(() => layoutFromJson(payload, 'demo.layout.template')).toThrow(/GPG \(OpenPGP\) key: GPG keys are not supported; give the functionaries ed25519, RSA or ECDSA keys/);
    expect(outcomeOf(() => layoutFromJson(payload, 'x'))).toBe('E_KEY_UNSUPPORTED');
  });

  it('a link signed with GPG is E_KEY_UNSUPPORTED naming GPG', () => {
    const file = join(root, 'package.7b3abb26.link');
    copyFileSync(join(gpg, 'package.7b3abb26.link'), file);
    expect(() => readEnvelopeFile(file)).toThrow(/signed with GPG/);
    expect(outcomeOf(() => readEnvelopeFile(file))).toBe('E_KEY_UNSUPPORTED');
  });

  it('a GPG key block given as a key file is refused by name', () => {
    const file = join(root, 'gpg.asc');
    writeFileSync(file, '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBF\n-----END PGP PUBLIC KEY BLOCK-----\n');
    expect(() => loadPublicKeyFile(file)).toThrow(/GPG keys are not supported/);
    expect(outcomeOf(() => loadSigningKeyFile(file))).toBe('E_KEY_UNSUPPORTED');
  });
});

describe.skipIf(PEER === undefined)('DSSE signatures in the wrong encoding', () => {
  it("in-toto 1.4's hex DSSE signatures (in-toto@8e4fea3) are not accepted, and the reason names hex and base64", () => {
    const links = join(PEER ?? '', 'fixtures', 'in-toto@8e4fea3', 'tests', 'demo_dsse_files');
    const bob = loadPublicKeyFile(join(PEER ?? '', 'fixtures', 'in-toto@v1.3.1', 'tests', 'demo_files', 'bob.pub'));
    const envelope = parseEnvelope(readFileSync(join(links, 'write-code.776a00e2.link')), 'write-code.776a00e2.link');
    expect(isSignedBy(envelope, bob)).toBe(false);
    expect(signatureEncodingProblem(envelope, bob)).toMatch(/hex, not base64/);
    // A correct signature has no such problem; another key's neither.
    const carl = loadPublicKeyFile(join(PEER ?? '', 'fixtures', 'in-toto@v1.3.1', 'tests', 'demo_files', 'carl.pub'));
    expect(signatureEncodingProblem(envelope, carl)).toBeUndefined();
  });

  it('the verifier reading that link in a step slot (one-pass reader, then the general path) credits no one and keeps the reason', () => {
    const links = join(PEER ?? '', 'fixtures', 'in-toto@8e4fea3', 'tests', 'demo_dsse_files');
    const demo = join(PEER ?? '', 'fixtures', 'in-toto@v1.3.1', 'tests', 'demo_files');
    const [bob, carl] = ['bob.pub', 'carl.pub'].map((name) => loadPublicKeyFile(join(demo, name)));
    const file = join(links, 'write-code.776a00e2.link');
    const loaded = loadLinkFile(file, [carl!, bob!]);
    expect(loaded.kind).toBe('unsigned');
    expect(loaded.kind === 'unsigned' ? loaded.encodingProblem : undefined).toMatch(/hex, not base64/);
    const other = loadLinkFile(file, [carl!]);
    expect(other).toEqual({ kind: 'unsigned' });
  });
});

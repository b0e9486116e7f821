import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../src/canonical/encode.js';
import type { JsonObject } from '../../src/canonical/json.js';
import { writeKeyPair } from '../../src/crypto/keyfiles.js';
import { binPath } from '../helpers/bin.js';
import { runUnderPty } from '../helpers/pty.js';
import { tempDir } from '../helpers/reference.js';
import { key, layoutJson, writeSigned } from '../verify/chain.js';

/**
 * Issue 19, family 1: OpenSSL asks for a pass phrase on the terminal when it meets PEM
 * encryption headers it has no pass phrase for, and at a terminal that blocks forever. A key
 * we parse must never let it: not a `-k` file, not a key in a layout, not a key in a
 * sublayout (which a functionary signs, so a functionary could hang the owner's
 * intoto-verify). Each case runs our command at a pseudo-terminal (the prompt only shows with
 * one), typing nothing: it must end, with one of our codes, and never print a prompt.
 */

const root = tempDir('intoto-pem-prompt-');
const HEADERS = 'Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,29454BC6A040096B1C0E4F193B11BF56\n\n';

/** An SPKI PEM with the legacy encryption headers, the form that made OpenSSL prompt. */
function publicPemWithHeaders(): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return pem.replace('-----BEGIN PUBLIC KEY-----\n', `-----BEGIN PUBLIC KEY-----\n${HEADERS}`);
}

/** A layout key object whose public PEM carries the headers, filed under its keyid. */
function hostileKeyObject(): { keyid: string; object: JsonObject } {
  const object = { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: publicPemWithHeaders() } };
  return { keyid: createHash('sha256').update(canonicalBytes(object)).digest('hex'), object };
}

function expectNoPrompt(argv: readonly string[], cwd: string): string {
  const result = runUnderPty([process.execPath, ...argv], { cwd, seconds: 20 });
  expect(result.timedOut, `hung at the terminal: ${result.output}`).toBe(false);
  expect(result.output).not.toMatch(/pass ?phrase/i);
  expect([1, 2]).toContain(result.status);
  expect(result.output).toMatch(/\[E_[A-Z_]+\]|FAIL E_[A-Z_]+/);
  expect(result.output).not.toContain('E_INTERNAL');
  return result.output;
}

describe('attack: PEM encryption headers cannot make OpenSSL prompt at the terminal', () => {
  const pub = join(root, 'headers.pub');
  writeFileSync(pub, publicPemWithHeaders());

  it('a -k public key file with Proc-Type/DEK-Info headers (intoto-verify -k)', () => {
    const layout = join(root, 'plain.layout');
    writeSigned(layout, layoutJson([]), [key(0)]);
    const output = expectNoPrompt([binPath('intoto-verify'), '-l', layout, '-k', pub], root);
    expect(output).toMatch(/E_KEY_FORMAT/);
  });

  it('the same key file given to intoto-sign --verify and intoto layout check -k', () => {
    const layout = join(root, 'sign.layout');
    writeSigned(layout, layoutJson([]), [key(0)]);
    expectNoPrompt([binPath('intoto-sign'), '-f', layout, '-k', pub, '--verify'], root);
    const yaml = join(root, 'p.yaml');
    writeFileSync(yaml, 'expires_in: 30d\nfunctionaries: {}\nsteps: []\n');
    expectNoPrompt([binPath('intoto'), 'layout', 'check', yaml, '-k', pub], root);
  });

  it('a key inside a layout the owner signed', () => {
    const { keyid, object } = hostileKeyObject();
    const layout = layoutJson([]);
    (layout['keys'] as Record<string, JsonObject>)[keyid] = object;
    const path = join(root, 'keys.layout');
    writeSigned(path, layout, [key(0)]);
    const ownerPub = join(root, 'owner');
    writeKeyPair(key(0), ownerPub);
    const output = expectNoPrompt([binPath('intoto-verify'), '-l', path, '-k', `${ownerPub}.pub`], root);
    expect(output).toMatch(/E_KEY_FORMAT/);
  });

  it('a key inside a sublayout signed by a functionary (who must not be able to hang the owner)', () => {
    const bob = key(2);
    const dir = join(root, 'sub');
    const { keyid, object } = hostileKeyObject();
    const sublayout = layoutJson([]);
    (sublayout['keys'] as Record<string, JsonObject>)[keyid] = object;
    const layout = layoutJson([{ name: 'build', keys: [bob] }]);
    mkdirSync(dir);
    writeSigned(join(dir, 'root.layout'), layout, [key(0)]);
    writeSigned(join(dir, `build.${bob.keyid.slice(0, 8)}.link`), sublayout, [bob]);
    writeKeyPair(key(0), join(dir, 'owner'));
    expectNoPrompt([binPath('intoto-verify'), '-l', 'root.layout', '-k', 'owner.pub'], dir);
  });

  it('private keys: encrypted PKCS#8 and legacy PEM without a password (intoto-sign -k, layout sign -k)', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pkcs8 = join(root, 'enc-pkcs8.pem');
    writeFileSync(pkcs8, privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }));
    const legacy = join(root, 'enc-sec1.pem');
    writeFileSync(legacy, privateKey.export({ type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }));
    const layout = join(root, 'to-sign.layout');
    writeSigned(layout, layoutJson([]), [key(0)]);
    const yaml = join(root, 'sign.yaml');
    writeFileSync(yaml, 'expires_in: 30d\nfunctionaries: {}\nsteps: []\n');
    for (const file of [pkcs8, legacy, pub]) {
      const output = expectNoPrompt([binPath('intoto-sign'), '-f', layout, '-k', file, '-o', join(root, 'out.layout')], root);
      expect(output).toMatch(/E_KEY_PASSWORD|E_KEY_PRIVATE_EXPECTED/);
      expect(expectNoPrompt([binPath('intoto'), 'layout', 'sign', yaml, '-k', file, '-o', join(root, 'out2.layout')], root)).toMatch(/E_KEY_PASSWORD|E_KEY_PRIVATE_EXPECTED/);
    }
  });

  it('OMS: intoto model verify -k, model sign -k, and a bundle naming its key by rawBytes PEM with headers', () => {
    const model = join(root, 'model');
    mkdirSync(model);
    writeFileSync(join(model, 'weights.bin'), 'weights');
    // A public key with the headers where model verify expects one.
    expect(expectNoPrompt([binPath('intoto'), 'model', 'verify', model, '-k', pub], root)).toMatch(/E_KEY_FORMAT/);
    // Encrypted private keys where model sign expects one, without a password.
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const legacy = join(root, 'oms-enc-sec1.pem');
    writeFileSync(legacy, privateKey.export({ type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }));
    const pkcs8 = join(root, 'oms-enc-pkcs8.pem');
    writeFileSync(pkcs8, privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }));
    for (const file of [legacy, pkcs8]) {
      expect(expectNoPrompt([binPath('intoto'), 'model', 'sign', model, '-k', file, '-o', join(root, 'never.sig')], root)).toMatch(/E_KEY_PASSWORD/);
    }
    // A signer-written bundle: the key named by rawBytes (model_signing before 1.1), as PEM
    // carrying encryption headers. The verifier must not hand that text to OpenSSL.
    const plain = join(root, 'oms-plain.pem');
    writeFileSync(plain, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const ownPub = join(root, 'oms-plain.pub.pem');
    writeFileSync(ownPub, publicKey.export({ type: 'spki', format: 'pem' }));
    const sig = join(root, 'oms.sig');
    const signed = runUnderPty([process.execPath, binPath('intoto'), 'model', 'sign', model, '-k', plain, '-o', sig], { cwd: root, seconds: 20 });
    expect(signed.status, signed.output).toBe(0);
    const bundle = JSON.parse(readFileSync(sig, 'utf8')) as { verificationMaterial: Record<string, unknown> };
    bundle.verificationMaterial['publicKey'] = { rawBytes: Buffer.from(publicPemWithHeaders()).toString('base64') };
    writeFileSync(sig, JSON.stringify(bundle));
    const result = runUnderPty([process.execPath, binPath('intoto'), 'model', 'verify', model, '-k', ownPub, '--signature', sig], { cwd: root, seconds: 20 });
    expect(result.timedOut, `hung at the terminal: ${result.output}`).toBe(false);
    expect(result.output).not.toMatch(/pass ?phrase/i);
    expect(result.output).not.toContain('E_INTERNAL');
  });

  it('fuzz: PEM blocks with random labels, headers and bodies, at a terminal, through every key reader', () => {
    // One process at the pty loads them all (tsc-built library in dist/), printing each outcome.
    const labels = ['PUBLIC KEY', 'RSA PUBLIC KEY', 'PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'CERTIFICATE', 'X'];
    const headerSets = ['', HEADERS, 'Proc-Type: 4,ENCRYPTED\n\n', 'DEK-Info: DES-EDE3-CBC,0011223344556677\n\n', 'Comment: x\n\n'];
    const goodDer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const samples = fc.sample(
      fc.record({
        label: fc.constantFrom(...labels),
        headers: fc.constantFrom(...headerSets),
        body: fc.oneof(fc.constant(goodDer), fc.base64String({ minLength: 4, maxLength: 200 }), fc.constant('')),
      }),
      { numRuns: 60, seed: 19 },
    );
    const files = samples.map((s, i) => {
      const path = join(root, `fuzz-${i}.pem`);
      writeFileSync(path, `-----BEGIN ${s.label}-----\n${s.headers}${s.body.replace(/(.{64})/g, '$1\n')}\n-----END ${s.label}-----\n`);
      return path;
    });
    const listing = join(root, 'fuzz-files.json');
    writeFileSync(listing, JSON.stringify(files));
    const driver = join(root, 'fuzz-driver.mjs');
    const lib = new URL('../../dist/crypto/keyfiles.js', import.meta.url).href;
    const keys = new URL('../../dist/crypto/keys.js', import.meta.url).href;
    writeFileSync(
      driver,
      `import { readFileSync } from 'node:fs';
import { loadPublicKeyFile, loadSigningKeyFile, isEncryptedKeyFile } from ${JSON.stringify(lib)};
import { publicKeyFromObject } from ${JSON.stringify(keys)};
const outcomes = [];
for (const file of JSON.parse(readFileSync(process.argv[2], 'utf8'))) {
  const text = readFileSync(file, 'utf8');
  for (const [name, action] of [
    ['public', () => loadPublicKeyFile(file)],
    ['signing', () => loadSigningKeyFile(file)],
    ['signing+password', () => loadSigningKeyFile(file, { password: 'x' })],
    ['encrypted?', () => isEncryptedKeyFile(file)],
    ['layout key', () => publicKeyFromObject({ keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: text } }, { where: 'k' })],
  ]) {
    try { action(); outcomes.push('ok'); } catch (e) { outcomes.push(e && e.code ? e.code : 'UNTYPED ' + String(e)); }
  }
}
console.log('OUTCOMES ' + JSON.stringify(outcomes));
`,
    );
    const result = runUnderPty([process.execPath, driver, listing], { cwd: root, seconds: 60 });
    expect(result.timedOut, result.output).toBe(false);
    expect(result.output).not.toMatch(/pass ?phrase/i);
    const outcomes = JSON.parse(/OUTCOMES (.*)/.exec(result.output)?.[1] ?? '[]') as string[];
    expect(outcomes).toHaveLength(files.length * 5);
    for (const outcome of outcomes) expect(outcome).toMatch(/^(ok|E_[A-Z_]+)$/);
    expect(outcomes).not.toContain('E_INTERNAL');
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../../src/canonical/parse.js';
import { generateSigningKey, loadPublicKeyFile, loadSigningKeyFile } from '../../src/crypto/keyfiles.js';
import { makePublicKey } from '../../src/crypto/keys.js';
import { verifySignature } from '../../src/crypto/signatures.js';
import { InTotoError } from '../../src/errors.js';
import {
  DSSE_PAYLOAD_TYPE,
  dsseText,
  isSignedBy,
  metablockText,
  pae,
  parseEnvelope,
  signersOf,
  unverifiedPayload,
  verifiedPayload,
} from '../../src/model/envelope.js';
import { LIMITS } from '../../src/io/files.js';
import { codeOf } from '../helpers/errors.js';

const dsse = JSON.parse(readFileSync(new URL('../vectors/dsse.json', import.meta.url), 'utf8')) as {
  pae_vector: { payloadType: string; payload_utf8: string; pae_utf8: string };
  non_ascii_type: { payloadType: string; type_length_in_pae: number };
  ed25519_known_answer: { public_hex: string; payloadType: string; payload_b64: string; payload_length: number; sig_b64: string };
};
const FIXTURES = new URL('../fixtures/reference/', import.meta.url).pathname;
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

describe('DSSE PAE and the known-answer signature (vectors/dsse.json)', () => {
  it('encodes the PAE vector', () => {
    const v = dsse.pae_vector;
    expect(Buffer.from(pae(v.payloadType, bytes(v.payload_utf8))).toString('utf8')).toBe(v.pae_utf8);
  });
  it('counts UTF-8 bytes, not characters, of the payload type', () => {
    const v = dsse.non_ascii_type;
    expect(Buffer.from(pae(v.payloadType, new Uint8Array())).toString('utf8')).toContain(`DSSEv1 ${v.type_length_in_pae} `);
  });

  const ka = dsse.ed25519_known_answer;
  const key = makePublicKey({ keytype: 'ed25519', scheme: 'ed25519', publicValue: ka.public_hex, keyidHashAlgorithms: undefined }, 'vector');
  const payload = Buffer.from(ka.payload_b64, 'base64');
  const sig = Buffer.from(ka.sig_b64, 'base64');
  const envelope = (type: string, body: Buffer, signature: Buffer): Uint8Array =>
    bytes(JSON.stringify({ payload: body.toString('base64'), payloadType: type, signatures: [{ keyid: '', sig: signature.toString('base64') }] }));

  it('verifies the known-answer signature and returns the payload', () => {
    expect(payload.length).toBe(ka.payload_length);
    const env = parseEnvelope(envelope(ka.payloadType, payload, sig), 'vector');
    expect(verifiedPayload(env, key)).toEqual(parseJson(payload));
  });
  const mustFail: [string, () => boolean][] = [
    ['payloadType upper-cased', () => verifySignature(key, sig, pae(ka.payloadType.toUpperCase(), payload))],
    [
      'each letter of payloadType shifted by 0x100 (homoglyphs)',
      () => verifySignature(key, sig, pae(ka.payloadType.replace(/[a-z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0x100)), payload)),
    ],
    ['signature over the raw payload instead of the PAE', () => verifySignature(key, sig, payload)],
    [
      'one payload byte changed',
      () => {
        const changed = Buffer.from(payload);
        changed[10]! ^= 1;
        return verifySignature(key, sig, pae(ka.payloadType, changed));
      },
    ],
  ];
  it.each(mustFail)('must fail: %s', (_name, attempt) => {
    expect(attempt()).toBe(false);
  });
  it('refuses a payloadType other than in-toto\'s', () => {
    expect(codeOf(() => parseEnvelope(envelope('application/json', payload, sig), 'x'))).toBe('E_ENVELOPE');
  });
});

describe('Metablock and DSSE envelopes', () => {
  const key = generateSigningKey({ type: 'ed25519' });
  const other = generateSigningKey({ type: 'ed25519' });
  const signed = parseJson('{"_type":"link","name":"x","note":"a\\nb é"}');

  it('signs and verifies a Metablock, decoding the payload from the verified canonical bytes', () => {
    const env = parseEnvelope(bytes(metablockText(signed, [key])), 'm');
    expect(env.kind).toBe('metablock');
    expect(verifiedPayload(env, key.public)).toEqual(signed);
    expect(verifiedPayload(env, other.public)).toBeUndefined();
  });
  it('signs and verifies DSSE', () => {
    const env = parseEnvelope(bytes(dsseText(signed, [key])), 'd');
    expect(env.kind).toBe('dsse');
    expect(verifiedPayload(env, key.public)).toEqual(signed);
    expect(signersOf(env, [other.public, key.public])).toEqual([key.public]);
  });
  it('attack: a Metablock signature presented as a DSSE signature over the same JSON fails', () => {
    const meta = JSON.parse(metablockText(signed, [key])) as { signatures: { keyid: string; sig: string }[] };
    const first = meta.signatures[0]!;
    const forged = {
      payload: Buffer.from(JSON.stringify(signed)).toString('base64'),
      payloadType: 'application/vnd.in-toto+json',
      signatures: [{ keyid: first.keyid, sig: Buffer.from(first.sig, 'hex').toString('base64') }],
    };
    expect(isSignedBy(parseEnvelope(bytes(JSON.stringify(forged)), 'f'), key.public)).toBe(false);
  });
  it('attack: a DSSE signature presented as a Metablock signature fails', () => {
    const env = JSON.parse(dsseText(signed, [key])) as { signatures: { keyid: string; sig: string }[] };
    const first = env.signatures[0]!;
    const forged = { signatures: [{ keyid: first.keyid, sig: Buffer.from(first.sig, 'base64').toString('hex') }], signed };
    expect(isSignedBy(parseEnvelope(bytes(JSON.stringify(forged)), 'f'), key.public)).toBe(false);
  });
  it('attack: a signature claiming another key\'s keyid is not attributed to that key', () => {
    const meta = JSON.parse(metablockText(signed, [other])) as { signatures: { keyid: string; sig: string }[] };
    meta.signatures[0]!.keyid = key.keyid;
    expect(isSignedBy(parseEnvelope(bytes(JSON.stringify(meta)), 'f'), key.public)).toBe(false);
  });
  it('ignores fields outside the signed part (never read), refuses malformed signatures and two envelopes in one', () => {
    const meta = JSON.parse(metablockText(signed, [key])) as Record<string, unknown>;
    const extra = parseEnvelope(bytes(JSON.stringify({ ...meta, extra: 1 })), 'x');
    expect(isSignedBy(extra, key.public)).toBe(true);
    expect(codeOf(() => parseEnvelope(bytes(JSON.stringify({ ...meta, payload: 'e30=', payloadType: DSSE_PAYLOAD_TYPE })), 'x'))).toBe('E_ENVELOPE');
    expect(codeOf(() => parseEnvelope(bytes('{"signatures":[{"keyid":"zz","sig":"00"}],"signed":{}}'), 'x'))).toBe('E_SCHEMA');
    expect(codeOf(() => parseEnvelope(bytes('[]'), 'x'))).toBe('E_ENVELOPE');
    expect(codeOf(() => parseEnvelope(bytes('{"neither":1}'), 'x'))).toBe('E_ENVELOPE');
  });
  it('attack: a DSSE payload over its cap is refused before it is decoded (E_LIMIT); the default cap is what a metadata file can carry', () => {
    const text = dsseText(signed, [key]);
    const size = Buffer.from((JSON.parse(text) as { payload: string }).payload, 'base64').length;
    expect(isSignedBy(parseEnvelope(bytes(text), 'x', { maxPayloadBytes: size }), key.public)).toBe(true);
    expect(codeOf(() => parseEnvelope(bytes(text), 'x', { maxPayloadBytes: size - 3 }))).toBe('E_LIMIT');
    // Not decodable either: the cap is checked first.
    const huge = JSON.stringify({ payload: '!'.repeat(4000), payloadType: DSSE_PAYLOAD_TYPE, signatures: [] });
    expect(codeOf(() => parseEnvelope(bytes(huge), 'x', { maxPayloadBytes: 1000 }))).toBe('E_LIMIT');
    expect(codeOf(() => parseEnvelope(bytes(huge), 'x'))).toBe('E_BASE64');
    expect(LIMITS.dssePayloadBytes).toBe((LIMITS.metadataBytes / 4) * 3);
  });
  it('property: any changed byte of a signed Metablock either fails to parse or fails to verify (or changes nothing signed)', () => {
    const text = metablockText(parseJson('{"_type":"link","materials":{"a":{"sha256":"00"}},"name":"step"}'), [key]);
    const original = bytes(text);
    const payload = unverifiedPayload(parseEnvelope(original, 'o'));
    fc.assert(
      fc.property(fc.nat(original.length - 1), fc.integer({ min: 1, max: 255 }), (at, delta) => {
        const mutated = Uint8Array.from(original);
        mutated[at] = (mutated[at]! + delta) & 0xff;
        try {
          const env = parseEnvelope(mutated, 'm');
          const verified = verifiedPayload(env, key.public);
          if (verified !== undefined) expect(verified).toEqual(payload); // e.g. whitespace outside `signed`
        } catch (error) {
          expect(error).toBeInstanceOf(InTotoError);
        }
      }),
      { numRuns: 500 },
    );
  });
  it('reads the reference\'s RSA and ECDSA signed links', () => {
    const chain = join(FIXTURES, 'chain');
    const bob = loadPublicKeyFile(join(FIXTURES, 'keys', 'bob.pub'));
    const carol = loadPublicKeyFile(join(FIXTURES, 'keys', 'carol.pub'));
    const fetch = parseEnvelope(readFileSync(join(chain, `fetch.${bob.keyid.slice(0, 8)}.link`)), 'fetch');
    const pkg = parseEnvelope(readFileSync(join(chain, `package.${carol.keyid.slice(0, 8)}.link`)), 'package');
    expect(isSignedBy(fetch, bob)).toBe(true);
    expect(isSignedBy(pkg, carol)).toBe(true);
    expect(isSignedBy(pkg, bob)).toBe(false);
  });
  it('re-signing a reference layout with the same ed25519 key gives the same bytes', () => {
    const path = join(FIXTURES, 'chain', 'root.layout');
    const original = readFileSync(path, 'utf8');
    const alice = loadSigningKeyFile(join(FIXTURES, 'keys', 'alice'));
    const payload = unverifiedPayload(parseEnvelope(bytes(original), path));
    expect(metablockText(payload, [alice])).toBe(original);
  });
});

import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initializeCA, initializeCTLog, initializeTLog } from '@sigstore/mock';
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/canonical/json.js';
import { ModelSigner } from '../../src/oms/keys.js';
import { signModel } from '../../src/oms/sign.js';
import { verifyModel } from '../../src/oms/verify.js';
import { tempDir, writeModel } from './helpers.js';

/**
 * A keyless (Sigstore) round trip fully offline: a Fulcio CA, a CT log and a Rekor log from
 * @sigstore/mock, a trusted root built for the test, a model signed with an ephemeral key and
 * its certificate, logged, and verified with @sigstore/verify through verifyModel.
 */

const IDENTITY = 'https://github.com/acme/training/.github/workflows/train.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

const pair = (): { publicKey: ReturnType<typeof generateKeyPairSync>['publicKey']; privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'] } =>
  generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const der = (key: ReturnType<typeof pair>['publicKey']): Buffer => key.export({ type: 'spki', format: 'der' });
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

async function keylessFixture(dir: string): Promise<{ model: string; trustedRoot: JsonObject }> {
  const caKeys = pair();
  const ctKeys = pair();
  const tlogKeys = pair();
  const ctlog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(caKeys, ctlog);
  const tlog = await initializeTLog('https://rekor.sigstore.dev', tlogKeys);

  const model = writeModel(join(dir, 'model'), { 'weights.safetensors': 'w', 'config.json': '{}' });
  const ephemeral = pair();
  const certificate = Buffer.from(
    (
      await ca.issueCertificate({
        publicKey: new Uint8Array(der(ephemeral.publicKey)),
        subjectAltName: IDENTITY,
        extensions: [
          { oid: '1.3.6.1.4.1.57264.1.1', value: ISSUER, legacy: true },
          { oid: '1.3.6.1.4.1.57264.1.8', value: ISSUER },
        ],
      })
    ).buffer,
  );
  const signed = await signModel({ dir: model, key: ModelSigner.fromKeyObject(ephemeral.privateKey), write: false });
  const keyBundle = JSON.parse(signed.bundle);
  const sig: string = keyBundle.dsseEnvelope.signatures[0].sig;
  const certPem = new X509Certificate(certificate).toString();
  const entries = await tlog.log({
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: createHash('sha256').update(JSON.stringify(keyBundle.dsseEnvelope)).digest('hex') },
      payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(signed.payload).digest('hex') },
      signatures: [{ signature: sig, verifier: Buffer.from(certPem).toString('base64') }],
    },
  });
  const entry = Object.values(entries)[0] as {
    body: string;
    integratedTime: number;
    logID: string;
    logIndex: number;
    verification: { signedEntryTimestamp: string; inclusionProof: { logIndex: number; treeSize: number; rootHash: string; hashes: string[]; checkpoint: string } };
  };
  const proof = entry.verification.inclusionProof;
  const bundle = {
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      certificate: { rawBytes: b64(certificate) },
      tlogEntries: [
        {
          logIndex: String(entry.logIndex),
          logId: { keyId: b64(Buffer.from(entry.logID, 'hex')) },
          kindVersion: { kind: 'dsse', version: '0.0.1' },
          integratedTime: String(entry.integratedTime),
          inclusionPromise: { signedEntryTimestamp: entry.verification.signedEntryTimestamp },
          inclusionProof: {
            logIndex: String(proof.logIndex),
            rootHash: b64(Buffer.from(proof.rootHash, 'hex')),
            treeSize: String(proof.treeSize),
            hashes: proof.hashes,
            checkpoint: { envelope: proof.checkpoint },
          },
          canonicalizedBody: entry.body,
        },
      ],
    },
    dsseEnvelope: keyBundle.dsseEnvelope,
  };
  writeFileSync(join(model, 'model.sig'), JSON.stringify(bundle));
  const start = '2020-01-01T00:00:00Z';
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: 'https://rekor.sigstore.dev',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: b64(der(tlogKeys.publicKey)), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
        logId: { keyId: b64(createHash('sha256').update(der(tlogKeys.publicKey)).digest()) },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: 'https://fulcio.sigstore.dev',
        certChain: { certificates: [{ rawBytes: b64(Buffer.from(ca.rootCertificate.buffer)) }] },
        validFor: { start },
      },
    ],
    ctlogs: [
      {
        baseUrl: 'https://ctfe.sigstore.dev',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: b64(ctlog.publicKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
        logId: { keyId: b64(Buffer.from(ctlog.logID.buffer)) },
      },
    ],
    timestampAuthorities: [],
  } as unknown as JsonObject;
  return { model, trustedRoot };
}

describe('keyless round trip, offline (@sigstore/mock)', () => {
  it('verifies with the identity and issuer, and fails on any other, on a tampered model, or with the public-good root', async () => {
    const dir = tempDir();
    const { model, trustedRoot } = await keylessFixture(dir);
    const trust = { method: 'sigstore' as const, identity: IDENTITY, issuer: ISSUER, trustedRoot };
    const ok = await verifyModel({ dir: model, trust });
    expect(ok.error?.message).toBeUndefined();
    expect(ok.signer).toContain(IDENTITY);

    expect((await verifyModel({ dir: model, trust: { ...trust, identity: `${IDENTITY}x` } })).error?.code).toBe('E_MODEL_SIGNATURE');
    expect((await verifyModel({ dir: model, trust: { ...trust, identity: IDENTITY.replace('.github', '.github.') } })).error?.code).toBe('E_MODEL_SIGNATURE');
    expect((await verifyModel({ dir: model, trust: { ...trust, issuer: 'https://accounts.google.com' } })).error?.code).toBe('E_MODEL_SIGNATURE');
    const publicGood = await verifyModel({ dir: model, trust: { method: 'sigstore', identity: IDENTITY, issuer: ISSUER } });
    expect(publicGood.error?.code).toBe('E_MODEL_SIGNATURE');

    writeFileSync(join(model, 'config.json'), '{"evil": true}');
    const tampered = await verifyModel({ dir: model, trust });
    expect(tampered.error?.code).toBe('E_MODEL_MISMATCH');
    expect(tampered.mismatches[0]).toMatchObject({ kind: 'changed', name: 'config.json' });

    // The log entry must be for this signature: another payload under the same log entry fails.
    const bundle = JSON.parse(readFileSync(join(model, 'model.sig'), 'utf8'));
    const payload = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
    payload.subject[0].name = 'renamed';
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    writeFileSync(join(model, 'model.sig'), JSON.stringify(bundle));
    expect((await verifyModel({ dir: model, trust })).error?.code).toBe('E_MODEL_SIGNATURE');
  });
});

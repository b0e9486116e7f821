import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import { readBundle } from '../../src/oms/bundle.js';
import { signModel } from '../../src/oms/sign.js';
import { readStatement } from '../../src/oms/statement.js';
import { verifyModel } from '../../src/oms/verify.js';
import { ecKey, tempDir, writeModel } from './helpers.js';

/** THREATS.md invariant 1 for OMS: whatever the bundle or payload bytes, only our typed errors, never E_INTERNAL. */

const dir = tempDir();

const ours = (run: () => unknown): boolean => {
  try {
    run();
    return true;
  } catch (error) {
    return error instanceof InTotoError && error.code !== 'E_INTERNAL';
  }
};

describe('fuzz: bundles and payloads', () => {
  it('readStatement on any JSON value or bytes throws only ModelError codes', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => ours(() => readStatement(Buffer.from(JSON.stringify(value))))), { numRuns: 300 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => ours(() => readStatement(bytes))), { numRuns: 300 });
  });

  it('readBundle on any JSON value throws only E_MODEL_BUNDLE', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => ours(() => readBundle(Buffer.from(JSON.stringify(value)), 'fuzz'))), { numRuns: 300 });
  });

  it('a signed bundle with one byte changed never verifies and never fails with E_INTERNAL', async () => {
    const model = writeModel(join(dir, 'm'), { 'a.bin': 'a', 'b/c.bin': 'c' });
    const { signer, publicKey } = ecKey();
    const signed = await signModel({ dir: model, key: signer, write: false });
    const bytes = Buffer.from(signed.bundle);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, delta) => {
        const mutated = Buffer.from(bytes);
        mutated[at] = (mutated[at]! + delta) & 0xff;
        writeFileSync(join(model, 'model.sig'), mutated);
        const result = await verifyModel({ dir: model, trust: { method: 'key', key: publicKey } });
        expect(result.error?.code).not.toBe('E_INTERNAL');
        // It may still verify only when the change hit a field outside the signature (keyid).
        if (result.verified) {
          const original = JSON.parse(signed.bundle);
          const changed = JSON.parse(mutated.toString('utf8'));
          expect(changed.dsseEnvelope.payload).toBe(original.dsseEnvelope.payload);
          expect(changed.dsseEnvelope.signatures[0].sig).toBe(original.dsseEnvelope.signatures[0].sig);
          expect(changed.verificationMaterial.publicKey).toEqual(original.verificationMaterial.publicKey);
        }
      }),
      { numRuns: 200 },
    );
  });
});

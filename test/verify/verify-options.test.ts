import { describe, expect, it } from 'vitest';
import { InTotoError, UsageError } from '../../src/errors.js';
import { verifySupplyChain, type VerifyOptions } from '../../src/verify/verify.js';
import { key, standardChain } from './chain.js';

/**
 * A sweep of wrong-typed and nonsensical options (as a JavaScript caller could pass them):
 * each is a UsageError, never a TypeError, and never a verdict.
 */
describe('verifySupplyChain options', () => {
  const { layoutPath, linkDir } = standardChain();
  const good = (): Record<string, unknown> => ({ layoutPath, linkDir, layoutKeys: [key(0).public], sandbox: 'none' });
  const cases: [string, Record<string, unknown>][] = [
    ['no layout path', { layoutPath: '' }],
    ['a layout path that is not a string', { layoutPath: 42 }],
    ['no link directory', { linkDir: undefined }],
    ['no layout key', { layoutKeys: [] }],
    ['layout keys that are not a list', { layoutKeys: 'owner.pub' }],
    ['a layout threshold of 0', { layoutThreshold: 0 }],
    ['a fractional layout threshold', { layoutThreshold: 1.5 }],
    ['a layout threshold above the keys', { layoutThreshold: 2 }],
    ['a negative inspection timeout', { inspectionTimeoutSeconds: -1 }],
    ['an infinite inspection timeout', { inspectionTimeoutSeconds: Infinity }],
    ['an unknown sandbox', { sandbox: 'docker' }],
    ['an invalid date', { now: new Date(Number.NaN) }],
    ['a date that is not a Date', { now: '2030-01-01' }],
    ['params that are not a Map', { params: { A: 'b' } }],
    ['final products that are not paths', { finalProducts: [1, 2] }],
    ['overlapping final products', { finalProducts: ['a', 'a/b'] }],
    ['a cwd that is not a string', { cwd: 7 }],
  ];
  it.each(cases)('%s: UsageError', async (_, change) => {
    const options = { ...good(), ...change } as unknown as VerifyOptions;
    const error = await verifySupplyChain(options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as InTotoError).code).toBe('E_USAGE');
  });

  it('the good options pass (so each case above fails for its one change)', async () => {
    expect((await verifySupplyChain({ ...good(), now: new Date('2030-01-01T00:00:00Z') } as unknown as VerifyOptions)).passed).toBe(true);
  });
});

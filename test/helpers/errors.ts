import { InTotoError } from '../../src/errors.js';

/**
 * The code of the InTotoError `fn` throws, undefined when it returns, and a string that can
 * never equal a code when anything else escapes (so a test expecting a code fails on it).
 */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return describe(error);
  }
  return undefined;
}

/** codeOf for a promise: the code it rejects with, undefined when it resolves. */
export async function codeOfAsync(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return describe(error);
  }
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof InTotoError ? error.code : `not an InTotoError: ${String(error)}`;
}

/**
 * 'ok' when `fn` returns, else the code of the InTotoError it throws; anything else that
 * escapes fails the test (for fuzz tests, where "not E_INTERNAL" must not pass on a TypeError).
 */
export function outcomeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof InTotoError) return error.code;
    throw new Error(`not an InTotoError: ${String(error)}`, { cause: error });
  }
  return 'ok';
}

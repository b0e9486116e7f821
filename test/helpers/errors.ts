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

import { UsageError, VerificationError } from '../errors.js';
import type { PublicKey } from '../crypto/keys.js';
import { isSignedBy, signatureEncodingProblem, type Envelope } from '../model/envelope.js';

/**
 * Check 1: the layout's signatures (in-toto v0.9 §5.1 step 1; verifylib.verify_layout_signatures).
 *
 * The reference requires a valid signature by every key passed. So do we by default; with
 * `--layout-threshold N`, any N distinct keys suffice (m-of-n owner signatures). Keys are
 * counted by identity (the hash of the key material), never by keyid or by how often they
 * were passed: one key given twice, or once as PEM and once as JSON (two keyids), is one key,
 * so it can never stand for two owners.
 */

/**
 * The passed keys with duplicates (same key material) removed, first occurrence kept.
 * Never throws.
 */
export function distinctKeys(keys: readonly PublicKey[]): PublicKey[] {
  const seen = new Set<string>();
  return keys.filter((key) => {
    if (seen.has(key.identity)) return false;
    seen.add(key.identity);
    return true;
  });
}

/**
 * Checks the threshold option against the keys. @throws UsageError E_USAGE
 */
export function checkLayoutThreshold(keys: readonly PublicKey[], threshold: number | undefined): void {
  if (keys.length === 0) throw new UsageError('E_USAGE', 'at least one layout key is required');
  if (threshold === undefined) return;
  const distinct = distinctKeys(keys).length;
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new UsageError('E_USAGE', `the layout threshold must be a positive integer, not ${String(threshold)}`);
  }
  if (threshold > distinct) {
    throw new UsageError('E_USAGE', `layout threshold ${threshold} is more than the ${distinct} distinct layout key(s) given`);
  }
}

/**
 * Returns the keys (distinct) whose signatures on the layout verify, when they are enough:
 * every key without a threshold, at least `threshold` distinct keys with one.
 * @throws VerificationError E_LAYOUT_SIG naming the keys that did not sign
 */
export function verifyLayoutSignatures(
  envelope: Envelope,
  keys: readonly PublicKey[],
  threshold: number | undefined,
  file: string,
): PublicKey[] {
  const distinct = distinctKeys(keys);
  const signed: PublicKey[] = [];
  const unsigned: PublicKey[] = [];
  for (const key of distinct) (isSignedBy(envelope, key) ? signed : unsigned).push(key);
  const required = threshold ?? distinct.length;
  if (signed.length >= required && (threshold !== undefined || unsigned.length === 0)) return signed;
  const missing = unsigned.map((k) => k.keyid.slice(0, 8)).join(', ');
  const encoding = unsigned.map((k) => signatureEncodingProblem(envelope, k)).find((p) => p !== undefined);
  const message =
    (threshold === undefined
      ? `${file}: no valid layout signature by key(s) ${missing} (every key passed must have signed)`
      : `${file}: ${signed.length} of the required ${threshold} distinct layout keys signed (no valid signature by ${missing})`) +
    (encoding === undefined ? '' : `; ${encoding}`);
  throw new VerificationError('E_LAYOUT_SIG', message, {
    context: { file, ...(unsigned[0] === undefined ? {} : { keyid: unsigned[0].keyid }) },
    details: [
      `signatures in the file claim keyids: ${envelope.signatures.map((s) => s.keyid ?? '(none)').join(', ') || 'none'}`,
      ...unsigned.map((k) => `no valid signature by ${k.keyid}`),
    ],
  });
}

import { VerificationError } from '../errors.js';
import type { Layout } from '../model/layout.js';

/**
 * Check 2: the layout has not expired (verifylib.verify_layout_expiration). `expires` was
 * parsed at load in its one exact form (`YYYY-MM-DDTHH:MM:SSZ`, UTC); `now` is injectable so
 * tests need no clock. A layout expiring exactly now has expired (the reference compares
 * `expires < now`, so it would still accept it for that second; we do not).
 * @throws VerificationError E_LAYOUT_EXPIRED
 */
export function verifyExpiry(layout: Layout, now: number, file: string): void {
  if (layout.expiresAt > now) return;
  throw new VerificationError('E_LAYOUT_EXPIRED', `${file}: layout expired at ${layout.expires} (now ${isoSeconds(now)})`, {
    context: { file },
  });
}

function isoSeconds(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : `${d.toISOString().slice(0, 19)}Z`;
}

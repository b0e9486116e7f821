import { availableParallelism } from 'node:os';
import { prewarmHashWorkers } from '../runner/hash-pool.js';

/**
 * Starts intoto-run's hashing threads (about 50 ms each to boot) before the rest of the
 * program loads, so they boot while it does and are ready for the first product. Loads only the
 * hashing pool. runStep asks for the same threads later, which starts nothing new.
 */
export function prewarmHashing(): void {
  prewarmHashWorkers(availableParallelism() - 1);
}

/**
 * intoto-run's first import (bin/ reaches the runner only through cli/): its hashing threads
 * boot (about 50 ms each) while the rest of the program loads, so they are ready for the first
 * product.
 */
export { prewarmHashWorkers as prewarmHashing } from '../runner/hash-pool.js';

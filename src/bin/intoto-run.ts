#!/usr/bin/env node
import { availableParallelism } from 'node:os';
import { prewarmHashWorkers } from '../runner/hash-pool.js';

// The hashing threads boot (about 50 ms each) while this thread loads the rest of the program,
// so they are ready when the products are hashed; only the pool is loaded before that.
// runStep asks for them again, which starts nothing new.
prewarmHashWorkers(availableParallelism() - 1);
const { runMain } = await import('../cli/main.js');
const { runStepMain } = await import('../cli/run.js');
await runMain('intoto-run', runStepMain);

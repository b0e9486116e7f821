#!/usr/bin/env node
import { prewarmHashing } from '../cli/prewarm.js';

// Only the hashing pool is loaded before this call; the program loads while the threads boot.
prewarmHashing();
const { runMain } = await import('../cli/main.js');
const { runStepMain } = await import('../cli/run.js');
await runMain('intoto-run', runStepMain);

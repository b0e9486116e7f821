#!/usr/bin/env node
import { prewarmRun } from '../cli/prewarm.js';

// Only the hashing pool and the sandbox probe are loaded before this call; the program loads
// while the threads boot and the probe runs.
prewarmRun();
const { runMain } = await import('../cli/main.js');
const { runStepMain } = await import('../cli/run.js');
await runMain('intoto-run', runStepMain);

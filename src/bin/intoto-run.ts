#!/usr/bin/env node
import { runMain } from '../cli/main.js';
import { runStepMain } from '../cli/run.js';

await runMain('intoto-run', runStepMain);

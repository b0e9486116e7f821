#!/usr/bin/env node
import { runMain } from '../cli/main.js';
import { recordMain } from '../cli/record.js';

await runMain('intoto-record', recordMain);

#!/usr/bin/env node
import { intotoMain } from '../cli/intoto.js';
import { runMain } from '../cli/main.js';

await runMain('intoto', intotoMain);

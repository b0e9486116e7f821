#!/usr/bin/env node
import { runMain } from '../cli/main.js';
import { mockMain } from '../cli/mock.js';

await runMain('intoto-mock', mockMain);

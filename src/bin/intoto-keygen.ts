#!/usr/bin/env node
import { runMain } from '../cli/common.js';
import { keygenMain } from '../cli/keygen.js';

await runMain('intoto-keygen', keygenMain);

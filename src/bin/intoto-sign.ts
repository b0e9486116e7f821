#!/usr/bin/env node
import { runMain } from '../cli/common.js';
import { signMain } from '../cli/sign.js';

await runMain('intoto-sign', signMain);

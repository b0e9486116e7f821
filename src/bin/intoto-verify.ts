#!/usr/bin/env node
import { runMain } from '../cli/common.js';
import { verifyMain } from '../cli/verify.js';

await runMain('intoto-verify', verifyMain);

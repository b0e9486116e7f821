#!/usr/bin/env node
import { runMain } from '../cli/main.js';
import { matchProductsMain } from '../cli/match-products.js';

await runMain('intoto-match-products', matchProductsMain);

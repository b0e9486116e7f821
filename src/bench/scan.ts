import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunError } from '../errors.js';
import { compareAlternating, timeCommand, type Comparison, type CommandSpec } from './timing.js';

/**
 * Benchmark of `intoto scan-model` on 1 GiB model files (issue 13, "Speed"): a PyTorch
 * checkpoint written by torch.save (256 tensors of 4 MiB) and a safetensors file of the same
 * shape. A scan reads the pickle streams and headers only, so the target is absolute: at most
 * 0.2 s for the whole process, start-up included. The peer in the same run is the least a
 * Python scanner must do for the same verdict input: open the zip and list data.pkl's
 * opcodes with pickletools (as picklescan does), or read the safetensors header with json.
 */

export const SCAN_MAX_SECONDS = 0.2;
const BIN = fileURLToPath(new URL('../bin/intoto.js', import.meta.url));
const PYTHON = '/usr/bin/python3';
const TENSORS = 256;
const TENSOR_BYTES = 4 * 1024 * 1024;

const PEER_TORCH = [
  'import pickletools, sys, zipfile',
  'z = zipfile.ZipFile(sys.argv[1])',
  'name = [n for n in z.namelist() if n.endswith("/data.pkl")][0]',
  'ops = list(pickletools.genops(z.read(name)))',
  'assert ops[-1][0].name == "STOP"',
].join('\n');

const PEER_SAFETENSORS = [
  'import json, struct, sys',
  'f = open(sys.argv[1], "rb")',
  'n = struct.unpack("<Q", f.read(8))[0]',
  'h = json.loads(f.read(n))',
  'assert len(h) >= 1',
].join('\n');

/** The 1 GiB checkpoint, written once by torch.save into `dir`. @throws RunError */
function checkpoint(dir: string): string {
  const path = join(dir, 'checkpoint-1gib.pt');
  if (existsSync(path) && statSync(path).size > 1024 ** 3) return path;
  const code = `import torch; torch.save({"layer.%d.weight" % i: torch.zeros(${TENSOR_BYTES / 4}) for i in range(${TENSORS})}, ${JSON.stringify(path)})`;
  const made = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8' });
  if (made.status !== 0) throw new RunError('E_COMMAND_FAILED', `torch.save of the 1 GiB checkpoint failed (python3-torch under ${PYTHON}): ${made.stderr}`);
  return path;
}

/** The 1 GiB safetensors file: a real header, and the data as a sparse extent. */
function safetensors(dir: string): string {
  const path = join(dir, 'model-1gib.safetensors');
  if (existsSync(path)) return path;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (let i = 0; i < TENSORS; i++) header[`layer.${i}.weight`] = { dtype: 'F32', shape: [TENSOR_BYTES / 4], data_offsets: [i * TENSOR_BYTES, (i + 1) * TENSOR_BYTES] };
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, Buffer.concat([length, Buffer.from(text)]));
    ftruncateSync(fd, 8 + text.length + TENSORS * TENSOR_BYTES);
  } finally {
    closeSync(fd);
  }
  return path;
}

export interface ScanBenchRow {
  readonly description: string;
  readonly comparison: Comparison;
}

/** Runs both cases. @throws RunError when a dataset cannot be made or a scan fails */
export function runScanBench(options: { dataDir: string; rounds: number; write: (line: string) => void }): ScanBenchRow[] {
  const dir = join(options.dataDir, 'scan-model');
  mkdirSync(dir, { recursive: true });
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8' };
  const cases: [string, string, string][] = [
    ['PyTorch checkpoint, 1 GiB (torch.save, 256 tensors)', checkpoint(dir), PEER_TORCH],
    ['safetensors, 1 GiB (256 tensors)', safetensors(dir), PEER_SAFETENSORS],
  ];
  return cases.map(([description, file, peer]) => {
    const ours: CommandSpec = { argv: [process.execPath, BIN, 'scan-model', '-q', file], env };
    const reference: CommandSpec = { argv: [PYTHON, '-c', peer, file], env };
    const comparison = compareAlternating(() => timeCommand(ours), () => timeCommand(reference), options.rounds);
    options.write(`${description}: scan-model ${comparison.oursMedian.toFixed(3)} s (target <= ${SCAN_MAX_SECONDS} s), Python peer ${comparison.referenceMedian.toFixed(3)} s`);
    return { description, comparison };
  });
}

import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanModelFile, scanModelPaths, type FileScan } from '../../src/ml/model-scan.js';
import { runBin } from '../helpers/bin.js';
import { bwrapAvailable } from '../helpers/reference.js';
import { DEBIAN_PYTHON, LOADER, mlPythonAvailable, prepareCorpus, runAsync, type Corpus } from './corpus.js';

/**
 * The corpus made by the real libraries: every honest file scans safe, every malicious one
 * is refused with its expected code, and every malicious file with a loader really runs its
 * payload when that library loads it (in a throw-away bubblewrap sandbox), so the corpus is
 * honest about what it tests.
 */

const available = mlPythonAvailable();

describe.skipIf(!available)('the model corpus made by the real libraries', () => {
  let c: Corpus;
  let honestScans: FileScan[];
  beforeAll(async () => {
    c = await prepareCorpus();
    honestScans = scanModelPaths([join(c.dir, 'honest')]);
  }, 600_000);

  it('covers every format the issue names, honest and malicious', () => {
    const formats = new Set(honestScans.map((s) => s.format));
    for (const f of ['pickle', 'joblib', 'joblib-zlib', 'joblib-gzip', 'joblib-bz2', 'joblib-lzma', 'joblib-xz', 'pytorch-zip', 'torchscript', 'pytorch-legacy', 'numpy-npy', 'numpy-npz', 'safetensors', 'onnx', 'onnx-external-data', 'json', 'text', 'png', 'sentencepiece', 'empty']) {
      expect(formats, f).toContain(f);
    }
    expect(c.files.filter((e) => e.kind === 'malicious').length).toBeGreaterThanOrEqual(50);
  });

  it('every honest file scans safe, whole model directories included', () => {
    const refused = honestScans.filter((s) => s.code !== undefined).map((s) => `${s.file}: ${s.code} ${s.findings[0]?.reason ?? ''}`);
    expect(refused).toEqual([]);
    expect(honestScans.length).toBe(c.files.filter((e) => e.kind === 'honest').length);
  });

  it('scikit-learn, PyTorch and joblib models name their globals, all allowed', () => {
    const byName = (suffix: string): FileScan => honestScans.find((s) => s.file.endsWith(suffix)) as FileScan;
    expect(byName('sklearn/random-forest-p4.pkl').globals.map((g) => g.name)).toContain('sklearn.tree._tree.Tree');
    expect(byName('torch/state_dict.pt').globals.map((g) => g.name)).toContain('torch._utils._rebuild_tensor_v2');
    expect(byName('joblib/random-forest.joblib').globals.map((g) => g.name)).toContain('joblib.numpy_pickle.NumpyArrayWrapper');
    expect(honestScans.every((s) => s.globals.every((g) => g.verdict === 'allowed'))).toBe(true);
  });

  it('every malicious file is refused with its expected code', () => {
    const wrong = c.files
      .filter((e) => e.kind === 'malicious')
      .flatMap((e) => {
        const scan = scanModelFile(join(c.dir, e.path));
        return scan.code === e.code ? [] : [`${e.path}: ${scan.code ?? 'safe'}, expected ${e.code ?? '?'} (${e.why})`];
      });
    expect(wrong).toEqual([]);
  });

  describe.skipIf(!bwrapAvailable())('the payloads are real', () => {
    const markers = mkdtempSync(join(tmpdir(), 'intoto-markers-'));
    afterAll(() => rmSync(markers, { recursive: true, force: true }));
    let listed: string[] = [];
    beforeAll(async () => {
      const proven = c.files.filter((e) => e.kind === 'malicious' && e.load !== null);
      // Honest files loaded in the same run: the control that shows markers come from payloads.
      const controls = ['honest/sklearn/random-forest-p4.pkl', 'honest/torch/state_dict.pt', 'honest/torch/state_dict-legacy.pt', 'honest/joblib/random-forest.joblib', 'honest/numpy/arrays.npz', 'honest/onnx/external/model.onnx'];
      const loaders: Record<string, string> = { pkl: 'pickle', pt: 'torch', joblib: 'joblib', npz: 'numpy', onnx: 'onnx' };
      const list = [
        ...proven.map((e) => [e.load, `/corpus/${e.path}`]),
        ...controls.map((p) => [loaders[p.split('.').pop() as string], `/corpus/${p}`]),
      ];
      listed = proven.map((e) => e.marker as string);
      const listFile = join(markers, '..', `${markers.split('/').pop()}-list.json`);
      writeFileSync(listFile, JSON.stringify(list));
      const run = await runAsync(
        'bwrap',
        [
          '--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink', 'usr/bin', '/bin',
          '--symlink', 'usr/sbin', '/sbin', '--ro-bind', '/etc', '/etc', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp',
          '--bind', markers, '/marker', '--ro-bind', c.dir, '/corpus', '--ro-bind', join(c.dir, 'malicious', 'onnx-secret'), '/corpus-secret',
          '--ro-bind', LOADER, '/loader/load_model.py', '--ro-bind', listFile, '/loader/list.json',
          '--unshare-all', '--die-with-parent', '--cap-drop', 'ALL', '--new-session', '--chdir', '/tmp', '--clearenv',
          '--setenv', 'HOME', '/tmp', '--setenv', 'PATH', '/usr/bin:/bin', '--setenv', 'LANG', 'C.UTF-8',
          DEBIAN_PYTHON, '/loader/load_model.py', '/loader/list.json',
        ],
      );
      rmSync(listFile, { force: true });
      if (run.status !== 0) throw new Error(`the sandboxed loader failed: ${run.stderr.slice(-2000)}`);
    }, 600_000);

    it('each malicious file with a loader runs its payload when the real library loads it', () => {
      const ran = new Set(readdirSync(markers));
      const notRun = listed.filter((m) => !ran.has(m));
      expect(notRun).toEqual([]);
      expect(listed.length).toBeGreaterThanOrEqual(40);
    });

    it('nothing else left a marker (the honest controls loaded cleanly)', () => {
      expect(readdirSync(markers).filter((m) => !listed.includes(m))).toEqual([]);
      expect(existsSync(join(markers, 'state_dict.pt'))).toBe(false);
    });
  });

  it('the CLI: a whole honest directory exits 0; a malicious file exits 1 with one line naming member, offset and call', () => {
    const honest = runBin('intoto', ['scan-model', '-q', join(c.dir, 'honest')]);
    expect(honest.status, honest.stdout + honest.stderr).toBe(0);
    expect(honest.stdout).toBe('');
    const evil = runBin('intoto', ['scan-model', join(c.dir, 'malicious', 'torch-data-pkl-payload.pt')]);
    expect(evil.status).toBe(1);
    expect(evil.stdout.split('\n')[0]).toMatch(
      /^\S+torch-data-pkl-payload\.pt: UNSAFE: \S+torch-data-pkl-payload\.pt\/state_dict\/data\.pkl: offset \d+ \(REDUCE\): calls posix\.system \(os\.system\), which runs commands and touches files; never allowed \[E_MODEL_UNSAFE\]$/,
    );
    const alias = runBin('intoto', ['scan-pickle', '--json', join(c.dir, 'honest', 'torch', 'state_dict.pt')]);
    expect(alias.status).toBe(0);
    const report = JSON.parse(alias.stdout) as { files: { format: string; globals: { name: string; verdict: string }[] }[] };
    expect(report.files[0]?.format).toBe('pytorch-zip');
    expect(report.files[0]?.globals.every((g) => g.verdict === 'allowed')).toBe(true);
  });
});

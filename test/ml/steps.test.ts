import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { scanModelFile } from '../../src/ml/model-scan.js';
import { DEBIAN_PYTHON, mlPythonAvailable } from './corpus.js';
import { DATASET, PYTHONS, SCHEMA, STEPS, runPython, tempDir } from './python.js';

/**
 * The example pipeline's steps, run as the pipeline runs them: child processes. validate.py is
 * standard library only (checked under every python3 here); train.py and evaluate.py need
 * Debian's /usr/bin/python3 with scikit-learn, as the layout runs them.
 */

const STEP_BUDGET_MS = 2000;
const lines = readFileSync(DATASET, 'utf8').split('\n');

/** The dataset with line `n` (1-based, the header is line 1) passed through `edit`. */
function editedDataset(dir: string, n: number, edit: (line: string) => string): string {
  const copy = [...lines];
  copy[n - 1] = edit(copy[n - 1] ?? '');
  const path = join(dir, `edited-${n}-${Math.random().toString(36).slice(2)}.csv`);
  writeFileSync(path, copy.join('\n'));
  return path;
}

function cell(line: string, column: number, value: string): string {
  const cells = line.split(',');
  cells[column] = value;
  return cells.join(',');
}

describe.each(PYTHONS)('validate.py under %s', (python) => {
  const { dir, cleanup } = tempDir('intoto-steps-');
  afterAll(cleanup);
  const step = (name: string, ...args: string[]) => runPython(python, [join(STEPS, name), ...args], { cwd: dir });

  describe('validate.py', () => {
    it('accepts the committed dataset and prints a per-column report', () => {
      const run = step('validate.py', DATASET, SCHEMA);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain('OK: 300 rows, 6 columns, no violations');
      expect(run.stdout).toMatch(/species\s+category\s+missing 0\s+setosa=100 versicolor=100 virginica=100/);
      expect(run.ms).toBeLessThan(STEP_BUDGET_MS);
    });

    it.each([
      ['a changed label', 5, (l: string) => cell(l, 5, 'daisy'), /line 5, column species: 'daisy' is not one of/],
      ['a missing value', 7, (l: string) => cell(l, 2, ''), /line 7, column sepal_width: missing value/],
      ['an out-of-range value', 9, (l: string) => cell(l, 1, '12.5'), /line 9, column sepal_length: 12.5 is above the maximum 9/],
      ['a negative measurement', 9, (l: string) => cell(l, 4, '-0.2'), /line 9, column petal_width: -0.2 is below the minimum 0.1/],
      ['a value float() would accept', 11, (l: string) => cell(l, 3, 'nan'), /line 11, column petal_length: 'nan' is not a plain decimal/],
      ['an exponent', 11, (l: string) => cell(l, 3, '5e0'), /'5e0' is not a plain decimal/],
      ['a duplicated id', 12, (l: string) => cell(l, 0, '1'), /line 12, column id: '1' repeats an earlier row/],
      ['a missing field', 13, (l: string) => l.split(',').slice(0, 5).join(','), /line 13: 5 fields, expected 6/],
      ['a renamed column', 1, (l: string) => l.replace('petal_width', 'petal_wdth'), /line 1: header is/],
      ['a byte-order mark', 1, (l: string) => `\ufeff${l}`, /byte-order mark/],
    ])('rejects %s with exit status 1 and names the line', (_title, n, edit, message) => {
      const run = step('validate.py', editedDataset(dir, n, edit), SCHEMA);
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/FAILED: \d+ violation/);
      expect(run.stderr).toMatch(message);
    });

    it('rejects too few rows', () => {
      const path = join(dir, 'short.csv');
      writeFileSync(path, `${lines.slice(0, 101).join('\n')}\n`);
      const run = step('validate.py', path, SCHEMA);
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/100 data rows, fewer than the minimum 200/);
    });

    it('lists at most 20 violations but counts them all', () => {
      const path = join(dir, 'many.csv');
      writeFileSync(path, lines.map((l, i) => (i > 0 && l ? cell(l, 5, 'x') : l)).join('\n'));
      const run = step('validate.py', path, SCHEMA);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('FAILED: 300 violation(s); the first 20:');
    });

    it('exits 2 on a missing file or an unusable schema', () => {
      expect(step('validate.py', join(dir, 'nope.csv'), SCHEMA).status).toBe(2);
      const schema = join(dir, 'bad-schema.json');
      writeFileSync(schema, '{"columns": [{"name": "id", "type": "decimal"}]}');
      const run = step('validate.py', DATASET, schema);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/type must be one of/);
      expect(step('validate.py').status).toBe(2);
    });
  });

});

const ml = mlPythonAvailable();

describe.skipIf(!ml)('train.py and evaluate.py (scikit-learn, under /usr/bin/python3)', () => {
  const { dir, cleanup } = tempDir('intoto-sklearn-steps-');
  afterAll(cleanup);
  const step = (name: string, ...args: string[]) => runPython(DEBIAN_PYTHON, [join(STEPS, name), ...args], { cwd: dir });

  describe('train.py', () => {
    it('writes the same model bytes on every run with the same data and seed (threshold 2 needs it)', () => {
      const a = step('train.py', DATASET, '--out', 'a.pkl', '--seed', '7');
      const b = step('train.py', DATASET, '--out', 'b.pkl', '--seed', '7');
      expect(a.status, a.stderr).toBe(0);
      expect(b.status, b.stderr).toBe(0);
      expect(readFileSync(join(dir, 'a.pkl')).equals(readFileSync(join(dir, 'b.pkl')))).toBe(true);
      const c = step('train.py', DATASET, '--out', 'c.pkl', '--seed', '8');
      expect(c.status).toBe(0);
      expect(readFileSync(join(dir, 'a.pkl')).equals(readFileSync(join(dir, 'c.pkl')))).toBe(false);
      expect(existsSync(join(dir, 'a.pkl.tmp'))).toBe(false);
    });

    it('writes a joblib file that scan-model passes under the default policy, naming the forest\'s classes', () => {
      expect(step('train.py', DATASET, '--out', 'scan.pkl', '--seed', '7').status).toBe(0);
      const scan = scanModelFile(join(dir, 'scan.pkl'));
      expect(scan.code).toBeUndefined();
      expect(scan.format).toBe('joblib');
      expect(scan.globals.map((g) => g.name)).toEqual(expect.arrayContaining(['sklearn.ensemble._forest.RandomForestClassifier', 'sklearn.tree._tree.Tree']));
    });

    it("evaluate.py's restricted unpickler allows exactly the globals train.py's model imports", () => {
      expect(step('train.py', DATASET, '--out', 'exact.pkl', '--seed', '7').status).toBe(0);
      const imported = scanModelFile(join(dir, 'exact.pkl')).globals.map((g) => g.name).sort();
      const source = readFileSync(join(STEPS, 'evaluate.py'), 'utf8');
      const listed = [...source.matchAll(/^\s+\("([\w.]+)", "(\w+)"\),$/gm)].map((m) => `${m[1]}.${m[2]}`).sort();
      expect(listed).toEqual(imported);
    });

    it('exits 2 and writes nothing on data it cannot use', () => {
      const path = editedDataset(dir, 4, (l) => cell(l, 2, 'abc'));
      const run = step('train.py', path, '--out', 'bad.pkl');
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/line 4: a feature is not a number/);
      expect(existsSync(join(dir, 'bad.pkl'))).toBe(false);
    });
  });

  describe('evaluate.py', () => {
    it('scores the held-out rows with scikit-learn metrics and writes the same metrics bytes every time', () => {
      const trained = step('train.py', DATASET, '--out', 'model.pkl', '--seed', '7');
      expect(trained.status).toBe(0);
      const first = step('evaluate.py', DATASET, 'model.pkl', '--out', 'm1.json', '--min-accuracy', '0.8');
      const second = step('evaluate.py', DATASET, 'model.pkl', '--out', 'm2.json', '--min-accuracy', '0.8');
      expect(first.status, first.stderr).toBe(0);
      const text = readFileSync(join(dir, 'm1.json'), 'utf8');
      expect(readFileSync(join(dir, 'm2.json'), 'utf8')).toBe(text);
      expect(second.stdout).toBe(first.stdout);
      const metrics = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(metrics)).toEqual(Object.keys(metrics).sort());
      expect(metrics['accuracy']).toBeGreaterThanOrEqual(0.9);
      expect(metrics['passed']).toBe(true);
      expect(metrics['confusion_matrix']).toHaveLength(3);
      // train.py and evaluate.py split the rows the same way: together they cover all 300.
      const rows = /(\d+) training rows/.exec(trained.stdout)?.[1];
      expect(Number(rows) + Number(metrics['test_rows'])).toBe(300);
    });

    it('fails with exit status 1 under the accuracy floor, still writing metrics.json', () => {
      expect(step('train.py', DATASET, '--out', 'model.pkl', '--seed', '7').status).toBe(0);
      const run = step('evaluate.py', DATASET, 'model.pkl', '--out', 'floor.json', '--min-accuracy', '0.999');
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/FAILED: accuracy 0\.\d+ on \d+ test rows \(floor 0\.9990\)/);
      expect(JSON.parse(readFileSync(join(dir, 'floor.json'), 'utf8'))).toMatchObject({ passed: false, min_accuracy: 0.999 });
    });

    it('refuses the malicious model (a real forest carrying a payload) without running it, and writes nothing', () => {
      expect(step('make_malicious_pickle.py', DATASET, 'evil.pkl').status).toBe(0);
      const run = step('evaluate.py', DATASET, 'evil.pkl', '--out', 'evil.json');
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/refusing to import posix\.system/);
      expect(run.stderr).not.toContain('just ran a shell command');
      expect(existsSync(join(dir, 'evil.json'))).toBe(false);
      const scan = scanModelFile(join(dir, 'evil.pkl'));
      expect(scan.code).toBe('E_MODEL_UNSAFE');
      expect(scan.findings.some((f) => f.kind === 'call' && f.global === 'posix.system')).toBe(true);
    });

    it('refuses a model with bytes after its STOP', () => {
      expect(step('train.py', DATASET, '--out', 'model.pkl', '--seed', '7').status).toBe(0);
      writeFileSync(join(dir, 'trailing.pkl'), Buffer.concat([readFileSync(join(dir, 'model.pkl')), Buffer.from('N.')]));
      const run = step('evaluate.py', DATASET, 'trailing.pkl', '--out', 't.json');
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/unexpected bytes after the model/);
    });
  });
});

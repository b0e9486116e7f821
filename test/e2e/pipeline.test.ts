import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runBin } from '../helpers/bin.js';
import { bwrapAvailable, referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { mlPythonAvailable } from '../ml/corpus.js';
import { intotoOnPath } from '../pipeline/helpers.js';

/**
 * `intoto pipeline run` end to end, through the built binary: the ML example and the tarball
 * example run, sign and verify; the verdict is checked again by `intoto verify` and by the
 * reference `in-toto-verify`; then the demo's three attacks, each of which must fail with its
 * code (the honest run passing is the control), a cycle, a failing step, and runs of a
 * threshold step that disagree.
 */
const haveReference = referenceAvailable();
const haveBwrap = bwrapAvailable();
// The ML example's steps need Debian's python3 with scikit-learn (a failure under CI=true).
const haveMl = mlPythonAvailable();
const root = tempDir('intoto-e2e-pipeline-');
const keyDir = join(root, 'keys');
const env = intotoOnPath();
const ML = join(ROOT, 'layouts', 'ml-pipeline.yaml');
const TARBALL = join(ROOT, 'layouts', 'tarball.yaml');

mkdirSync(keyDir, { recursive: true });
for (const name of ['owner', 'validator', 'trainer-a', 'trainer-b', 'evaluator', 'builder', 'packager', 'platform']) {
  // platform signs the ML model (OpenSSF Model Signing): ECDSA, as the layout check demands.
  const made = runBin('intoto', ['keygen', '-q', ...(name === 'platform' ? ['-t', 'ecdsa'] : []), join(keyDir, name)], { env });
  if (made.status !== 0) throw new Error(made.stderr);
}

/** `intoto pipeline run` with the keys of `keys` (default: the shared key directory), fed `input`. */
function pipeline(layout: string, name: string, extra: string[] = [], { keys = keyDir, input = '' } = {}): { status: number | null; stdout: string; stderr: string; out: string; work: string } {
  const out = join(root, `${name}-out`);
  const work = join(root, `${name}-work`);
  const result = runBin('intoto', ['pipeline', 'run', layout, '--keys', keys, '--pubkey-dir', keys, '--out', out, '--workspace', work, ...extra], { env, input });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, out, work };
}

/** `intoto verify --json` in `dir`: the failure code, or PASS. */
function verdict(dir: string): string {
  const result = runBin('intoto', ['verify', '-l', 'root.layout', '-k', join(keyDir, 'owner.pub'), '--json'], { cwd: dir, env });
  const report = JSON.parse(result.stdout) as { passed: boolean; failure?: { code: string } };
  expect(result.status).toBe(report.passed ? 0 : 1);
  return report.passed ? 'PASS' : (report.failure?.code ?? 'no code');
}

/** The reference verifier, with the layout kept outside the directory its inspections see. */
function referenceVerdict(dir: string, name: string): number | null {
  const copy = join(root, `${name}-ref`);
  cpSync(dir, copy, { recursive: true });
  renameSync(join(copy, 'root.layout'), join(root, `${name}-ref.layout`));
  return run('in-toto-verify', ['-l', join(root, `${name}-ref.layout`), '-k', join(keyDir, 'owner.pub'), '-t', 'ed25519'], { cwd: copy, env }).status;
}

describe.skipIf(!haveMl)('intoto pipeline run: the ML example', () => {
  const honest = haveMl ? pipeline(ML, 'ml') : { status: null, stdout: '', stderr: '', out: '', work: '' };

  it('runs validate, train twice (threshold 2), sign (built in) and evaluate, then verifies: PASS', () => {
    expect(honest.status, honest.stderr + honest.stdout).toBe(0);
    expect(honest.stdout).toMatch(/PASSED/);
    expect(honest.stdout).toMatch(/train\s+trainer-a[\s\S]*train\s+trainer-b[\s\S]*sign\s+platform .*\(model-sign: signed by the runner, no command\)/);
    // With bubblewrap, every run is sandboxed (the summary marks any run that was not).
    if (haveBwrap) expect(honest.stdout).not.toContain('not sandboxed');
    const files = readdirSync(honest.out).sort();
    expect(files.filter((f) => !f.endsWith('.link'))).toEqual(['metrics.json', 'model.pkl', 'model.pkl.sig', 'root.layout']);
    expect(files.filter((f) => f.endsWith('.link')).map((f) => f.split('.')[0])).toEqual(['evaluate', 'sign', 'train', 'train', 'validate']);
    // The signature verifies on its own, where the model is loaded, with platform's public key.
    const check = runBin('intoto', ['model', 'verify', 'model.pkl', '-k', join(keyDir, 'platform.pub')], { cwd: honest.out, env });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(honest.out, 'metrics.json'), 'utf8'))).toHaveProperty('accuracy');
  });

  it('stages only what each step is allowed: train sees the dataset and its script, not the schema', () => {
    const train = join(honest.work, 'runs', 'train', 'trainer-a');
    expect(existsSync(join(train, 'data', 'flowers.csv'))).toBe(true);
    expect(existsSync(join(train, 'steps', 'train.py'))).toBe(true);
    expect(existsSync(join(train, 'data', 'schema.json'))).toBe(false);
    expect(existsSync(join(train, 'steps', 'validate.py'))).toBe(false);
  });

  it('the result verifies again with intoto verify, and with the reference in-toto-verify', () => {
    expect(verdict(honest.out)).toBe('PASS');
    if (haveReference) expect(referenceVerdict(honest.out, 'ml')).toBe(0);
  });

  it('attack: the dataset changed after validation (train re-run on it) -> E_RULE_DISALLOW', () => {
    const attack = join(root, 'attack-a');
    cpSync(honest.out, attack, { recursive: true });
    for (const f of readdirSync(attack)) if (f.startsWith('train.')) rmSync(join(attack, f));
    for (const trainer of ['trainer-a', 'trainer-b']) {
      const ws = join(root, `attack-a-${trainer}`);
      cpSync(join(honest.work, 'runs', 'train', trainer), ws, { recursive: true });
      rmSync(join(ws, 'model.pkl'));
      const csv = join(ws, 'data', 'flowers.csv');
      const lines = readFileSync(csv, 'utf8').split('\n');
      lines[1] = lines[1]!.replace(/,[a-z]+$/, ',setosa');
      writeFileSync(csv, lines.join('\n'));
      const ran = runBin('intoto', ['run', '-q', '-n', 'train', '-k', join(keyDir, trainer), '-m', '.', '-p', '.', '-d', attack, '--', '/usr/bin/python3', 'steps/train.py', 'data/flowers.csv', '--out', 'model.pkl', '--seed', '7'], { cwd: ws, env });
      expect(ran.status, ran.stderr).toBe(0);
    }
    cpSync(join(root, 'attack-a-trainer-a', 'model.pkl'), join(attack, 'model.pkl'));
    expect(verdict(attack)).toBe('E_RULE_DISALLOW');
  });

  it('attack: model.pkl replaced by a real scikit-learn model carrying a payload -> the scan-model inspection fails', () => {
    const attack = join(root, 'attack-b');
    cpSync(honest.out, attack, { recursive: true });
    const made = run('/usr/bin/python3', [join(ROOT, 'steps', 'make_malicious_pickle.py'), join(ROOT, 'layouts', 'ml', 'data', 'flowers.csv'), join(attack, 'model.pkl')]);
    expect(made.status, made.stderr).toBe(0);
    expect(verdict(attack)).toBe('E_INSPECTION_FAILED');
    const scan = runBin('intoto', ['scan-model', 'model.pkl'], { cwd: attack, env });
    expect(scan.status).toBe(1);
    expect(scan.stdout).toMatch(/^model\.pkl: UNSAFE: model\.pkl: offset \d+ \(REDUCE\): calls posix\.system \(os\.system\)/);
    // The honest model passes the same inspection.
    expect(runBin('intoto', ['scan-model', 'model.pkl'], { cwd: honest.out, env }).status).toBe(0);
  });

  it('attack: the model swapped after signing (another seed: it loads and scans clean) -> the verify-model inspection fails', () => {
    const attack = join(root, 'attack-d');
    cpSync(honest.out, attack, { recursive: true });
    const made = run('/usr/bin/python3', [join(ROOT, 'steps', 'train.py'), join(ROOT, 'layouts', 'ml', 'data', 'flowers.csv'), '--out', join(attack, 'model.pkl'), '--seed', '8']);
    expect(made.status, made.stderr).toBe(0);
    expect(readFileSync(join(attack, 'model.pkl'))).not.toEqual(readFileSync(join(honest.out, 'model.pkl')));
    const result = runBin('intoto', ['verify', '-l', 'root.layout', '-k', join(keyDir, 'owner.pub')], { cwd: attack, env });
    expect(result.status).toBe(1);
    expect(result.stdout + result.stderr).toMatch(/FAIL E_INSPECTION_FAILED: inspection 'verify-model': .* exited with 1: model\.pkl: changed: sha256 [0-9a-f]{64} on disk, [0-9a-f]{64} signed/);
    // scan-model, which runs first, found nothing wrong with it: only the signature tells.
    expect(runBin('intoto', ['scan-model', 'model.pkl'], { cwd: attack, env }).status).toBe(0);
  });

  it('attack: a link signed by a key not authorised for its step -> E_THRESHOLD', () => {
    const attack = join(root, 'attack-c');
    cpSync(honest.out, attack, { recursive: true });
    const link = readdirSync(attack).find((f) => f.startsWith('validate.'))!;
    const signed = runBin('intoto', ['sign', '-q', '-f', link, '-k', join(keyDir, 'evaluator'), '-o', link], { cwd: attack, env });
    expect(signed.status, signed.stderr).toBe(0);
    expect(verdict(attack)).toBe('E_THRESHOLD');
  });
});

describe('intoto pipeline run: the tarball example', () => {
  it('builds, packages, verifies with the untar inspection; the reference agrees', () => {
    const result = pipeline(TARBALL, 'tarball');
    expect(result.status, result.stderr + result.stdout).toBe(0);
    expect(readdirSync(result.out).filter((f) => !f.endsWith('.link')).sort()).toEqual(['app.tar.gz', 'root.layout']);
    expect(verdict(result.out)).toBe('PASS');
    if (haveReference) expect(referenceVerdict(result.out, 'tarball')).toBe(0);
  });

  it('takes relative paths for the layout, keys, workspace and output, as people type them', () => {
    const args = ['pipeline', 'run', relative(root, TARBALL), '--keys', 'keys', '--pubkey-dir', 'keys', '--out', 'rel-out', '--workspace', 'rel-work'];
    const result = runBin('intoto', args, { cwd: root, env });
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(join(root, 'rel-out', 'app.tar.gz'))).toBe(true);
  });

  it('uses a layout the owner signed elsewhere (intoto layout sign), and refuses one from another source', () => {
    const layout = join(root, 'tarball-signed.layout');
    const signed = runBin('intoto', ['layout', 'sign', TARBALL, '-k', join(keyDir, 'owner'), '--pubkey-dir', keyDir, '-o', layout], { env });
    expect(signed.status, signed.stderr).toBe(0);
    const result = pipeline(TARBALL, 'tarball-presigned', ['--layout', layout, '--layout-key', join(keyDir, 'owner.pub')]);
    expect(result.status, result.stderr).toBe(0);
    // The layout `intoto layout sign` wrote, byte for byte, is what the reference verifies here.
    expect(readFileSync(join(result.out, 'root.layout'))).toEqual(readFileSync(layout));
    if (haveReference) expect(referenceVerdict(result.out, 'tarball-presigned')).toBe(0);
    const other = pipeline(ML, 'ml-wrong-layout', ['--layout', layout, '--layout-key', join(keyDir, 'owner.pub')]);
    expect(other.status).toBe(1);
    expect(other.stderr).toContain('[E_LAYOUT_SOURCE]');
  });
});

describe('intoto pipeline run: reports', () => {
  // Variants of the tarball layout, in a project directory of their own.
  const project = join(root, 'project');
  cpSync(join(ROOT, 'layouts', 'tarball', 'src'), join(project, 'src'), { recursive: true });
  const write = (name: string, text: string): string => {
    const file = join(project, `${name}.yaml`);
    writeFileSync(file, text);
    return file;
  };
  const tarball = readFileSync(TARBALL, 'utf8').replace('src: tarball/src', 'src: src');

  it('a cycle among steps is refused before anything runs, naming the cycle', () => {
    const file = write('cycle', tarball.replace('materials: ["ALLOW src/*", "DISALLOW *"]', 'materials: ["ALLOW src/*", "MATCH x WITH PRODUCTS FROM package", "DISALLOW *"]'));
    const result = pipeline(file, 'cycle');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('build -> package -> build');
    expect(result.stderr).toContain('[E_PIPELINE_CYCLE]');
    expect(existsSync(result.out)).toBe(false);
  });

  it('a failing step stops the pipeline with its name, exit code and output; its link is kept', () => {
    const file = write('fail', tarball.replace('run: [gzip, -n, app.tar]', 'run: [python3, -c, "import sys; print(\'disk full\', file=sys.stderr); sys.exit(3)"]'));
    const result = pipeline(file, 'fail');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/step 'package' \(functionary packager\) exited with 3: .*disk full \[E_STEP_FAILED\]/);
    expect(result.stdout).toContain('STOPPED');
    expect(readdirSync(join(result.work, 'links')).sort().map((f) => f.split('.')[0])).toEqual(['build', 'package']);
    expect(existsSync(join(result.out, 'root.layout'))).toBe(false);
  });

  it('threshold runs that disagree stop the pipeline with E_LINKS_DISAGREE', () => {
    const text = tarball
      .replace('  packager: keys/packager.pub', '  packager: keys/packager.pub\n  builder-2: keys/builder-2.pub')
      .replace('functionaries: [builder]', 'functionaries: [builder, builder-2]\n    threshold: 2')
      .replace(/run: tar .*/, 'run: [python3, -c, "import os; open(\'app.tar\', \'wb\').write(os.urandom(16))"]');
    const file = write('disagree', text);
    const made = runBin('intoto', ['keygen', '-q', '-f', join(keyDir, 'builder-2')], { env });
    expect(made.status).toBe(0);
    const result = pipeline(file, 'disagree');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/step 'build': the runs of builder and builder-2 disagree .*app\.tar.* \[E_LINKS_DISAGREE\]/);
  });

  describe('--param', () => {
    // The archive's name is a parameter: in the build's run and products, the package step's
    // rules and run, the inspection, and the outputs.
    const parameterised = tarball
      .replace('-cf app.tar src', '-cf {ARCHIVE} src')
      .replace('products: ["CREATE app.tar", ', 'products: ["CREATE {ARCHIVE}", ')
      .replace('run: [gzip, -n, app.tar]', 'run: [gzip, -n, "{ARCHIVE}"]')
      .replace('materials: ["MATCH app.tar WITH PRODUCTS FROM build", "DISALLOW *"]', 'materials: ["MATCH {ARCHIVE} WITH PRODUCTS FROM build", "DISALLOW *"]')
      .replace('products: ["CREATE app.tar.gz", "DISALLOW *"]', 'products: ["CREATE {ARCHIVE}.gz", "DISALLOW *"]')
      .replace('run: [tar, -xzf, app.tar.gz]', 'run: [tar, -xzf, "{ARCHIVE}.gz"]')
      .replaceAll('MATCH app.tar.gz WITH PRODUCTS FROM package', 'MATCH {ARCHIVE}.gz WITH PRODUCTS FROM package')
      .replace('outputs: [app.tar.gz]', 'outputs: ["{ARCHIVE}.gz"]');

    it('substitutes the values into run, rules and outputs, signs the placeholders, and verifies with them', () => {
      expect(parameterised.match(/\{ARCHIVE\}/g)?.length).toBe(9); // every edit above took
      const file = write('param', parameterised);
      const result = pipeline(file, 'param', ['--param', 'ARCHIVE=release 1.tar']);
      expect(result.status, result.stderr).toBe(0);
      expect(readdirSync(result.out)).toContain('release 1.tar.gz');
      expect(readFileSync(join(result.out, 'root.layout'), 'utf8')).toContain('"{ARCHIVE}.gz"'); // rules are token lists
      expect(result.stdout).toContain("--param 'ARCHIVE=release 1.tar'");
      const verify = (extra: string[]): ReturnType<typeof runBin> => runBin('intoto', ['verify', '-l', 'root.layout', '-k', join(keyDir, 'owner.pub'), ...extra], { cwd: result.out, env });
      expect(verify(['--param', 'ARCHIVE=release 1.tar']).status).toBe(0);
      const without = verify([]);
      expect(without.status).toBe(1);
      expect(without.stderr).toContain('FAIL E_PARAM: root.layout: step \'build\' expected_products[0]: parameter {ARCHIVE} has no value');
      const other = verify(['--param', 'ARCHIVE=other.tar']); // the rules then name a file no step made
      expect(other.status).toBe(1);
      expect(other.stderr).toMatch(/^FAIL E_RULE_DISALLOW: step 'build': .* matched "release 1.tar"$/m);
    });

    it('a placeholder without a value stops the pipeline before any step runs', () => {
      const file = write('param-missing', parameterised);
      const result = pipeline(file, 'param-missing');
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/parameter \{ARCHIVE\} has no value; pass --param ARCHIVE=VALUE \[E_PARAM\]/);
      expect(existsSync(result.out)).toBe(false);
      expect(existsSync(result.work)).toBe(false);
    });

    it('a malformed --param is a usage error (exit 2)', () => {
      expect(pipeline(write('param-usage', parameterised), 'param-usage', ['--param', 'ARCHIVE']).status).toBe(2);
    });
  });

  describe('encrypted keys', () => {
    // The builder's and the owner's keys encrypted (as `intoto keygen -p` writes them), the
    // packager's not: only the encrypted ones are asked for, in the order they are used.
    const keys = join(root, 'encrypted-keys');
    cpSync(keyDir, keys, { recursive: true });
    for (const [name, password] of [['builder', 'build pw'], ['owner', 'owner pw']] as const) {
      const made = runBin('intoto', ['keygen', '-q', '-f', '-p', join(keys, name)], { env, input: `${password}\n${password}\n` });
      if (made.status !== 0) throw new Error(made.stderr);
    }
    const run = (name: string, extra: string[], input: string): ReturnType<typeof pipeline> => pipeline(TARBALL, name, extra, { keys, input });

    it('without --prompt, an encrypted key is refused before anything runs, naming it', () => {
      const result = run('enc-no-prompt', [], '');
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`${join(keys, 'builder')}: the key of functionary 'builder' is encrypted; give --prompt to be asked for its password [E_KEY_PASSWORD]`);
      expect(existsSync(result.out)).toBe(false);
    });

    it('with --prompt, each encrypted key is asked for once and the pipeline passes', () => {
      const result = run('enc-prompt', ['--prompt'], 'build pw\nowner pw\n');
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain('PASSED');
      expect(`${result.stdout}${result.stderr}`).not.toContain(' pw');
    });

    it('with --prompt, a wrong password fails with E_KEY_PASSWORD before any step runs', () => {
      const result = run('enc-wrong', ['--prompt'], 'build pw\nnot the owner pw\n');
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('[E_KEY_PASSWORD]');
      expect(existsSync(join(result.work, 'runs'))).toBe(false);
    });
  });

  it('a private key that is not the functionary\'s is refused before any step runs', () => {
    const wrong = join(root, 'wrong-keys');
    cpSync(keyDir, wrong, { recursive: true });
    cpSync(join(keyDir, 'packager'), join(wrong, 'builder'));
    const result = runBin('intoto', ['pipeline', 'run', TARBALL, '--keys', wrong, '--pubkey-dir', keyDir, '--out', join(root, 'wrong-out')], { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[E_KEYID_MISMATCH]');
    expect(existsSync(join(root, 'wrong-out'))).toBe(false);
  });
});

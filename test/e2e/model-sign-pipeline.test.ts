import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runBin } from '../helpers/bin.js';
import { bwrapAvailable, referenceAvailable, run, tempDir } from '../helpers/reference.js';
import { intotoOnPath } from '../pipeline/helpers.js';

/**
 * A pipeline with a built-in `uses: model-sign` step, end to end through the built binary:
 * the runner signs the model directory a step built with the platform functionary's ECDSA key,
 * the signature becomes the step's product, a `uses: model-verify` inspection checks it with
 * the key the layout carries; the result verifies with `intoto verify` and with the reference
 * in-toto-verify 1.3.1. Then the attacks: a model swapped after signing, or swapped and
 * re-signed with another key, is caught by the inspection with model verify's reason; a step
 * and an inspection that try to read the signing key read nothing (under bubblewrap), and the
 * same commands without the sandbox do read it (the control: the test can fail). And the ways
 * a model-sign step can fail, each with its code, no link and the workspace kept.
 */
const haveBwrap = bwrapAvailable();
const haveReference = referenceAvailable();
const env = intotoOnPath();
const root = tempDir('intoto-e2e-model-sign-');
// Keys outside /tmp: the sandbox gives every command a private /tmp, which would hide keys
// there whatever we do; under the repository's build/ they are host files a command could
// read unless the runner hides them.
const keyHome = join(ROOT, 'build', `test-model-sign-keys-${process.pid}`);
const keyDir = join(keyHome, 'keys');
afterAll(() => rmSync(keyHome, { recursive: true, force: true }));
mkdirSync(keyDir, { recursive: true });
for (const [name, type] of [['owner', 'ed25519'], ['builder', 'ed25519'], ['snoop', 'ed25519'], ['platform', 'ecdsa'], ['platform-ed25519', 'ed25519']] as const) {
  const made = runBin('intoto', ['keygen', '-q', '-t', type, join(keyDir, name)], { env });
  if (made.status !== 0) throw new Error(made.stderr);
}
const PRIVATE = ['owner', 'builder', 'snoop', 'platform'].map((name) => readFileSync(join(keyDir, name), 'utf8'));

const project = join(root, 'project');
mkdirSync(join(project, 'src'), { recursive: true });
writeFileSync(join(project, 'src', 'weights.txt'), '0.25 0.5 0.125\n');

/**
 * The layout: build makes model/ (two files) from the input; sign (built in) signs it with
 * platform's key; snoop, run by another functionary after sign, records how many bytes of
 * each private key it could read; the verify-model inspection checks the signature, and the
 * peek inspection reports what it could read of the keys (it passes either way: the report is
 * the evidence).
 */
function layout(options: { signMaterials?: string; signModel?: string; buildRun?: string; extraSignProducts?: string; keys?: string } = {}): string {
  const from = options.keys ?? keyDir;
  const keys = ['owner', 'builder', 'snoop', 'platform'].map((k) => join(from, k)).join(' ');
  // Single-quoted YAML scalars (no escapes but ''), and no braces (they would be parameters).
  const peek = `for k in ${keys}; do printf "%s %s\\n" "$(basename $k)" "$(cat $k 2>/dev/null | wc -c)"; done`;
  return `expires_in: 90d
functionaries:
  builder: ${join(from, 'builder.pub')}
  snoop: ${join(from, 'snoop.pub')}
  platform: ${join(from, 'platform.pub')}
inputs:
  src/weights.txt: src/weights.txt
outputs: [model/*, model.sig, seen.txt]
steps:
  - name: build
    functionaries: [builder]
    run: [sh, -c, '${options.buildRun ?? 'mkdir model && cp src/weights.txt model/weights.txt && echo layers=3 > model/config.json'}']
    materials: ["ALLOW src/*", "DISALLOW *"]
    products: ["CREATE model/*", "MATCH src/* WITH MATERIALS FROM build", "DISALLOW *"]
  - name: sign
    functionaries: [platform]
    uses: model-sign
    model: ${options.signModel ?? 'model'}
    materials: [${options.signMaterials ?? '"MATCH model/* WITH PRODUCTS FROM build"'}, "DISALLOW *"]
    products: ["CREATE model.sig", ${options.extraSignProducts ?? ''}"MATCH model/* WITH PRODUCTS FROM build", "DISALLOW *"]
  - name: snoop
    functionaries: [snoop]
    run: [sh, -c, '(${peek}) > seen.txt']
    materials: ["DISALLOW *"]
    products: ["CREATE seen.txt", "DISALLOW *"]
inspections:
  - name: verify-model
    uses: model-verify
    model: model
    signature: model.sig
    signer: platform
    materials: ["MATCH model/* WITH PRODUCTS FROM build", "MATCH model.sig WITH PRODUCTS FROM sign", "MATCH seen.txt WITH PRODUCTS FROM snoop", "DISALLOW *"]
    products: ["MATCH * WITH MATERIALS FROM verify-model", "DISALLOW *"]
  - name: peek
    run: [sh, -c, '${peek}']
    materials: ["MATCH model/* WITH PRODUCTS FROM build", "MATCH model.sig WITH PRODUCTS FROM sign", "MATCH seen.txt WITH PRODUCTS FROM snoop", "DISALLOW *"]
    products: ["MATCH * WITH MATERIALS FROM peek", "DISALLOW *"]
`;
}

let counter = 0;
/** `intoto pipeline run --json` of a layout text; the result, the parsed report, out and work. */
function pipeline(text: string, extra: string[] = [], { work, input = '', keys = keyDir }: { work?: string; input?: string; keys?: string } = {}) {
  const name = `run-${counter++}`;
  const file = join(project, `${name}.yaml`);
  writeFileSync(file, text);
  const out = join(root, `${name}-out`);
  const workspace = work ?? join(root, `${name}-work`);
  const result = runBin('intoto', ['pipeline', 'run', file, '--keys', keys, '--out', out, '--workspace', workspace, '--json', ...extra], { env, input });
  const report = JSON.parse(result.stdout) as {
    passed: boolean;
    failure: { code: string; message: string; details: string[] } | null;
    runs: { step: string; functionary: string; builtin?: string; sandboxed: boolean }[];
    verification: { layout: { inspections: { name: string; output: { stdout: string[] } }[] } } | null;
  };
  return { result, report, out, work: workspace, file };
}

/** "owner 0", ... -> name -> bytes read. */
function bytesRead(lines: readonly string[]): Map<string, number> {
  return new Map(lines.filter((l) => /^\S+ \d+$/.test(l.trim())).map((l) => [l.trim().split(' ')[0]!, Number(l.trim().split(' ')[1])]));
}

/** `intoto verify --json` in `dir`: PASS, or the failure's code and message. */
function verdict(dir: string): { code: string; message: string } {
  const result = runBin('intoto', ['verify', '-l', 'root.layout', '-k', join(keyDir, 'owner.pub'), '--json'], { cwd: dir, env });
  const report = JSON.parse(result.stdout) as { passed: boolean; failure?: { code: string; message: string } };
  expect(result.status).toBe(report.passed ? 0 : 1);
  return report.passed ? { code: 'PASS', message: '' } : { code: report.failure?.code ?? '?', message: report.failure?.message ?? '' };
}

describe.skipIf(!haveBwrap)('a pipeline with a model-sign step (sandboxed)', () => {
  const honest = pipeline(layout(), ['--sandbox', 'bwrap']);

  it('passes: build, then sign performed by the runner (no command), snoop, and both inspections', () => {
    expect(honest.result.status, honest.result.stderr + honest.result.stdout).toBe(0);
    expect(honest.report.passed).toBe(true);
    expect(honest.report.runs.map((r) => [r.step, r.functionary, r.builtin ?? null])).toEqual([
      ['build', 'builder', null],
      ['sign', 'platform', 'model-sign'],
      ['snoop', 'snoop', null],
    ]);
    expect(readdirSync(honest.out).filter((f) => !f.endsWith('.link')).sort()).toEqual(['model', 'model.sig', 'root.layout', 'seen.txt']);
  });

  it("the sign link records the signature as its product, the materials it signed, and a command without key path or key material", () => {
    const file = readdirSync(honest.out).find((f) => f.startsWith('sign.'))!;
    const link = JSON.parse(readFileSync(join(honest.out, file), 'utf8')) as { signed: { command: string[]; materials: Record<string, unknown>; products: Record<string, unknown>; byproducts: { stdout: string; 'return-value': number } } };
    expect(link.signed.command).toEqual(['intoto', 'model', 'sign', 'model', '-o', 'model.sig']);
    expect(Object.keys(link.signed.materials).sort()).toEqual(['model/config.json', 'model/weights.txt']);
    expect(Object.keys(link.signed.products).sort()).toEqual(['model.sig', 'model/config.json', 'model/weights.txt']);
    expect(link.signed.byproducts['return-value']).toBe(0);
    expect(link.signed.byproducts.stdout).toMatch(/^signed model: 2 file\(s\), root digest sha256:[0-9a-f]{64}, key hint [0-9a-f]{64} -> model\.sig/);
    const text = readFileSync(join(honest.out, file), 'utf8');
    expect(text).not.toContain(keyDir);
    for (const secret of PRIVATE) expect(text).not.toContain(secret.slice(40, 80));
    // The signature is a standard OMS bundle over exactly those files, by platform's key.
    const check = runBin('intoto', ['model', 'verify', 'model', '--signature', 'model.sig', '-k', join(keyDir, 'platform.pub')], { cwd: honest.out, env });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stderr + check.stdout).toMatch(/2 file\(s\) match the signature/);
  });

  it('no command read a signing key: the snoop step read 0 bytes of each, and so did the peek inspection', () => {
    const seen = bytesRead(readFileSync(join(honest.out, 'seen.txt'), 'utf8').split('\n'));
    expect(seen).toEqual(new Map([['owner', 0], ['builder', 0], ['snoop', 0], ['platform', 0]]));
    const peek = honest.report.verification?.layout.inspections.find((i) => i.name === 'peek');
    expect(bytesRead(peek?.output.stdout ?? [])).toEqual(new Map([['owner', 0], ['builder', 0], ['snoop', 0], ['platform', 0]]));
  });

  it('nor with the workspace inside the key directory, where only key files (not their directory) can be covered', () => {
    const inside = pipeline(layout(), ['--sandbox', 'bwrap'], { work: join(keyDir, `work-${process.pid}`) });
    try {
      expect(inside.result.status, inside.result.stderr).toBe(0);
      const seen = bytesRead(readFileSync(join(inside.out, 'seen.txt'), 'utf8').split('\n'));
      // snoop's own key, platform's (signed before snoop ran) and builder's: all covered.
      expect(seen.get('platform')).toBe(0);
      expect(seen.get('builder')).toBe(0);
      expect(seen.get('snoop')).toBe(0);
    } finally {
      rmSync(inside.work, { recursive: true, force: true });
    }
  });

  it('verifies again with intoto verify, and with the reference in-toto-verify 1.3.1 (running both inspections), neither warning about the sign link\'s command', () => {
    expect(verdict(honest.out).code).toBe('PASS');
    const ours = runBin('intoto', ['verify', '-l', 'root.layout', '-k', join(keyDir, 'owner.pub')], { cwd: honest.out, env });
    expect(ours.status).toBe(0);
    expect(ours.stderr).not.toMatch(/command/i);
    if (!haveReference) return;
    const copy = join(root, 'ref');
    cpSync(honest.out, copy, { recursive: true });
    renameSync(join(copy, 'root.layout'), join(root, 'ref.layout'));
    const ref = run('in-toto-verify', ['-l', join(root, 'ref.layout'), '-k', join(keyDir, 'owner.pub'), '-t', 'ed25519'], { cwd: copy, env });
    expect(ref.status, ref.stderr).toBe(0);
    expect(ref.stderr).not.toMatch(/expected command|differs/i);
    // The reference did run the model check: the same copy with the model swapped fails it.
    writeFileSync(join(copy, 'model', 'weights.txt'), '9 9 9\n');
    const swapped = run('in-toto-verify', ['-l', join(root, 'ref.layout'), '-k', join(keyDir, 'owner.pub'), '-t', 'ed25519'], { cwd: copy, env });
    expect(swapped.status).not.toBe(0);
    expect(swapped.stderr).toMatch(/intoto', 'model', 'verify'/);
  });

  it('attack: the model swapped after signing -> the verify-model inspection fails with model verify\'s reason', () => {
    const attack = join(root, 'swapped');
    cpSync(honest.out, attack, { recursive: true });
    writeFileSync(join(attack, 'model', 'weights.txt'), '0.25 0.5 0.126\n');
    const v = verdict(attack);
    expect(v.code).toBe('E_INSPECTION_FAILED');
    expect(v.message).toMatch(/^inspection 'verify-model': .* exited with 1: weights\.txt: changed: sha256 [0-9a-f]{64} on disk, [0-9a-f]{64} signed$/);
  });

  it('attack: the model swapped and re-signed with another ECDSA key -> refused: not platform\'s signature', () => {
    const attack = join(root, 'resigned');
    cpSync(honest.out, attack, { recursive: true });
    writeFileSync(join(attack, 'model', 'weights.txt'), '6 6 6\n');
    const mallory = join(root, 'mallory');
    expect(runBin('intoto', ['keygen', '-q', '-t', 'ecdsa', mallory], { env }).status).toBe(0);
    const signed = runBin('intoto', ['model', 'sign', 'model', '-k', mallory, '-o', 'model.sig'], { cwd: attack, env });
    expect(signed.status, signed.stderr).toBe(0);
    const v = verdict(attack);
    expect(v.code).toBe('E_INSPECTION_FAILED');
    expect(v.message).toMatch(/inspection 'verify-model': .* exited with 1: .*signed with another key/);
  });

  it('intoto trace follows the model through build and sign, and names the step after which it changed', () => {
    const trace = runBin('intoto', ['trace', 'model/weights.txt', '-l', 'root.layout', '-k', join(keyDir, 'owner.pub'), '--json'], { cwd: honest.out, env });
    expect(trace.status, trace.stderr).toBe(0);
    const report = JSON.parse(trace.stdout) as { points: { kind: string; name: string; materials?: string; products?: string; verified: boolean }[] };
    expect(report.points.map((p) => [p.kind, p.name, p.verified])).toEqual([['step', 'build', true], ['step', 'sign', true]]);
    // The signing step saw and left the digest build made.
    const [build, sign] = report.points;
    expect(sign?.materials).toBe(build?.products);
    expect(sign?.products).toBe(build?.products);
    const sig = runBin('intoto', ['trace', 'model.sig', '-l', 'root.layout', '-k', join(keyDir, 'owner.pub')], { cwd: honest.out, env });
    expect(sig.status, sig.stderr).toBe(0);
    expect(sig.stdout).toMatch(/sign/);
    const changed = join(root, 'trace-swapped');
    cpSync(honest.out, changed, { recursive: true });
    writeFileSync(join(changed, 'model', 'weights.txt'), '1 1 1\n');
    const swapped = runBin('intoto', ['trace', 'model/weights.txt', '-l', 'root.layout', '-k', join(keyDir, 'owner.pub')], { cwd: changed, env });
    expect(swapped.status).toBe(1);
    expect(swapped.stderr).toMatch(/model\/weights\.txt changed after step 'sign' products .* \[E_TRACE_CHANGED\]/);
  });
});

describe('an encrypted platform key', () => {
  const keys = join(root, 'encrypted-keys');
  cpSync(keyDir, keys, { recursive: true });
  const made = runBin('intoto', ['keygen', '-q', '-f', '-p', '-t', 'ecdsa', join(keys, 'platform')], { env, input: 'platform pw\nplatform pw\n' });
  if (made.status !== 0) throw new Error(made.stderr);

  it('is asked for once with --prompt, and signs the model', () => {
    const result = pipeline(layout({ keys }), ['--prompt', '--sandbox', haveBwrap ? 'bwrap' : 'none'], { keys, input: 'platform pw\n' });
    expect(result.result.status, result.result.stderr).toBe(0);
    expect(result.report.passed).toBe(true);
    expect(result.result.stdout + result.result.stderr).not.toContain('platform pw');
  });

  it('without --prompt, is refused before anything runs, naming the functionary', () => {
    const result = pipeline(layout({ keys }), [], { keys });
    expect(result.result.status).toBe(1);
    expect(result.report.failure?.message).toContain(`${join(keys, 'platform')}: the key of functionary 'platform' is encrypted; give --prompt`);
    expect(existsSync(result.work)).toBe(false);
  });
});

describe('the control: without the sandbox, the same commands do read the keys', () => {
  it('snoop and peek read every key with --sandbox none (so the zero counts above mean something)', () => {
    const bare = pipeline(layout(), ['--sandbox', 'none']);
    expect(bare.result.status, bare.result.stderr).toBe(0);
    const seen = bytesRead(readFileSync(join(bare.out, 'seen.txt'), 'utf8').split('\n'));
    for (const name of ['owner', 'builder', 'snoop', 'platform']) expect(seen.get(name)).toBeGreaterThan(0);
  });
});

describe('a model-sign step that cannot sign stops the pipeline: E_STEP_FAILED, no link, the workspace kept', () => {
  it.each([
    ['the model is not among its materials', { signMaterials: '"MATCH nothing/* WITH PRODUCTS FROM build"' }, /could not sign model: it is not among the step's materials \(its rules staged nothing\)/],
    ['the model is empty (only ignored files)', { buildRun: 'mkdir model && touch model/.gitignore' }, /could not sign model: .*model: no file to sign .*\[E_MODEL_EMPTY\]/],
    ['the signature would overwrite a material', { buildRun: 'mkdir model && echo x > model/w && echo forged > model.sig', signMaterials: '"MATCH model* WITH PRODUCTS FROM build"' }, /model\.sig is already in the workspace \(staged by the step's material rules\)/],
  ])('%s', (_name, options, message) => {
    const failed = pipeline(layout(options), ['--sandbox', haveBwrap ? 'bwrap' : 'none']);
    expect(failed.result.status).toBe(1);
    expect(failed.report.failure?.code).toBe('E_STEP_FAILED');
    expect(failed.report.failure?.message).toMatch(/^step 'sign' \(functionary platform\) /);
    expect(failed.report.failure?.message).toMatch(message);
    expect(failed.report.failure?.details).toContain(`workspace (kept): ${join(failed.work, 'runs', 'sign', 'platform')}`);
    expect(readdirSync(join(failed.work, 'links')).map((f) => f.split('.')[0])).toEqual(['build']);
    expect(existsSync(failed.out)).toBe(false);
  });

  it('a functionary key that is not ECDSA is refused before anything runs (layout check), naming the key', () => {
    const text = layout().replace(join(keyDir, 'platform.pub'), join(keyDir, 'platform-ed25519.pub'));
    const refused = pipeline(text);
    expect(refused.result.status).toBe(1);
    expect(refused.report.failure?.code ?? '').toBe('E_KEY_UNSUPPORTED');
    expect(existsSync(refused.work)).toBe(false);
  });
});

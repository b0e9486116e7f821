import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIAGNOSTIC_IDS, type Diagnostic, type DiagnosticId } from '../../src/pipeline/diagnostics.js';
import { checkLayoutSource, loadLayoutSource } from '../../src/pipeline/load.js';
import { InTotoError } from '../../src/errors.js';
import { tempDir } from '../helpers/reference.js';
import { BASE_YAML, edit, makeProject, NOW, SIGN_YAML } from './helpers.js';

/**
 * `intoto layout check` over good and bad YAML: every error and warning id, each from a case
 * named after the attack or mistake it stands for, with the place it is reported at.
 */
const dir = tempDir('intoto-layout-check-');
const keys = makeProject(dir, ['alice', 'bob', 'carol', 'owner', 'platform']);
const alice = keys.get('alice')!;
const bob = keys.get('bob')!;

let counter = 0;
function check(text: string, options: { ownerKeys?: boolean } = {}): { diagnostics: readonly Diagnostic[]; source: ReturnType<typeof checkLayoutSource>['source'] } {
  const file = join(dir, `layout-${counter++}.yaml`);
  writeFileSync(file, text);
  return checkLayoutSource({ file, now: NOW, ...(options.ownerKeys ? { ownerKeys: [keys.get('owner')!.public, alice.public] } : {}) });
}

const B = BASE_YAML;
const swapSteps = (text: string): string => {
  const [head, rest] = text.split('steps:\n') as [string, string];
  const [build, pkg] = rest.split(/(?=  - name: package)/) as [string, string];
  return `${head}steps:\n${pkg}${build}`;
};

interface Case {
  readonly name: string;
  readonly text: string;
  readonly id: DiagnosticId;
  readonly severity: 'error' | 'warning';
  readonly line?: number;
  readonly code?: string;
  readonly ownerKeys?: boolean;
}

const cases: readonly Case[] = [
  // Unsafe YAML.
  { name: 'alias bomb (billion laughs) is refused before anything expands', text: `a: &a ["lol", "lol", "lol"]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n${B}`, id: 'yaml-alias', severity: 'error', line: 1, code: 'E_LAYOUT_SOURCE' },
  { name: 'anchor and alias reusing a rule list', text: edit(edit(B, 'materials: ["ALLOW src/*", "DISALLOW *"]', 'materials: &m ["ALLOW src/*", "DISALLOW *"]'), 'materials: ["MATCH app.tar WITH PRODUCTS FROM build", "DISALLOW *"]', 'materials: *m'), id: 'yaml-alias', severity: 'error', line: 12 },
  { name: 'custom tag that other loaders would execute (python/object/apply)', text: edit(B, 'readme: a test pipeline', 'readme: !!python/object/apply:os.system ["id"]'), id: 'yaml-tag', severity: 'error', line: 2 },
  { name: 'local tag', text: edit(B, 'readme: a test pipeline', 'readme: !secret a test pipeline'), id: 'yaml-tag', severity: 'error', line: 2 },
  { name: 'duplicate key: a second functionaries list would silently win', text: edit(B, '    functionaries: [bob]\n', '    functionaries: [bob]\n    functionaries: [alice]\n'), id: 'yaml-duplicate-key', severity: 'error', line: 16 },
  { name: 'merge key', text: edit(B, '    functionaries: [bob]\n', '    <<: {threshold: 1}\n    functionaries: [bob]\n'), id: 'yaml-merge-key', severity: 'error', line: 15 },
  { name: 'complex (list) key', text: `${B}? [a, b]\n: c\n`, id: 'yaml-complex-key', severity: 'error', line: 19 },
  { name: 'a second document after ---', text: `${B}---\nsteps: []\n`, id: 'yaml-multiple-documents', severity: 'error' },
  { name: 'flow nesting 100,000 deep (stack exhaustion)', text: `${B}x: ${'['.repeat(100_000)}\n`, id: 'yaml-limit', severity: 'error', line: 19 },
  { name: 'broken syntax', text: edit(B, 'steps:\n', 'steps: [\n'), id: 'yaml-syntax', severity: 'error' },
  { name: 'a file of broken lines (1.3 million errors once) stops after the first 100', text: `${B}${'x: ]\n'.repeat(200_000)}`, id: 'too-many-errors', severity: 'error' },
  // Implicit typing must not change values.
  { name: 'a date without a time (would be a date in YAML 1.1)', text: edit(B, 'expires: "2027-01-01T00:00:00Z"', 'expires: 2027-01-01'), id: 'expires-format', severity: 'error', line: 1, code: 'E_EXPIRES_FORMAT' },
  { name: 'hex keyid that YAML 1.2 core reads as the float 0 stays text', text: edit(B, 'bob: keys/bob.pub', 'bob: {key: keys/bob.pub, keyid: 0e123456}'), id: 'keyid-mismatch', severity: 'error', line: 5, code: 'E_KEYID_MISMATCH' },
  // Shape.
  { name: 'threshold that is not a number', text: edit(B, '    functionaries: [bob]\n', '    functionaries: [bob]\n    threshold: two\n'), id: 'schema', severity: 'error', line: 16, code: 'E_SCHEMA' },
  { name: 'a JSON-layout field name', text: edit(B, 'materials: ["ALLOW src/*", "DISALLOW *"]', 'expected_materials: ["ALLOW src/*", "DISALLOW *"]'), id: 'schema', severity: 'error', line: 12 },
  { name: 'both expires and expires_in', text: `expires_in: 30d\n${B}`, id: 'schema', severity: 'error' },
  { name: 'no steps', text: B.slice(0, B.indexOf('steps:')), id: 'schema', severity: 'error' },
  // Functionaries and thresholds.
  { name: 'threshold above the functionaries', text: edit(B, '    functionaries: [bob]\n', '    functionaries: [bob]\n    threshold: 2\n'), id: 'threshold-too-high', severity: 'error', line: 16, code: 'E_THRESHOLD' },
  { name: 'a step nobody can sign', text: edit(B, 'functionaries: [bob]', 'functionaries: []'), id: 'step-unsignable', severity: 'error', line: 15, code: 'E_THRESHOLD' },
  { name: 'a functionary that is not declared', text: edit(B, 'functionaries: [bob]', 'functionaries: [mallory]'), id: 'functionary-unknown', severity: 'error', line: 15 },
  { name: 'one key under two names counts twice toward a threshold', text: edit(B, 'bob: keys/bob.pub', 'bob: keys/alice.pub'), id: 'functionary-same-key', severity: 'error', line: 5, code: 'E_LAYOUT_KEYS' },
  { name: 'a missing key file', text: edit(B, 'bob: keys/bob.pub', 'bob: keys/nobody.pub'), id: 'key-file', severity: 'error', line: 5, code: 'E_IO' },
  { name: 'a private key where a public key belongs', text: edit(B, 'bob: keys/bob.pub', 'bob: keys/bob'), id: 'key-file', severity: 'error', code: 'E_KEY_PUBLIC_EXPECTED' },
  { name: 'the owner key also signs a step', text: B, id: 'owner-is-functionary', severity: 'warning', line: 4, ownerKeys: true },
  { name: 'a declared functionary authorised for nothing', text: edit(B, '  bob: keys/bob.pub\n', '  bob: keys/bob.pub\n  carol: keys/carol.pub\n'), id: 'functionary-unused', severity: 'warning', line: 6 },
  { name: 'one key for two steps', text: edit(edit(B, 'functionaries: [bob]', 'functionaries: [alice]'), '  bob: keys/bob.pub\n', ''), id: 'functionary-many-steps', severity: 'warning', line: 4 },
  // Names and commands.
  { name: 'a step name that climbs out of the link directory', text: edit(B, 'name: package', 'name: ../package'), id: 'step-name', severity: 'error', line: 14, code: 'E_STEP_NAME' },
  { name: 'two steps with one name', text: edit(edit(B, 'name: package', 'name: build'), 'FROM build", "DISALLOW *"]\n    products: ["CREATE app.tar.gz"', 'FROM build", "DISALLOW *"]\n    products: ["CREATE app.tar.gz"'), id: 'duplicate-name', severity: 'error', line: 14, code: 'E_DUPLICATE_NAME' },
  { name: 'a run string with an unclosed quote', text: edit(B, 'run: gzip -n app.tar', 'run: gzip -n "app.tar'), id: 'run-syntax', severity: 'error', line: 16 },
  { name: 'a step without run', text: edit(B, '    run: gzip -n app.tar\n', ''), id: 'step-not-run', severity: 'warning', line: 14 },
  { name: 'expected_command that differs from run', text: edit(B, '    run: gzip -n app.tar\n', '    run: gzip -n app.tar\n    expected_command: [gzip, app.tar]\n'), id: 'expected-command-differs', severity: 'warning', line: 17 },
  // Built-in model signing (more in model-sign-layout.test.ts).
  { name: 'a model-sign step by a functionary whose key is not ECDSA', text: edit(SIGN_YAML, 'platform: keys/platform.pub', 'platform: keys/carol.pub'), id: 'model-sign-key', severity: 'error', line: 21, code: 'E_KEY_UNSUPPORTED' },
  { name: 'threshold 2 on a model-sign step (two signatures never agree)', text: edit(SIGN_YAML, '    functionaries: [platform]\n', '    functionaries: [platform]\n    threshold: 2\n'), id: 'model-sign-threshold', severity: 'error', line: 22, code: 'E_THRESHOLD' },
  { name: 'a model-sign step whose product rules refuse its signature', text: edit(SIGN_YAML, '"CREATE app.tar.gz.sig", ', ''), id: 'model-sign-products', severity: 'warning', line: 25 },
  { name: 'intoto model sign run as a sandboxed command (its key would be an input)', text: edit(B, 'run: [tar, -cf, app.tar, src]', 'run: [intoto, model, sign, src, -k, key.pem]'), id: 'model-sign-in-command', severity: 'warning', line: 11 },
  // Rules and the flow they imply.
  { name: 'a rule that does not parse', text: edit(B, '"MATCH app.tar WITH PRODUCTS FROM build"', '"MATCH app.tar FROM build"'), id: 'rule-syntax', severity: 'error', line: 17, code: 'E_RULE_SYNTAX' },
  { name: 'MATCH from a step that does not exist', text: edit(B, 'PRODUCTS FROM build"', 'PRODUCTS FROM biuld"'), id: 'match-unknown-step', severity: 'error', line: 17, code: 'E_RULE_UNKNOWN_STEP' },
  { name: 'MATCH from a step listed later', text: swapSteps(B), id: 'match-later-step', severity: 'warning', line: 12 },
  { name: 'steps that read from each other', text: edit(B, 'materials: ["ALLOW src/*", "DISALLOW *"]', 'materials: ["ALLOW src/*", "MATCH app.tar.gz WITH PRODUCTS FROM package", "DISALLOW *"]'), id: 'pipeline-cycle', severity: 'error', line: 9, code: 'E_PIPELINE_CYCLE' },
  { name: 'MATCH from an inspection', text: `${edit(B, '"ALLOW src/*", "DISALLOW *"', '"ALLOW src/*", "MATCH x WITH PRODUCTS FROM untar", "DISALLOW *"')}inspections:\n  - name: untar\n    run: [tar, -xzf, app.tar.gz]\n    materials: ["MATCH app.tar.gz WITH PRODUCTS FROM package", "DISALLOW *"]\n    products: ["MATCH src/* WITH MATERIALS FROM build", "ALLOW app.tar.gz", "DISALLOW *"]\n`, id: 'match-from-inspection', severity: 'error', line: 12 },
  { name: 'a rule list without a final DISALLOW *', text: edit(B, 'products: ["CREATE app.tar.gz", "DISALLOW *"]', 'products: ["CREATE app.tar.gz"]'), id: 'no-final-disallow', severity: 'warning', line: 18 },
  { name: 'rules after DISALLOW * never see an artifact', text: edit(B, 'products: ["CREATE app.tar.gz", "DISALLOW *"]', 'products: ["DISALLOW *", "CREATE app.tar.gz"]'), id: 'rule-after-disallow-all', severity: 'warning', line: 18 },
  // Expiry.
  { name: 'an expired layout', text: edit(B, '2027-01-01T00:00:00Z', '2026-01-01T00:00:00Z'), id: 'expired', severity: 'error', line: 1, code: 'E_LAYOUT_EXPIRED' },
  { name: 'an expiry years away', text: edit(B, '2027-01-01T00:00:00Z', '2031-01-01T00:00:00Z'), id: 'expires-far', severity: 'warning', line: 1 },
  { name: 'an expiry within days', text: edit(B, '2027-01-01T00:00:00Z', '2026-12-01T00:00:00Z'), id: 'expires-soon', severity: 'warning', line: 1 },
  // Inputs.
  { name: 'an input that climbs out of the workspace', text: edit(B, '  src/hello.txt: src/hello.txt\n', '  src/hello.txt: src/hello.txt\n  ../evil.sh: src/hello.txt\n'), id: 'input-name', severity: 'error', line: 8, code: 'E_ARTIFACT_NAME' },
  { name: 'an input that does not exist', text: edit(B, 'src/hello.txt: src/hello.txt', 'src/hello.txt: src/missing.txt'), id: 'input-missing', severity: 'warning', line: 7 },
  { name: 'an input no step lets in', text: edit(B, '  src/hello.txt: src/hello.txt\n', '  src/hello.txt: src/hello.txt\n  notes.txt: src/hello.txt\n'), id: 'input-unused', severity: 'warning', line: 8 },
];

describe('intoto layout check: diagnostics', () => {
  it('the good base layout has neither errors nor warnings', () => {
    const result = check(B);
    expect(result.diagnostics).toEqual([]);
    expect(result.source?.steps.map((s) => s.name)).toEqual(['build', 'package']);
  });

  it.each(cases)('$name -> $severity $id', (c) => {
    const result = check(c.text, { ownerKeys: c.ownerKeys === true });
    const found = result.diagnostics.find((d) => d.id === c.id);
    expect(found, JSON.stringify(result.diagnostics, null, 1)).toBeDefined();
    expect(found?.severity).toBe(c.severity);
    if (c.line !== undefined) expect(found?.line).toBe(c.line);
    if (c.code !== undefined) expect(found?.code).toBe(c.code);
    expect(result.source === undefined).toBe(c.severity === 'error');
    // Nothing else is reported as an error for a warning case.
    if (c.severity === 'warning') expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('covers every diagnostic id but the layout reader fallback', () => {
    const covered = new Set<string>(cases.map((c) => c.id));
    expect(DIAGNOSTIC_IDS.filter((id) => !covered.has(id) && id !== 'layout-invalid')).toEqual([]);
  });
});

describe('intoto layout check: values keep the text the author wrote', () => {
  it('an unquoted timestamp stays the exact string (no Date)', () => {
    const result = check(edit(B, 'expires: "2027-01-01T00:00:00Z"', 'expires: 2027-01-01T00:00:00Z'));
    expect(result.diagnostics).toEqual([]);
    expect(result.source?.expires).toBe('2027-01-01T00:00:00Z');
    expect(result.source?.layoutJson['expires']).toBe('2027-01-01T00:00:00Z');
  });

  it('an unquoted keyid pin is compared as text, and the error shows it as written', () => {
    const pinned = check(edit(B, 'bob: keys/bob.pub', `bob: {key: keys/bob.pub, keyid: ${bob.keyid.slice(0, 12)}}`));
    expect(pinned.diagnostics).toEqual([]);
    const wrong = check(edit(B, 'bob: keys/bob.pub', 'bob: {key: keys/bob.pub, keyid: 0e123456}'));
    expect(wrong.diagnostics[0]?.message).toContain('0e123456');
  });

  it('numbers in run stay arguments, and threshold is read as a number', () => {
    const text = edit(edit(B, 'run: gzip -n app.tar', 'run: [gzip, -9, 0x10, app.tar]'), '    functionaries: [bob]\n', '    functionaries: [bob]\n    threshold: 1\n');
    const result = check(text);
    expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(result.source?.steps[1]?.run).toEqual(['gzip', '-9', '0x10', 'app.tar']);
    expect((result.source?.layoutJson['steps'] as { threshold: unknown }[])[1]?.threshold).toBe(1);
  });

  it('expires_in counts from now', () => {
    const result = check(edit(B, 'expires: "2027-01-01T00:00:00Z"', 'expires_in: 180d'));
    expect(result.diagnostics).toEqual([]);
    expect(result.source?.expires).toBe(new Date(NOW + 180 * 86_400_000).toISOString().replace('.000Z', 'Z'));
  });

  it('__proto__ is an ordinary functionary name (no prototype pollution)', () => {
    const text = edit(edit(B, '  bob: keys/bob.pub\n', '  __proto__: keys/bob.pub\n'), 'functionaries: [bob]', 'functionaries: [__proto__]');
    const result = check(text);
    expect(result.diagnostics).toEqual([]);
    expect(result.source?.functionaries.get('__proto__')?.key.keyid).toBe(bob.keyid);
    expect(({} as Record<string, unknown>)['keyFile']).toBeUndefined();
  });

  it('a string run is split like a shell would, never run by one', () => {
    const result = check(edit(B, 'run: gzip -n app.tar', `run: gzip -n 'my app.tar' "a;b" $HOME`));
    expect(result.source?.steps[1]?.run).toEqual(['gzip', '-n', 'my app.tar', 'a;b', '$HOME']);
  });

  it('reports every error at once, in file order', () => {
    const text = edit(edit(B, 'functionaries: [bob]', 'functionaries: [mallory]'), 'PRODUCTS FROM build"', 'PRODUCTS FROM biuld"');
    const result = check(text);
    expect(result.diagnostics.map((d) => d.id)).toEqual(['functionary-unknown', 'match-unknown-step']);
  });
});

describe('the file itself', () => {
  const codeOf = (file: string): string | undefined => {
    try {
      checkLayoutSource({ file, now: NOW });
    } catch (error) {
      return (error as InTotoError).code;
    }
    return undefined;
  };

  it('a file over 4 MiB is refused before it is read', () => {
    const file = join(dir, 'huge.yaml');
    writeFileSync(file, `${B}readme2: "${'x'.repeat(4 * 1024 * 1024)}"\n`);
    expect(codeOf(file)).toBe('E_FILE_TOO_LARGE');
  });

  it('a FIFO or a directory is not read (no hang)', () => {
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expect(codeOf(fifo)).toBe('E_NOT_REGULAR_FILE');
    expect(codeOf(dir)).toBe('E_NOT_REGULAR_FILE');
  });

  it('bytes that are not UTF-8 are a yaml-syntax error', () => {
    const file = join(dir, 'latin1.yaml');
    writeFileSync(file, Buffer.from([...Buffer.from(B), 0x23, 0xe9, 0x0a]));
    expect(checkLayoutSource({ file, now: NOW }).diagnostics.map((d) => d.id)).toEqual(['yaml-syntax']);
  });
});

describe('intoto layout check: durations and small mistakes (issue 18, items 1 and 12)', () => {
  const ids = (text: string): string[] => check(text).diagnostics.map((d) => `${d.severity} ${d.id}`);

  it('a step timeout past 365 days is an error (Node timers overflow after 24.8 days; exec chains them)', () => {
    const text = (t: string): string => edit(B, '    functionaries: [bob]\n', `    functionaries: [bob]\n    timeout: ${t}\n`);
    expect(ids(text('31536001'))).toEqual(['error schema']);
    expect(ids(text('0'))).toEqual(['error schema']);
    expect(ids(text('2147484'))).toEqual([]);
    expect(check(text('2.5')).source?.steps[1]?.timeoutSeconds).toBe(2.5);
  });

  it('expires_in: 30d does not warn "within 30 days"; 29d does', () => {
    const at = (d: string): string => edit(B, 'expires: "2027-01-01T00:00:00Z"', `expires_in: ${d}`);
    expect(ids(at('30d'))).toEqual([]);
    expect(ids(at('29d'))).toEqual(['warning expires-soon']);
  });

  it('expires_in: 0d and a date past the year 9999 are refused with their reason', () => {
    const at = (d: string): Diagnostic[] => [...check(edit(B, 'expires: "2027-01-01T00:00:00Z"', `expires_in: ${d}`)).diagnostics];
    expect(at('0d')).toMatchObject([{ id: 'expires-format', line: 1, message: 'expires_in "0d": a layout that expires at once verifies nothing' }]);
    expect(at('999999w')).toMatchObject([{ id: 'expires-format', line: 1 }]);
    expect(at('999999w')[0]?.message).toContain('at most 100 years');
  });

  it('a misspelt field gets a did-you-mean', () => {
    const found = check(edit(B, 'functionaries:\n', 'functionaires:\n')).diagnostics.find((d) => d.message.includes('functionaires'));
    expect(found?.message).toBe('/functionaires: unknown field "functionaires" (did you mean "functionaries"?)');
    const step = check(edit(B, 'run: gzip -n app.tar', 'rnu: gzip -n app.tar')).diagnostics[0];
    expect(step?.message).toContain('(did you mean "run"?)');
  });

  it('one key for 1,000 steps: the warning names five and counts the rest', () => {
    const steps = Array.from({ length: 1000 }, (_, i) => `  - name: s${i}\n    functionaries: [alice]\n    run: [true]\n    materials: ["DISALLOW *"]\n    products: ["DISALLOW *"]\n`).join('');
    const text = `expires: "2027-01-01T00:00:00Z"\nfunctionaries:\n  alice: keys/alice.pub\nsteps:\n${steps}`;
    const warning = check(text).diagnostics.find((d) => d.id === 'functionary-many-steps');
    expect(warning?.message).toBe("functionary 'alice' may sign 1000 steps ('s0', 's1', 's2', 's3', 's4' and 995 more): one stolen key can forge all of them (use a key per step)");
  });
});

describe('intoto layout check: error-heavy input is bounded (issue 19)', () => {
  const MANY = 200_000;
  const heavy: readonly { name: string; text: string }[] = [
    { name: 'syntax errors near the top, then a long list', text: `steps:\n  - name: x\n   bad: [unclosed\n  "oops\n${'  - a: b\n'.repeat(MANY)}` },
    { name: 'a stray closing bracket on every line', text: `${B}${'x: ]\n'.repeat(MANY)}` },
    { name: 'tabs as indentation on every line', text: `a:\n${'\t- x\n'.repeat(MANY)}` },
    { name: 'an unknown field in every step', text: `steps:\n${'  - name: x\n    bogus: 1\n'.repeat(MANY / 10)}` },
    { name: 'the same key on every line', text: `functionaries:\n${'  a: x\n'.repeat(MANY / 4)}` },
    { name: 'an anchor on every line', text: Array.from({ length: MANY / 4 }, (_, i) => `k${i}: &a${i} v\n`).join('') },
  ];

  it.each(heavy)('$name: at most 100 problems listed, then one line that says more were cut', ({ text }) => {
    const { diagnostics } = check(text);
    expect(diagnostics.length).toBeLessThanOrEqual(101);
    expect(diagnostics.length).toBeGreaterThan(0);
    const last = diagnostics[diagnostics.length - 1];
    if (diagnostics.length === 101) expect(last?.id).toBe('too-many-errors');
    for (const d of diagnostics) expect(d.message).not.toMatch(/\n/);
  });

  it('95,000 distinct keys in one mapping are read in linear time (the library compares each key with every earlier one)', () => {
    const text = `${B}extra:\n${Array.from({ length: 95_000 }, (_, i) => `  k${i}: v\n`).join('')}`;
    const { diagnostics } = check(text);
    expect(diagnostics.map((d) => d.id)).toEqual(['schema']);
  });

  it('a duplicate key is still found, with its place', () => {
    const { diagnostics } = check(edit(B, '  bob: keys/bob.pub\n', '  bob: keys/bob.pub\n  "alice": keys/bob.pub\n'));
    expect(diagnostics).toMatchObject([{ id: 'yaml-duplicate-key', line: 6, column: 3 }]);
  });

  it('messages speak YAML, not the parser library: a second document, a stray bracket', () => {
    const two = check(`${B}---\nsteps: []\n`).diagnostics;
    expect(two).toMatchObject([{ id: 'yaml-multiple-documents', line: 19 }]);
    expect(two[0]?.message).not.toMatch(/YAML\.|parseAllDocuments|please use/);
    const bracket = check(`${B}x: ]\n`).diagnostics;
    expect(bracket[0]?.message).toBe('unexpected "]" here');
  });
});

describe('loadLayoutSource', () => {
  it('throws the first error with its code, the other errors (never the first again) in details', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, edit(edit(B, 'readme: a test pipeline', 'readme: !!binary aGVsbG8='), 'run: gzip -n app.tar', 'run: !sh gzip -n app.tar'));
    let thrown: unknown;
    try {
      loadLayoutSource({ file, now: NOW });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InTotoError);
    expect((thrown as InTotoError).code).toBe('E_LAYOUT_SOURCE');
    expect((thrown as InTotoError).message).toMatch(/bad\.yaml:2:\d+: tag /);
    expect((thrown as InTotoError).message).toContain('(and 1 more error(s))');
    expect((thrown as InTotoError).details).toHaveLength(1);
    expect((thrown as InTotoError).details[0]).toContain('tag !sh refused');
  });

  it('compiles to a layout whose keys are exactly the functionaries used', () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, B);
    const { source } = loadLayoutSource({ file, now: NOW });
    expect(Object.keys(source.layoutJson['keys'] as object).sort()).toEqual([alice.keyid, bob.keyid].sort());
    expect(source.layout.steps[1]?.expectedCommand).toEqual(['gzip', '-n', 'app.tar']);
  });
});

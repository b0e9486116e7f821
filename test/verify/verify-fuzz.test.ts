import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import { dsseText, parseEnvelope } from '../../src/model/envelope.js';
import { linkFromJson } from '../../src/model/link.js';
import { linkStatement } from '../../src/model/statement.js';
import { pythonJsonDumps } from '../../src/canonical/encode.js';
import { parseJson } from '../../src/canonical/parse.js';
import { key, layoutJson, trainEvaluate, verify, workDir, writeLink, writeSigned } from './chain.js';

/**
 * Fuzzing the verifier (THREATS.md invariant 1 and 4): a valid signed chain is mutated at the
 * byte level and at the JSON level (fields deleted, duplicated, retyped; links swapped between
 * steps; files renamed or removed), and verifySupplyChain must always return a report (or throw
 * only our typed errors), never fail with E_INTERNAL, and never pass a chain whose signed bytes
 * changed.
 */

type Files = Map<string, Buffer>;

/** The valid chain: a threshold-2 step with a Metablock and a DSSE link, and a MATCH step. */
function baseChain(): { files: Files; names: string[] } {
  const { dir, linkDir } = workDir();
  const { links } = trainEvaluate();
  const [alice, bob, carol] = [key(1), key(2), key(3)];
  const steps = [
    { name: 'train', keys: [alice, carol], threshold: 2, materials: [['ALLOW', 'data.csv'], ['DISALLOW', '*']], products: [['CREATE', 'model.pkl'], ['DISALLOW', '*']] },
    { name: 'evaluate', keys: [bob], materials: [['MATCH', 'model.pkl', 'WITH', 'PRODUCTS', 'FROM', 'train'], ['DISALLOW', '*']], products: [['CREATE', 'report.txt'], ['DISALLOW', '*']] },
  ];
  writeSigned(join(dir, 'root.layout'), layoutJson(steps), [key(0)]);
  writeLink(linkDir, links.train, alice);
  writeLink(linkDir, links.train, carol, { envelope: 'dsse' });
  writeLink(linkDir, links.evaluate, bob);
  const files: Files = new Map([['root.layout', readFileSync(join(dir, 'root.layout'))]]);
  for (const name of readdirSync(linkDir)) files.set(`links/${name}`, readFileSync(join(linkDir, name)));
  return { files, names: [...files.keys()] };
}

type Mutation =
  | { kind: 'flip'; file: number; at: number; value: number }
  | { kind: 'cut'; file: number; at: number; length: number }
  | { kind: 'json'; file: number; node: number; op: number }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'rename'; file: number; to: string }
  | { kind: 'remove'; file: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), file: fc.nat(), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), file: fc.nat(), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('json' as const), file: fc.nat(), node: fc.nat(), op: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('rename' as const), file: fc.nat(), to: fc.constantFrom('root.layout', 'links/x.link', 'links/train.00000000.link', 'links/evaluate') }),
  fc.record({ kind: fc.constant('remove' as const), file: fc.nat() }),
);

/** Replacement values of every JSON type, including ones our parser must refuse. */
const RETYPED = ['null', '0', '-1', '1.5', '1e999', '9007199254740993', '""', '[]', '{}', 'true', '"\\ud800"', '{"__proto__": {"x": 1}}', '"../../x"'];

/** Applies one JSON-level edit to the text: delete, duplicate or retype the node-th field. */
function jsonEdit(text: string, node: number, op: number): string {
  // Fields as they appear in the text: `"key": ` positions (the files are Python-style JSON).
  const fields = [...text.matchAll(/"((?:[^"\\]|\\.)*)": /g)];
  const field = fields[node % Math.max(fields.length, 1)];
  if (field === undefined || field.index === undefined) return text;
  const start = field.index;
  const valueStart = start + field[0].length;
  const valueEnd = valueEndAt(text, valueStart);
  const value = text.slice(valueStart, valueEnd);
  switch (op % 3) {
    case 0: // delete the field (and a following comma)
      return text.slice(0, start) + text.slice(text[valueEnd] === ',' ? valueEnd + 1 : valueEnd);
    case 1: // duplicate the key with another value
      return `${text.slice(0, valueEnd)}, ${field[0]}${RETYPED[op % RETYPED.length]}${text.slice(valueEnd)}`;
    default: // retype the value
      return text.slice(0, valueStart) + (RETYPED[op % RETYPED.length] ?? 'null') + text.slice(valueStart + value.length);
  }
}

/** Where the JSON value starting at `i` ends (strings, numbers, literals, balanced brackets). */
function valueEndAt(text: string, i: number): number {
  let depth = 0;
  let inString = false;
  for (let p = i; p < text.length; p++) {
    const c = text[p];
    if (inString) {
      if (c === '\\') p++;
      else if (c === '"') {
        inString = false;
        if (depth === 0) return p + 1;
      }
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      if (depth === 0) return p;
      depth--;
      if (depth === 0) return p + 1;
    } else if ((c === ',' || c === '\n') && depth === 0) return p;
  }
  return text.length;
}

function apply(files: Files, m: Mutation): Files {
  const out = new Map(files);
  const names = [...out.keys()];
  if (names.length === 0) return out;
  const pick = (i: number): string => names[i % names.length] as string;
  switch (m.kind) {
    case 'flip': {
      const name = pick(m.file);
      const bytes = Buffer.from(out.get(name) as Buffer);
      if (bytes.length > 0) bytes[m.at % bytes.length] = m.value;
      out.set(name, bytes);
      break;
    }
    case 'cut': {
      const name = pick(m.file);
      const bytes = out.get(name) as Buffer;
      const at = m.at % Math.max(bytes.length, 1);
      out.set(name, Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.length)]));
      break;
    }
    case 'json': {
      const name = pick(m.file);
      out.set(name, Buffer.from(jsonEdit((out.get(name) as Buffer).toString('utf8'), m.node, m.op)));
      break;
    }
    case 'swap': {
      const [a, b] = [pick(m.a), pick(m.b)];
      const [x, y] = [out.get(a) as Buffer, out.get(b) as Buffer];
      out.set(a, y);
      out.set(b, x);
      break;
    }
    case 'rename': {
      const name = pick(m.file);
      const bytes = out.get(name) as Buffer;
      out.delete(name);
      out.set(m.to, bytes);
      break;
    }
    case 'remove':
      out.delete(pick(m.file));
      break;
  }
  return out;
}

function signedBytesOf(bytes: Buffer | undefined): string | undefined {
  if (bytes === undefined) return undefined;
  try {
    return Buffer.from(parseEnvelope(bytes, 'x').signedBytes).toString('hex');
  } catch {
    return undefined;
  }
}

describe('fuzzing verifySupplyChain with mutated signed chains', () => {
  const { files, names } = baseChain();
  const { dir: scratch } = workDir();
  let run = 0;

  it('the unmutated chain passes (so a failure below is the mutation\'s doing)', async () => {
    const dir = join(scratch, 'base');
    write(dir, files);
    const report = await verify({ layoutPath: join(dir, 'root.layout'), linkDir: join(dir, 'links') });
    expect(report.failure).toBeUndefined();
  });

  it('returns a report with a typed failure for every mutation, and never passes changed signed bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        let mutated = files;
        for (const m of mutations) mutated = apply(mutated, m);
        const dir = join(scratch, `run-${run++}`);
        write(dir, mutated);
        try {
          let report;
          try {
            report = await verify({ layoutPath: join(dir, 'root.layout'), linkDir: join(dir, 'links') });
          } catch (error) {
            // Only our typed errors may escape (and for these options, none should).
            expect(error).toBeInstanceOf(InTotoError);
            return;
          }
          expect(report.failure?.code).not.toBe('E_INTERNAL');
          if (report.passed) {
            for (const name of names) expect(signedBytesOf(mutated.get(name))).toBe(signedBytesOf(files.get(name)));
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('fuzzing the link Statement reader with payloads an authorised functionary signed', () => {
  // A functionary can sign anything: the Statement reader (model/statement.ts) must turn every
  // signed payload into a link that passes every link check, or a typed failure.
  const { links, steps } = trainEvaluate();
  const [alice, bob] = [key(1), key(2)];
  const evaluate = pythonJsonDumps(linkStatement(linkFromJson(links.evaluate, 'evaluate'), 'evaluate'), 1);
  const { dir: scratch } = workDir();
  let run = 0;

  it('returns a typed failure or a pass for every mutated, re-signed Statement, never E_INTERNAL', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ node: fc.nat(), op: fc.nat() }), { minLength: 1, maxLength: 3 }), async (edits) => {
        let text = evaluate;
        for (const e of edits) text = jsonEdit(text, e.node, e.op);
        const dir = join(scratch, `statement-${run++}`);
        mkdirSync(join(dir, 'links'), { recursive: true });
        try {
          writeSigned(join(dir, 'root.layout'), layoutJson(steps), [key(0)]);
          writeLink(join(dir, 'links'), links.train, alice);
          let payload;
          try {
            payload = parseJson(Buffer.from(text), { source: 'x' });
          } catch {
            payload = undefined;
          }
          const envelope = payload === undefined ? dsseText({ broken: text }, [bob]) : dsseText(payload, [bob]);
          writeFileSync(join(dir, 'links', `evaluate.${bob.keyid.slice(0, 8)}.link`), envelope);
          const report = await verify({ layoutPath: join(dir, 'root.layout'), linkDir: join(dir, 'links') });
          expect(report.failure?.code).not.toBe('E_INTERNAL');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 200 },
    );
  });
});

function write(dir: string, files: Files): void {
  mkdirSync(join(dir, 'links'), { recursive: true });
  for (const [name, bytes] of files) {
    const path = join(dir, name);
    if (existsSync(path)) rmSync(path, { recursive: true, force: true });
    writeFileSync(path, bytes);
  }
}

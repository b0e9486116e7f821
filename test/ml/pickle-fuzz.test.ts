import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { importedName } from '../../src/ml/pickle-compat.js';
import { STRICT_POLICY, assertSafePickle, scanPickle, type PickleScanResult } from '../../src/ml/pickle.js';

/** The fuzzer judges by the strict policy: every name it may let through, written out. */
const STRICT_NAMES: ReadonlySet<string> = new Set([...STRICT_POLICY.entries.values()].map((e) => `${e.module}.${e.name}`));
import { FIXTURES, REPO, runPython } from './python.js';

/**
 * Property tests: whatever the bytes, only ModelError leaves assertSafePickle; and a
 * differential test against CPython's own loader (test/ml/pickle_oracle.py), which records
 * the imports the loader asks for without importing anything: every import CPython makes must
 * be one the scan named (or the scan must have refused the stream as unreadable), and a stream
 * the scan passes must make no import outside the allow-list.
 */

const FIXTURE_BYTES: readonly Uint8Array[] = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.pkl'))
  .sort()
  .map((name) => new Uint8Array(readFileSync(join(FIXTURES, name))));

const latin1 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));
const concat = (parts: readonly Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const u32 = (n: number): string => String.fromCharCode(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255);

// ---- Arbitraries ----------------------------------------------------------------------------

type Mutation = (bytes: Uint8Array) => Uint8Array;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, value]): Mutation => (bytes) => {
    const copy = new Uint8Array(bytes);
    if (copy.length > 0) copy[at % copy.length] = value;
    return copy;
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 6 })).map(([at, inserted]): Mutation => (bytes) => {
    const cut = bytes.length === 0 ? 0 : at % (bytes.length + 1);
    return concat([bytes.subarray(0, cut), inserted, bytes.subarray(cut)]);
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 16 })).map(([at, length]): Mutation => (bytes) => {
    const cut = bytes.length === 0 ? 0 : at % bytes.length;
    return concat([bytes.subarray(0, cut), bytes.subarray(cut + length)]);
  }),
  fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 24 })).map(([from, to, length]): Mutation => (bytes) => {
    if (bytes.length === 0) return bytes;
    const start = from % bytes.length;
    const cut = to % bytes.length;
    return concat([bytes.subarray(0, cut), bytes.subarray(start, start + length), bytes.subarray(cut)]);
  }),
  fc.nat().map((at): Mutation => (bytes) => bytes.subarray(0, bytes.length === 0 ? 0 : at % bytes.length)),
  fc.tuple(fc.nat(FIXTURE_BYTES.length - 1), fc.nat(), fc.nat()).map(([which, from, to]): Mutation => (bytes) => {
    const other = FIXTURE_BYTES[which] ?? new Uint8Array();
    const start = other.length === 0 ? 0 : from % other.length;
    const cut = bytes.length === 0 ? 0 : to % bytes.length;
    return concat([bytes.subarray(0, cut), other.subarray(start, start + 40), bytes.subarray(cut)]);
  }),
);

const mutatedPickle: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom(...FIXTURE_BYTES), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([base, steps]) => steps.reduce((bytes, step) => step(bytes), base));

const NAMES = ['os', 'system', 'posix', 'builtins', 'eval', 'dict', 'set', '__builtin__', 'collections', 'OrderedDict', 'o\\x73', 'sys\u00e9'];

/** One string push, in each of the encodings the loader accepts. */
const stringPush: fc.Arbitrary<string> = fc.tuple(fc.constantFrom(...NAMES), fc.nat(6)).map(([name, how]) => {
  const utf8 = Buffer.from(name, 'utf8').toString('latin1');
  switch (how) {
    case 0:
      return `\x8c${String.fromCharCode(utf8.length)}${utf8}`; // SHORT_BINUNICODE
    case 1:
      return `X${u32(utf8.length)}${utf8}`; // BINUNICODE
    case 2:
      return `\x8d${u32(utf8.length)}\0\0\0\0${utf8}`; // BINUNICODE8
    case 3:
      return `U${String.fromCharCode(utf8.length)}${utf8}`; // SHORT_BINSTRING
    case 4:
      return `T${u32(utf8.length)}${utf8}`; // BINSTRING
    case 5:
      return `S'${utf8}'\n`; // STRING
    default:
      return `V${utf8}\n`; // UNICODE
  }
});

const PLAIN_OPS = ['\x94', '0', '2', '(', '1', '\x93', '\x85', '\x86', '\x87', 't', 'R', 'b', ']', '}', ')', 'a', 'e', 's', 'u', 'l', 'd', 'N', '\x81', 'o', '.', '\x91', '\x8f', '\x90', 'K\x01'];

const token: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: stringPush },
  { weight: 6, arbitrary: fc.constantFrom(...PLAIN_OPS) },
  { weight: 2, arbitrary: fc.nat(5).map((i) => `h${String.fromCharCode(i)}`) }, // BINGET
  { weight: 1, arbitrary: fc.nat(5).map((i) => `j${u32(i)}`) }, // LONG_BINGET
  { weight: 1, arbitrary: fc.nat(5).map((i) => `q${String.fromCharCode(i)}`) }, // BINPUT
  { weight: 1, arbitrary: fc.nat(5).map((i) => `r${u32(i)}`) }, // LONG_BINPUT
  { weight: 1, arbitrary: fc.nat(5).map((i) => `p${i}\n`) }, // PUT
  { weight: 1, arbitrary: fc.nat(5).map((i) => `g${i}\n`) }, // GET
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...NAMES)).map(([m, n]) => `c${m}\n${n}\n`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...NAMES)).map(([m, n]) => `i${m}\n${n}\n`) },
  { weight: 1, arbitrary: fc.nat(5).map((p) => `\x80${String.fromCharCode(p)}`) }, // PROTO
);

const structuredPickle: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom('', '\x80\x02', '\x80\x04'), fc.array(token, { maxLength: 24 }), fc.boolean())
  .map(([head, body, stop]) => latin1(head + body.join('') + (stop ? '.' : '')));

/**
 * Programs that leave exactly one value on the stack, so that most of them load: imports by
 * GLOBAL and by STACK_GLOBAL on strings that pass through the memo, DUP and POP, calls, lists.
 */
const wellFormed = fc.letrec<{ value: string; callable: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    stringPush,
    fc.constantFrom('N', 'K\x07', ')', 'h\x00', 'h\x01', 'h\x02', 'j\x03\0\0\0', 'g4\n'),
    tie('callable'),
    fc.tuple(tie('callable'), fc.array(tie('value'), { maxLength: 3 })).map(([f, args]) => `${f}(${args.join('')}tR`),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => `](${items.join('')}e`),
    fc
      .tuple(tie('value'), fc.constantFrom('\x94', 'q\x01', 'q\x02', 'r\x03\0\0\0', 'p4\n'))
      .map(([v, put]) => v + put),
    fc.tuple(tie('value'), tie('value')).map(([a, b]) => `${a}${b}0`),
    tie('value').map((v) => `${v}20`),
  ),
  callable: fc.oneof(
    fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...NAMES)).map(([m, n]) => `c${m}\n${n}\n`),
    fc.tuple(tie('value'), tie('value')).map(([m, n]) => `${m}${n}\x93`),
  ),
})).value;

const wellFormedPickle: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom('', '\x80\x02', '\x80\x03', '\x80\x04'), wellFormed)
  .map(([head, body]) => latin1(`${head}${body}.`));

// ---- Properties -----------------------------------------------------------------------------

function onlyModelErrors(bytes: Uint8Array): void {
  const result = scanPickle(bytes);
  expect(result.opcodeCount).toBeLessThanOrEqual(bytes.length);
  try {
    assertSafePickle(bytes, 'fuzz.pkl');
    expect(result.findings).toEqual([]);
  } catch (error) {
    if (!(error instanceof ModelError)) throw error;
  }
}

describe('fuzz: only ModelError escapes', () => {
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), onlyModelErrors), { numRuns: 3000 });
  });

  it('random bytes after a PROTO 4 header', () => {
    const arb = fc.uint8Array({ maxLength: 200 }).map((tail) => concat([latin1('\x80\x04'), tail]));
    fc.assert(fc.property(arb, onlyModelErrors), { numRuns: 2000 });
  });

  it('mutated valid pickles', () => {
    fc.assert(fc.property(mutatedPickle, onlyModelErrors), { numRuns: 3000 });
  });

  it('random opcode sequences', () => {
    fc.assert(fc.property(structuredPickle, onlyModelErrors), { numRuns: 3000 });
  });

  it('well-formed programs', () => {
    fc.assert(fc.property(wellFormedPickle, onlyModelErrors), { numRuns: 2000 });
  });
});

interface OracleAnswer {
  imports: [string, string][];
  ok: boolean;
}

function askCPython(samples: readonly Uint8Array[]): OracleAnswer[] {
  const framed = samples.flatMap((s) => [latin1(u32(s.length)), s]);
  const run = runPython('python3', [join(REPO, 'test', 'ml', 'pickle_oracle.py')], { input: concat(framed) });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as OracleAnswer);
}

/** The names an import written as (module, name) may load as, whatever the protocol then. */
function spellings([module, name]: [string, string]): string[] {
  return [`${module}.${name}`, importedName(module, name, 0).join('.')];
}

const UNREADABLE = new Set(['malformed', 'unresolved-import', 'limit']);

describe('differential: the scan names every import CPython makes', () => {
  const samples = [
    ...fc.sample(structuredPickle, { seed: 4242, numRuns: 3000 }),
    ...fc.sample(wellFormedPickle, { seed: 4343, numRuns: 4000 }),
    ...fc.sample(mutatedPickle, { seed: 2424, numRuns: 3000 }),
    ...FIXTURE_BYTES,
  ];
  const answers = askCPython(samples);
  const scans: PickleScanResult[] = samples.map((s) => scanPickle(s, { policy: STRICT_POLICY }));

  it('asks the oracle about every sample, and the corpus exercises imports', () => {
    expect(answers).toHaveLength(samples.length);
    const importing = answers.filter((a) => a.imports.length > 0).length;
    const loaded = answers.filter((a) => a.ok).length;
    const stackGlobals = scans.filter((s) => s.findings.some((f) => f.opcode === 'STACK_GLOBAL' && f.kind === 'import')).length;
    expect(importing).toBeGreaterThan(1500);
    expect(loaded).toBeGreaterThan(2000);
    expect(stackGlobals).toBeGreaterThan(500);
  });

  it('a pickle the scan passes imports nothing outside the allow-list when CPython loads it', () => {
    const escapes = samples.flatMap((sample, i) => {
      const answer = answers[i];
      if (scans[i]?.findings.length !== 0 || answer === undefined) return [];
      const outside = answer.imports.filter((imp) => !spellings(imp).some((n) => STRICT_NAMES.has(n)));
      return outside.length > 0 ? [{ hex: Buffer.from(sample).toString('hex'), outside }] : [];
    });
    expect(escapes).toEqual([]);
  });

  it('unless the scan refused the stream as unreadable, it named every import CPython asked for', () => {
    const missed = samples.flatMap((sample, i) => {
      const scan = scans[i];
      const answer = answers[i];
      if (scan === undefined || answer === undefined || scan.findings.some((f) => UNREADABLE.has(f.kind))) return [];
      const unnamed = answer.imports.filter((imp) => !spellings(imp).some((n) => scan.globals.includes(n)));
      return unnamed.length > 0 ? [{ hex: Buffer.from(sample).toString('hex'), unnamed, globals: scan.globals }] : [];
    });
    expect(missed).toEqual([]);
  });

  it('a stream CPython loads is never called malformed, unless it is in a form pickle never writes', () => {
    const falseAlarms = samples.flatMap((sample, i) => {
      const scan = scans[i];
      if (!answers[i]?.ok || scan === undefined) return [];
      const malformed = scan.findings.filter((f) => f.kind === 'malformed');
      return malformed.length > 0 ? [{ hex: Buffer.from(sample).toString('hex'), malformed }] : [];
    });
    // Reported, not hidden: every entry must be a deliberate strictness (listed in the reasons).
    // (The oracle's find_class records any name; the real one cannot import a name that is not
    // dotted identifiers, which the scan therefore calls malformed rather than an import.)
    const allowedReasons = /not a decimal number|not plain digits|unsupported pickle protocol|not a module and name Python can import/;
    expect(falseAlarms.filter((a) => !a.malformed.every((f) => allowedReasons.test(f.reason)))).toEqual([]);
  });
});

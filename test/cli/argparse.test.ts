import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InTotoError } from '../../src/errors.js';
import { formatHelp, parseArguments } from '../../src/cli/argparse.js';
import { RUN_SPEC } from '../../src/cli/run.js';
import { START_SPEC } from '../../src/cli/record.js';
import { commandOf, refuseRepeatedLists } from '../../src/cli/step-options.js';

/** The argparse-compatible parser on its own (the differential tests are in test/e2e/run-args.test.ts). */

const TOKENS = ['-n', '-k', '-m', '-p', '-x', '-s', '-P', '-t', '-v', '-q', '--', '-sx', '-na', '--step', '--s', '--exclude', '--env', '--hash', 'sha256', 'rsa', 'a', 'b', '-', '-1', '=', '--x=', '-P=', '__proto__', 'constructor', ''];

describe('argparse-compatible parsing', () => {
  it('never throws anything but a usage error, whatever the command line', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...TOKENS), fc.string()), { maxLength: 12 }), (argv) => {
        for (const spec of [RUN_SPEC, START_SPEC]) {
          try {
            const parsed = parseArguments(spec, argv);
            refuseRepeatedLists(parsed, spec.options);
            commandOf(parsed, 'x');
          } catch (error) {
            expect(error).toBeInstanceOf(InTotoError);
            expect((error as InTotoError).code).toBe('E_USAGE');
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps everything after the first -- verbatim', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 6 }), (command) => {
        const parsed = parseArguments(RUN_SPEC, ['-n', 'a', '-k', 'k', '--', ...command]);
        expect(commandOf(parsed, 'x')).toEqual(command);
      }),
    );
  });

  it('an option value named __proto__ is just a value', () => {
    const parsed = parseArguments(RUN_SPEC, ['-n', '__proto__', '-k', 'constructor', '-m', '__proto__', '-x']);
    expect(parsed.values.get('stepName')).toBe('__proto__');
    expect(parsed.values.get('materials')).toEqual(['__proto__']);
  });

  it('collects repeatable options and refuses repeated lists', () => {
    const parsed = parseArguments(RUN_SPEC, ['-n', 'a', '-k', 'k', '--env', 'A', '--env', 'B', '--hash', 'sha512', '-x']);
    expect(parsed.values.get('env')).toEqual(['A', 'B']);
    expect(() => refuseRepeatedLists(parseArguments(RUN_SPEC, ['-n', 'a', '-m', 'x', '--materials', 'y']), RUN_SPEC.options)).toThrow(/given more than once/);
  });

  it('the help lists every option', () => {
    const help = formatHelp(RUN_SPEC);
    for (const option of RUN_SPEC.options) for (const flag of option.flags) expect(help).toContain(flag);
  });
});

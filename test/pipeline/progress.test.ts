import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProgress, seconds } from '../../src/cli/progress.js';
import type { PipelineEvent } from '../../src/pipeline/run-pipeline.js';

/** `pipeline run` progress: a live line on a terminal, plain lines anywhere else (CI logs). */
const EVENTS: readonly PipelineEvent[] = [
  { kind: 'plan', steps: [{ name: 'validate', runs: ['validator'] }, { name: 'train', runs: ['trainer-a', 'trainer-b'] }] },
  { kind: 'run-start', step: 'validate', functionary: 'validator', staged: 3 },
  { kind: 'run-end', step: 'validate', functionary: 'validator', ms: 412, ok: true },
  { kind: 'run-start', step: 'train', functionary: 'trainer-a', staged: 2 },
  { kind: 'run-end', step: 'train', functionary: 'trainer-a', ms: 12_345, ok: false },
  { kind: 'note', message: 'a note for -v' },
  { kind: 'verify-start' },
];

function capture(options: { tty: boolean; quiet: boolean; verbose: boolean }): string {
  const chunks: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  const progress = createProgress(options);
  for (const event of EVENTS) progress.onEvent(event);
  progress.stop();
  return chunks.join('');
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('pipeline progress', () => {
  it('without a terminal: one plain line per event, no control characters', () => {
    const text = capture({ tty: false, quiet: false, verbose: false });
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    expect(text.split('\n')).toEqual([
      'plan: validate -> train x2',
      'step validate (validator, 3 file(s) staged): running',
      'step validate (validator): done in 0.41s',
      'step train (trainer-a, 2 file(s) staged): running',
      'step train (trainer-a): FAILED in 12.3s',
      'verifying the whole chain...',
      '',
    ]);
  });

  it('on a terminal: a live line that is rewritten, then a mark per run', () => {
    const text = capture({ tty: true, quiet: false, verbose: true });
    expect(text).toContain('\r\u001b[K');
    expect(text).toContain('\u2713 validate (validator): done in 0.41s');
    expect(text).toContain('\u2717 train (trainer-a): FAILED in 12.3s');
    expect(text).toContain('note: a note for -v');
  });

  it('-q prints nothing', () => {
    expect(capture({ tty: true, quiet: true, verbose: false })).toBe('');
  });

  it('formats durations', () => {
    expect([seconds(5), seconds(9_994), seconds(61_000)]).toEqual(['0.01s', '9.99s', '61.0s']);
  });
});

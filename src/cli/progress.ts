import type { PipelineEvent } from '../pipeline/run-pipeline.js';

/**
 * Progress of `intoto pipeline run` on standard error: on a terminal, one line per run that
 * ticks while the command works and becomes a check mark or a cross; elsewhere (CI, a pipe,
 * a log file) plain lines, one when a run starts and one when it ends, with no control
 * characters.
 */

export interface Progress {
  readonly onEvent: (event: PipelineEvent) => void;
  /** Stops the ticking line (before printing anything else, or at the end). */
  stop(): void;
}

const FRAMES = ['|', '/', '-', '\\'];

/** `ms` as seconds: two decimals under ten seconds, one above. Never throws. */
export function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)}s` : `${(ms / 1000).toFixed(1)}s`;
}

/** A progress printer; `tty` chooses the live line, `quiet` prints nothing, `verbose` adds notes. Never throws. */
export function createProgress(options: { tty: boolean; quiet: boolean; verbose: boolean }): Progress {
  const write = (text: string): void => {
    if (!options.quiet) process.stderr.write(text);
  };
  let timer: NodeJS.Timeout | undefined;
  let live: { label: string; started: number } | undefined;
  const clearLive = (): void => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    if (live !== undefined && options.tty) write('\r\x1b[K');
    live = undefined;
  };
  const draw = (): void => {
    if (live === undefined) return;
    const ms = performance.now() - live.started;
    write(`\r\x1b[K  ${FRAMES[Math.floor(ms / 120) % FRAMES.length] ?? '|'} ${live.label}  ${seconds(ms)}`);
  };
  const onEvent = (event: PipelineEvent): void => {
    switch (event.kind) {
      case 'plan': {
        const runs = event.steps.map((s) => (s.runs.length > 1 ? `${s.name} x${s.runs.length}` : s.name));
        write(`plan: ${runs.join(' -> ')}\n`);
        return;
      }
      case 'run-start': {
        const label = `${event.step} (${event.functionary}, ${event.staged} file(s) staged)`;
        if (!options.tty || options.quiet) {
          write(`step ${label}: running\n`);
          return;
        }
        live = { label, started: performance.now() };
        draw();
        timer = setInterval(draw, 120);
        timer.unref();
        return;
      }
      case 'run-end': {
        clearLive();
        const mark = options.tty ? (event.ok ? '  \u2713' : '  \u2717') : 'step';
        write(`${mark} ${event.step} (${event.functionary}): ${event.ok ? 'done' : 'FAILED'} in ${seconds(event.ms)}\n`);
        return;
      }
      case 'skipped':
        write(`step ${event.step}: skipped (${event.reason})\n`);
        return;
      case 'verify-start':
        write('verifying the whole chain...\n');
        return;
      case 'note':
        if (options.verbose) write(`note: ${event.message}\n`);
        return;
    }
  };
  return { onEvent, stop: clearLive };
}

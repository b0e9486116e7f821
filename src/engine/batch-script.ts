import { shellLine, shellWord } from './shell.js';

/**
 * The batch script of one Slurm job: a fixed PATH (the job inherits only PATH and SLURM_CONF
 * from the submitter: see submitEnvironment), then `exec` of the command, so the job's exit
 * status is the command's.
 */

export interface BatchScriptOptions {
  readonly argv: readonly string[];
  /** Comment lines saying what the job is (step, functionary, run id): for whoever reads squeue or the spool. */
  readonly about: readonly string[];
  /** Directories put before the fixed PATH (where the job's `intoto` is, so inspections find it too). */
  readonly path?: readonly string[];
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The script's text. Never throws. */
export function batchScript(options: BatchScriptOptions): string {
  const about = options.about.map((line) => `# ${line.replace(/[\r\n]+/g, ' ')}`);
  const path = [...(options.path ?? []), PATH].join(':');
  return ['#!/bin/sh', ...about, 'set -eu', `PATH=${shellWord(path)}`, 'export PATH', `exec ${shellLine(options.argv)}`, ''].join('\n');
}

/**
 * POSIX shell quoting for the scripts engines run (Slurm batch scripts, workflow `run:` lines).
 * Every word is quoted unless it holds only characters no shell treats specially, so a step
 * name, path or parameter value can never become shell syntax.
 */

/** `word` as one POSIX shell word. Never throws. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=,+@%-]+$/.test(word) ? word : `'${word.replace(/'/g, `'"'"'`)}'`;
}

/** `argv` as one shell command line. Never throws. */
export function shellLine(argv: readonly string[]): string {
  return argv.map(shellWord).join(' ');
}

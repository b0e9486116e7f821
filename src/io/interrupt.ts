/**
 * What to undo when the process is interrupted (SIGINT from Ctrl-C, SIGTERM from a CI
 * cancellation or `kill`, SIGHUP from a closed terminal): stop a running step's process group,
 * remove temporary directories, leave an output directory untouched. Each piece of work that
 * creates something temporary registers its undo here for as long as the thing exists.
 *
 * On a signal the undos run, newest first, synchronously. Then, in a command-line program (one
 * that called {@link setInterruptReport}), one line says what was interrupted and the program
 * exits 130 (the one exit status outside 0/1/2); in a library caller the signal is raised again,
 * so the process still dies of it as it would have without us.
 */

/** An undo; it may return a note for the user ("workspace kept: /tmp/x"). It must not throw. */
export type Undo = () => string | void;

/** Prints the one line and exits; installed by the command-line programs. */
export type InterruptReport = (signal: NodeJS.Signals, notes: readonly string[], activity: string | undefined) => void;

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The exit status after an interruption (128 + SIGINT, what shells report for Ctrl-C). */
export const INTERRUPTED_EXIT_STATUS = 130;

const undos: Undo[] = [];
let report: InterruptReport | undefined;
let activity: string | undefined;
let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function stopListening(): void {
  if (!listening) return;
  listening = false;
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

function onSignal(signal: NodeJS.Signals): void {
  const notes: string[] = [];
  // Newest first: a step's process group dies before its workspace is removed.
  for (const undo of undos.splice(0).reverse()) {
    try {
      const note = undo();
      if (typeof note === 'string' && note !== '') notes.push(note);
    } catch {
      // An undo that fails must not stop the others.
    }
  }
  if (report !== undefined) {
    report(signal, notes, activity);
    return;
  }
  stopListening();
  process.kill(process.pid, signal);
}

/**
 * Registers `undo` until the returned function is called (call it once the temporary thing is
 * gone or handed over). Never throws.
 */
export function onInterrupt(undo: Undo): () => void {
  undos.push(undo);
  listen();
  return () => {
    const at = undos.lastIndexOf(undo);
    if (at >= 0) undos.splice(at, 1);
    if (undos.length === 0 && report === undefined) stopListening();
  };
}

/** Makes interruptions end the program through `handler` (command-line programs only). */
export function setInterruptReport(handler: InterruptReport): void {
  report = handler;
  listen();
}

/** What the program is doing now, for the interruption line ("running step 'train' (alice)"). */
export function setActivity(text: string | undefined): void {
  activity = text;
}

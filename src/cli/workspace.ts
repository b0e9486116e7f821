import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ioError } from '../errors.js';
import { onInterrupt } from '../io/interrupt.js';

/**
 * The temporary workspace of `intoto pipeline run` and `intoto pipeline step` when the user
 * gives no --workspace: a new directory under $TMPDIR, removed afterwards and on an
 * interruption, kept (and named) when it holds the evidence of a failure or with
 * --keep-workspace.
 */
export interface TemporaryWorkspace {
  readonly path: string;
  /** True once close() kept it. */
  kept: boolean;
  /** Removes the directory unless it is to be kept (`keep`, or keepAlways). Never throws. */
  close(keep: boolean): void;
}

/**
 * Makes the directory `$TMPDIR/<prefix>XXXXXX`. Until close(), an interruption removes it
 * (unless `keepAlways`) and says `removedNote`, or says where it was kept.
 * @throws IoError E_IO when the directory cannot be made
 */
export function temporaryWorkspace(prefix: string, options: { readonly keepAlways: boolean; readonly removedNote: string }): TemporaryWorkspace {
  let made: string;
  try {
    made = mkdtempSync(join(tmpdir(), prefix));
  } catch (error) {
    throw ioError(join(tmpdir(), `${prefix}*`), error, 'cannot create a temporary workspace');
  }
  const { keepAlways, removedNote } = options;
  const removeUndo = onInterrupt(() => {
    if (keepAlways) return `workspace kept: ${made}`;
    rmSync(made, { recursive: true, force: true });
    return removedNote;
  });
  const workspace: TemporaryWorkspace = {
    path: made,
    kept: false,
    close(keep: boolean): void {
      removeUndo();
      workspace.kept = keep || keepAlways;
      if (!workspace.kept) rmSync(made, { recursive: true, force: true });
    },
  };
  return workspace;
}

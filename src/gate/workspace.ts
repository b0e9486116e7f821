import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { GateError, ioError } from '../errors.js';

/**
 * Where a pull works and how its result appears: a private directory (mode 0700) beside the
 * destination, so that the final move is one rename on the same file system; the destination
 * appears whole or not at all, and the work directory is removed whatever happens.
 */

export interface Workspace {
  /** The private directory (`<parent>/.intoto-pull-XXXXXX`). */
  readonly root: string;
  /** The model's files, becoming the destination by one rename. */
  readonly model: string;
  /** Attachments (signature, links, layout): never moved into the destination. */
  readonly meta: string;
  readonly destination: string;
}

/**
 * Checks that `destination` does not exist (or is an empty directory) and that its parent does.
 * @throws GateError E_DESTINATION; IoError E_IO when the parent is missing
 */
export function checkDestination(destination: string): string {
  const target = resolve(destination);
  let stat;
  try {
    stat = statSync(target, { throwIfNoEntry: false });
  } catch (error) {
    throw ioError(destination, error);
  }
  if (stat !== undefined && !(stat.isDirectory() && readdirSync(target).length === 0)) {
    throw new GateError('E_DESTINATION', `${destination}: exists and is not an empty directory; a pull writes only a new directory`, { context: { file: destination } });
  }
  try {
    if (!statSync(dirname(target)).isDirectory()) throw new Error('not a directory');
  } catch (error) {
    throw ioError(dirname(target), error, 'the parent of the output directory is not a directory');
  }
  return target;
}

/** Creates the private work directory beside `destination`. @throws IoError E_IO */
export function createWorkspace(destination: string): Workspace {
  const parent = dirname(destination);
  let root: string;
  try {
    root = mkdtempSync(join(parent, `.intoto-pull-${basename(destination).slice(0, 32)}-`));
    const model = join(root, 'model');
    const meta = join(root, 'meta');
    mkdirSync(model, { mode: 0o755 });
    mkdirSync(meta, { mode: 0o700 });
    return { root, model, meta, destination };
  } catch (error) {
    throw ioError(parent, error, 'cannot create a work directory in');
  }
}

/**
 * Moves the verified model into place in one rename (onto an absent path, or an empty
 * directory, which rename replaces atomically).
 * @throws GateError E_DESTINATION when something appeared there meanwhile; IoError E_IO
 */
export function materialise(workspace: Workspace): void {
  try {
    renameSync(workspace.model, workspace.destination);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
      throw new GateError('E_DESTINATION', `${workspace.destination}: appeared or filled up during the pull; nothing was written`, { cause: error, context: { file: workspace.destination } });
    }
    throw ioError(workspace.destination, error, 'cannot move the verified model to');
  }
}

/** Removes the work directory and everything in it; never throws. */
export function removeWorkspace(workspace: Workspace): void {
  try {
    rmSync(workspace.root, { recursive: true, force: true, maxRetries: 2 });
  } catch {
    // Best effort: the caller is already reporting the reason for failing, or has succeeded.
  }
}

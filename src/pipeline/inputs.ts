import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IoError, ioError } from '../errors.js';
import { artifactNameProblem } from '../model/names.js';

/**
 * The files that enter a pipeline: each `inputs:` entry names an artifact (a file) or an
 * artifact prefix (a directory, whose regular files enter under that prefix). Symbolic links
 * are followed, because datasets often live elsewhere; the depth and count caps stop a link
 * loop. Nothing that is not a regular file or directory is ever opened.
 */

export const INPUT_LIMITS = Object.freeze({ maxFiles: 100_000, maxDepth: 64 });

/**
 * Lists the input files: artifact name -> absolute path.
 * @throws IoError E_IO (a missing or unreadable input, naming it), E_LIMIT (too many files or
 *   too deep); FormatError-like problems (a file name that cannot be an artifact name) are
 *   IoError E_IO too, naming the file
 */
export function listInputFiles(inputs: ReadonlyMap<string, string>): Map<string, string> {
  const files = new Map<string, string>();
  const add = (name: string, path: string, depth: number): void => {
    if (depth > INPUT_LIMITS.maxDepth) throw new IoError('E_LIMIT', `input ${path}: directories nested more than ${INPUT_LIMITS.maxDepth} deep (a symlink loop?)`);
    let stat;
    try {
      stat = statSync(path);
    } catch (error) {
      throw ioError(path, error);
    }
    if (stat.isDirectory()) {
      let entries: string[];
      try {
        entries = readdirSync(path).sort();
      } catch (error) {
        throw ioError(path, error);
      }
      for (const entry of entries) add(`${name}/${entry}`, join(path, entry), depth + 1);
      return;
    }
    if (!stat.isFile()) return; // FIFOs, sockets and devices never enter a workspace
    const problem = artifactNameProblem(name);
    if (problem !== undefined) throw new IoError('E_IO', `input ${path}: its artifact name ${JSON.stringify(name)} ${problem}`, { context: { file: path } });
    if (files.size >= INPUT_LIMITS.maxFiles) throw new IoError('E_LIMIT', `more than ${INPUT_LIMITS.maxFiles} input files`);
    files.set(name, path);
  };
  for (const [name, path] of inputs) add(name, path, 0);
  return files;
}

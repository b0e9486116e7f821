import { readdirSync, type Dirent } from 'node:fs';
import { ioError } from '../errors.js';

/** Reading directory entries for the walk, with their names checked for UTF-8. */

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lossyUtf8 = new TextDecoder('utf-8');

/** A directory entry with its name as text, and whether the name on disk was valid UTF-8. */
export interface Listed {
  readonly entry: Dirent<string | Buffer>;
  readonly text: string;
  readonly valid: boolean;
}

const byText = (a: Listed, b: Listed): number => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0);

/**
 * Lists a directory (`real` on disk, `name` for messages), sorted so that the walk is the same
 * on every run. Names are read as text (cheap); Node turns bytes that are not UTF-8 into U+FFFD,
 * so only a directory with a U+FFFD in some name is listed again as bytes, to tell a real
 * U+FFFD from an undecodable name.
 * @throws IoError E_IO when the directory cannot be listed
 */
export function readDirectory(frame: { readonly real: string; readonly name: string }): Listed[] {
  try {
    const entries = readdirSync(frame.real, { withFileTypes: true });
    if (!entries.some((entry) => entry.name.includes('\ufffd'))) {
      return entries.map((entry) => ({ entry, text: entry.name, valid: true })).sort(byText);
    }
    return readdirSync(frame.real, { withFileTypes: true, encoding: 'buffer' })
      .map((entry) => {
        try {
          return { entry, text: strictUtf8.decode(entry.name), valid: true };
        } catch {
          return { entry, text: lossyUtf8.decode(entry.name), valid: false };
        }
      })
      .sort(byText);
  } catch (error) {
    // The reference's os.walk silently skips a directory it cannot list; that would drop
    // artifacts from the link without a word, so it is an error here.
    throw ioError(frame.name, error, 'cannot list directory');
  }
}

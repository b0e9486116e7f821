import { createInterface } from 'node:readline';
import { isEncryptedKeyFile } from '../crypto/keyfiles.js';
import { CryptoError } from '../errors.js';

let pipedLines: Promise<string[]> | undefined;

async function readAllLines(): Promise<string[]> {
  const lines: string[] = [];
  const rl = createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) lines.push(line);
  return lines;
}

/**
 * Reads a password: from the terminal without echo when stdin is a TTY, otherwise one line
 * from standard input (for scripts and CI, e.g. `printf 'pw\n' | intoto-keygen -p key`).
 * The password is never printed or logged.
 */
export async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    // Several passwords (several keys) come as successive lines: read standard input once.
    pipedLines ??= readAllLines();
    return (await pipedLines).shift() ?? '';
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let password = '';
      const onData = (chunk: string): void => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            resolve(password);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new Error('interrupted'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') password = password.slice(0, -1);
          else password += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/**
 * The password of the key file at `path` when it is encrypted (undefined when it is not),
 * asked with --prompt; `what` names the key's holder, e.g. `functionary 'alice'`.
 * @throws CryptoError E_KEY_PASSWORD for an encrypted key without --prompt, or an empty answer
 */
export async function encryptedKeyPassword(path: string, what: string, prompt: boolean | undefined): Promise<string | undefined> {
  if (!isEncryptedKeyFile(path)) return undefined;
  const password = prompt === true ? await readPassword(`password for the key of ${what} (${path}): `) : '';
  if (password === '') {
    throw new CryptoError('E_KEY_PASSWORD', `${path}: the key of ${what} is encrypted; ${prompt === true ? 'no password given' : 'give --prompt to be asked for its password'}`, { context: { file: path } });
  }
  return password;
}

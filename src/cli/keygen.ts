import { existsSync } from 'node:fs';
import { generateSigningKey, writeKeyPair } from '../crypto/keyfiles.js';
import type { KeyType } from '../crypto/keys.js';
import { createOutput, newProgram, usage, verbosityOf } from './common.js';
import { readPassword } from './password.js';

const KEY_TYPES: readonly KeyType[] = ['ed25519', 'rsa', 'ecdsa'];

/**
 * `intoto-keygen [-p] [-t {ed25519,rsa,ecdsa}] [-b BITS] [-f] NAME`: writes NAME (private,
 * mode 0600) and NAME.pub in the formats `in-toto-keygen` writes. Stricter: the default type
 * is ed25519 (the reference defaults to RSA), and an existing key file is never overwritten
 * without -f.
 */
export async function keygenMain(argv: string[]): Promise<number> {
  const program = newProgram('intoto-keygen', 'Generate a key pair for signing in-toto layouts and links.')
    .argument('<filename>', "write the private key to <filename> and the public key to '<filename>.pub'")
    .option('-p, --prompt', 'prompt for a password to encrypt the private key')
    .option('-t, --type <type>', 'key type: ed25519 (default), rsa or ecdsa', 'ed25519')
    .option('-b, --bits <bits>', 'RSA key size in bits (default 3072)')
    .option('-f, --force', 'overwrite existing key files');
  program.parse(argv, { from: 'user' });
  const opts = program.opts<{ prompt?: boolean; type: string; bits?: string; force?: boolean }>();
  const out = createOutput('intoto-keygen', verbosityOf(argv));
  const [path] = program.args;
  if (path === undefined) usage('a filename is required');
  if (!KEY_TYPES.includes(opts.type as KeyType)) usage(`-t must be one of ${KEY_TYPES.join(', ')}`);
  if (opts.bits !== undefined && (opts.type !== 'rsa' || !/^\d+$/.test(opts.bits))) usage('-b takes a number of bits, for -t rsa only');
  if (!opts.force) {
    for (const file of [path, `${path}.pub`]) {
      if (existsSync(file)) usage(`${file} exists; not overwriting a key (use -f to replace it)`);
    }
  }
  let password: string | undefined;
  if (opts.prompt) {
    password = await readPassword(`enter password to encrypt the private key file '${path}': `);
    if (password === '') usage('an empty password does not encrypt; drop -p for an unencrypted key');
  }
  const key = generateSigningKey({ type: opts.type as KeyType, ...(opts.bits ? { bits: Number(opts.bits) } : {}) });
  writeKeyPair(key, path, password);
  out.info(`wrote ${opts.type} key ${key.keyid}: private '${path}'${password ? ' (encrypted)' : ''}, public '${path}.pub'`);
  return 0;
}

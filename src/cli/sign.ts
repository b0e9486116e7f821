import { loadPublicKeyFile, loadSigningKeyFile } from '../crypto/keyfiles.js';
import { KEYID_FORMS, type KeyidForm } from '../crypto/keys.js';
import type { SigningKey } from '../crypto/signatures.js';
import { CryptoError } from '../errors.js';
import { writeFileAtomicSync } from '../io/files.js';
import { dsseText, isSignedBy, metablockText, unverifiedPayload } from '../model/envelope.js';
import { linkFileName } from '../model/link.js';
import { metadataFromJson, readEnvelopeFile } from '../model/metadata.js';
import { createOutput, expectedTypeOption, keyTypesByPosition, newProgram, usage, verbosityOf } from './common.js';
import { readPassword } from './password.js';


interface SignOptions {
  file: string;
  key?: string[];
  keyType?: string[];
  prompt?: boolean;
  gpg?: string[] | boolean;
  output?: string;
  append?: boolean;
  verify?: boolean;
  useDsse?: boolean;
  keyidForm?: string;
}

/**
 * `intoto-sign -f FILE -k KEY... [-t TYPE...] [-p] [-o OUT] [-a] [--verify] [--use-dsse]`, the
 * command line of `in-toto-sign` 1.3.1. Signs (replacing, or with -a adding to, the existing
 * signatures) or verifies a link or layout in either envelope. Key types are detected from
 * the files; -t is checked against them when given.
 */
export async function signMain(argv: string[]): Promise<number> {
  const program = newProgram('intoto-sign', 'Sign in-toto link or layout metadata, or verify its signatures.')
    .requiredOption('-f, --file <path>', 'link or layout file to sign or verify')
    .option('-k, --key <paths...>', 'key files: private keys to sign with, public keys with --verify')
    .option('-t, --key-type <types...>', 'types of the keys, by position (accepted for compatibility; detected from the files)')
    .option('-p, --prompt', 'prompt for the password of each signing key')
    .option('-g, --gpg [ids...]', 'GPG keys (not supported)')
    .option('--gpg-home <path>', 'GPG home directory (not supported)')
    .option('-o, --output <path>', 'where to write the signed file (default: a layout in place, a link as <name>.<keyid8>.link)')
    .option('-a, --append', 'add signatures instead of replacing them (layouts only)')
    .option('--verify', 'verify the signatures of the given public keys instead of signing')
    .option('--use-dsse', 'write a DSSE envelope instead of the Metablock')
    .option('--keyid-form <form>', "sign under in-toto 1.3.1's keyids ('legacy', the default) or in-toto 2.x/3.x's ('standard', what they compute for PEM keys)");
  program.parse(argv, { from: 'user' });
  const opts = program.opts<SignOptions>();
  const out = createOutput('intoto-sign', verbosityOf(argv));

  if (opts.gpg !== undefined) usage('GPG keys are not supported; use key files with -k');
  const keyPaths = opts.key ?? [];
  if (keyPaths.length === 0) usage('pass at least one key with -k');
  const types = keyTypesByPosition(opts.keyType, keyPaths.length);
  if (opts.keyidForm !== undefined && !KEYID_FORMS.includes(opts.keyidForm as KeyidForm)) usage(`--keyid-form must be legacy or standard, not ${opts.keyidForm}`);

  const envelope = readEnvelopeFile(opts.file);
  const payload = unverifiedPayload(envelope);
  const metadata = metadataFromJson(payload, opts.file, { keepPlaceholders: true });

  if (opts.verify) {
    for (const [i, path] of keyPaths.entries()) {
      const key = loadPublicKeyFile(path, expectedTypeOption(types[i]));
      if (!isSignedBy(envelope, key)) {
        throw new CryptoError('E_SIGNATURE', `${opts.file}: no valid signature by key ${key.keyid} (${path})`, {
          context: { file: opts.file, keyid: key.keyid },
        });
      }
      out.info(`signature by ${key.keyid} (${path}) verifies`);
    }
    return 0;
  }

  if (metadata.type === 'link' && keyPaths.length > 1) usage('a link is signed by one key at a time');
  if (metadata.type === 'link' && opts.append) usage('-a/--append is for layouts only');
  const outputKind = opts.useDsse ? 'dsse' : envelope.kind;
  if (opts.append && outputKind !== envelope.kind) {
    usage(`cannot append to a ${envelope.kind} envelope while writing ${outputKind}: existing signatures cover other bytes`);
  }

  const keys: SigningKey[] = [];
  for (const [i, path] of keyPaths.entries()) {
    const password = opts.prompt ? await readPassword(`enter password for '${path}' (empty if not encrypted): `) : undefined;
    const key = loadSigningKeyFile(path, { ...expectedTypeOption(types[i]), ...(password ? { password } : {}) });
    keys.push(opts.keyidForm === undefined ? key : key.inForm(opts.keyidForm as KeyidForm));
  }
  const existing = opts.append ? envelope.signatures : [];
  const text = outputKind === 'dsse' ? dsseText(payload, keys, existing) : metablockText(payload, keys, existing);
  const first = keys[0] as SigningKey;
  const target = opts.output ?? (metadata.type === 'link' ? linkFileName(metadata.link.name, first.keyid) : opts.file);
  writeFileAtomicSync(target, text);
  out.info(`signed ${metadata.type} with ${keys.map((k) => k.keyid.slice(0, 8)).join(', ')} -> ${target}`);
  return 0;
}



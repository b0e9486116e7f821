import { closeSync, constants, fstatSync, openSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { CryptoError, FormatError, IoError, UsageError, ioError } from '../errors.js';
import type { JsonObject } from '../canonical/json.js';
import { writeFileAtomicSync } from '../io/files.js';
import type { KeyidForm, PublicKey } from '../crypto/keys.js';
import type { SigningKey } from '../crypto/signatures.js';
import { dsseText } from '../model/envelope.js';
import { attestationFileName, linkStatement } from '../model/statement.js';
import { writeLinkMetablock } from '../model/link-text.js';
import { linkToJson, type Link } from '../model/link.js';
import { stepNameProblem } from '../model/names.js';
import type { RecordableHashAlgorithm } from '../model/artifacts.js';
import type { RecordOptions } from './record.js';

/**
 * What the step flows (run, record start/stop, mock) share: checking their inputs before any
 * work is done, the recording options, and writing the link.
 */

/**
 * Refuses a step name that cannot become a link file name (`<name>.<keyid8>.link`).
 * @throws FormatError E_STEP_NAME
 */
export function assertStepName(name: string): void {
  const problem = stepNameProblem(name);
  if (problem !== undefined) {
    throw new FormatError('E_STEP_NAME', `step name ${JSON.stringify(name)} ${problem}`, { context: { step: name } });
  }
}

/**
 * Checks that the signing key file can be opened and is a regular file, WITHOUT reading it:
 * before the command runs, the key's bytes must not be in our memory (a command running as
 * the same user could read it), yet a typo in `-k` should not cost a whole step.
 * @throws IoError E_IO (missing, unreadable), E_NOT_REGULAR_FILE
 */
export function checkKeyFileReadable(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw ioError(path, error, 'cannot open the key file');
  }
  try {
    if (!fstatSync(fd).isFile()) {
      throw new IoError('E_NOT_REGULAR_FILE', `${path}: the key file is not a regular file`, { context: { file: path } });
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that `path` is an existing directory (where a link will be written), so that a bad
 * `-d` fails before the command runs rather than after.
 * @throws IoError E_IO
 */
export function checkDirectory(path: string, what: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (error) {
    throw ioError(path, error, `cannot use as ${what}`);
  }
  if (!isDirectory) throw new IoError('E_IO', `${path}: cannot use as ${what} (not a directory)`, { context: { file: path } });
}

/**
 * The longest time limit anywhere (`--timeout`, `--inspection-timeout`, a YAML step's
 * `timeout:`): 365 days. One rule for every duration, so that a value one place accepts is
 * never cut short or refused in another (Node's timers overflow past 24.8 days: exec.ts chains
 * them).
 */
export const MAX_TIMEOUT_SECONDS = 365 * 24 * 3600;

/** What a time limit must be, for messages. */
export const TIMEOUT_RULE = `a positive number of seconds, at most ${MAX_TIMEOUT_SECONDS} (365 days)`;

/** A time limit written as text (`90`, `2.5`), or undefined when it is not one. Never throws. */
export function parseTimeoutSeconds(text: string): number | undefined {
  const seconds = /^[0-9]{1,9}(\.[0-9]{1,9})?$/.test(text) ? Number(text) : Number.NaN;
  return seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS ? seconds : undefined;
}

/**
 * A positive number of seconds up to {@link MAX_TIMEOUT_SECONDS}, or undefined for no limit.
 * @throws UsageError E_USAGE
 */
export function checkTimeout(seconds: number | undefined): number | undefined {
  if (seconds === undefined) return undefined;
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_TIMEOUT_SECONDS) {
    throw new UsageError('E_USAGE', `a time limit must be ${TIMEOUT_RULE}, not ${String(seconds)}`);
  }
  return seconds;
}

/** True when `child` is `parent` or below it (both absolute). */
export function isWithin(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Where a step works, every path made absolute against its working directory. */
export interface StepPlaces {
  readonly cwd: string;
  readonly basePath: string;
  readonly metadataDirectory: string;
}

/** Resolves the step's directories: base path and metadata directory default to `cwd`. */
export function stepPlaces(options: { cwd?: string; basePath?: string; metadataDirectory?: string }): StepPlaces {
  const cwd = resolve(options.cwd ?? process.cwd());
  return {
    cwd,
    basePath: resolve(cwd, options.basePath ?? '.'),
    metadataDirectory: resolve(cwd, options.metadataDirectory ?? '.'),
  };
}

/** The recording options shared by materials and products. */
export function recordOptions(
  places: StepPlaces,
  options: {
    excludePatterns?: readonly string[] | undefined;
    lstripPaths?: readonly string[] | undefined;
    algorithms?: readonly RecordableHashAlgorithm[] | undefined;
    warn: (message: string) => void;
  },
): RecordOptions {
  return {
    basePath: places.basePath,
    ...(options.excludePatterns === undefined ? {} : { excludePatterns: options.excludePatterns }),
    ...(options.lstripPaths === undefined ? {} : { lstripPaths: options.lstripPaths }),
    ...(options.algorithms === undefined ? {} : { algorithms: options.algorithms }),
    onWarning: options.warn,
  };
}

/**
 * A recorded stream as the reference stores it: it reads the command's output back in text
 * mode, where universal newlines turn `\r\n` and a lone `\r` into `\n`.
 */
export function referenceStreamText(text: string): string {
  return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
}

/**
 * The byproducts in-toto-run 1.3.1 records: nothing without a command; otherwise the return
 * value and both streams, which are empty strings unless they were recorded.
 */
export function byproductsOf(
  result: { readonly returnValue: number; readonly stdout: string; readonly stderr: string } | undefined,
  recordStreams: boolean,
): JsonObject {
  if (result === undefined) return {};
  return {
    'return-value': result.returnValue,
    stderr: recordStreams ? referenceStreamText(result.stderr) : '',
    stdout: recordStreams ? referenceStreamText(result.stdout) : '',
  };
}

/**
 * Writes `link` atomically as `directory/fileName`, signed by `keys` (none: unsigned, as
 * in-toto-mock writes), as a Metablock laid out as in-toto 1.3.1 writes it or, with `useDsse`,
 * as a DSSE envelope; returns the path. The Metablock goes to the file in chunks.
 * @throws IoError E_IO; ParseError E_CANONICAL; CryptoError when a key cannot sign
 */
export function writeLinkFile(directory: string, fileName: string, link: Link, keys: readonly SigningKey[], useDsse: boolean): string {
  const path = join(directory, fileName);
  if (useDsse) writeFileAtomicSync(path, dsseText(linkToJson(link), keys));
  else writeFileAtomicSync(path, (write) => writeLinkMetablock(link, keys, write));
  return path;
}

/** How the link names and signs its key: a keyid form, or the layout's own entry for the key. */
export interface SignAs {
  /** in-toto 1.3.1's keyid or in-toto 2.x/3.x's (default: the key file's own, 1.3.1's for PEM). */
  readonly keyidForm?: KeyidForm;
  /** The layout's entry for this key: its keyid, whatever form it has, names and signs the link. */
  readonly layoutKey?: PublicKey;
}

/**
 * The signing key under the keyid the link must carry.
 * @throws CryptoError E_KEYID_MISMATCH when `layoutKey` is not the key in the file
 */
export function signingKeyAs(key: SigningKey, signAs: SignAs, keyPath: string): SigningKey {
  if (signAs.layoutKey !== undefined) {
    const same = key.as(signAs.layoutKey);
    if (same === undefined) {
      throw new CryptoError('E_KEYID_MISMATCH', `${keyPath}: holds key ${key.keyid.slice(0, 8)}, not the layout's key ${signAs.layoutKey.keyid.slice(0, 8)}`, {
        context: { file: keyPath, keyid: signAs.layoutKey.keyid },
      });
    }
    return same;
  }
  return signAs.keyidForm === undefined ? key : key.inForm(signAs.keyidForm);
}

/**
 * Writes the link also as an in-toto attestation (a Statement v1 with the link predicate,
 * signed in DSSE) as `<name>.<keyid8>.intoto.json`; returns its path, or undefined (with a
 * warning) when the link has no products: a Statement must be about at least one subject.
 * @throws IoError E_IO; CryptoError when the key cannot sign
 */
export function writeAttestationFile(directory: string, link: Link, key: SigningKey, warn: (message: string) => void): string | undefined {
  if (link.products.size === 0) {
    warn(`no attestation written for '${link.name}': it recorded no products, and an in-toto Statement needs at least one subject`);
    return undefined;
  }
  const path = join(directory, attestationFileName(link.name, key.keyid));
  writeFileAtomicSync(path, dsseText(linkStatement(link, path), [key]));
  return path;
}

/** Milliseconds since `start` (from performance.now()), rounded to 0.1 ms. */
export function since(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

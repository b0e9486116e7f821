import type { JsonObject } from '../canonical/json.js';
import type { SigningKey } from '../crypto/signatures.js';
import { writeFileAtomicSync } from '../io/files.js';
import { dsseText } from '../model/envelope.js';
import { checkSchema } from '../model/schemas.js';

/**
 * An attestation signed and written: the Statement is checked against the schema written
 * from its spec (attest/schemas.ts) before anything is signed, then signed in a DSSE envelope
 * (payloadType application/vnd.in-toto+json) and written atomically.
 * @throws FormatError E_SCHEMA (a bug: we built something the spec does not allow); IoError
 *   E_IO; CryptoError when a key cannot sign
 */
export function writeAttestation(path: string, statement: JsonObject, schema: { readonly $id: string }, keys: readonly SigningKey[]): void {
  checkSchema(schema, statement, `${path} (${schema.$id})`);
  writeFileAtomicSync(path, `${dsseText(statement, keys)}\n`);
}

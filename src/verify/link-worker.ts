import { parentPort } from 'node:worker_threads';
import type { JsonValue } from '../canonical/json.js';
import { publicKeyFromObject, type PublicKey } from '../crypto/keys.js';
import { loadLinkFile } from './link-load.js';
import { packError, packFile, type PackedFile } from './link-transfer.js';

/**
 * Worker thread for link-pool.ts: loads the link files it is sent, one message each, and
 * answers with the packed result. Keys arrive as securesystemslib key objects and are checked
 * again here (a worker shares no objects with the main thread).
 */

export interface LinkRequest {
  readonly id: number;
  readonly file: string;
  readonly candidates: readonly JsonValue[];
}

export interface LinkResponse {
  readonly id: number;
  readonly result: PackedFile;
}

parentPort?.on('message', (request: LinkRequest) => {
  let result: PackedFile;
  try {
    const keys: PublicKey[] = request.candidates.map((object) => publicKeyFromObject(object, { where: request.file }));
    result = packFile(loadLinkFile(request.file, keys));
  } catch (error) {
    result = packError(error);
  }
  parentPort?.postMessage({ id: request.id, result } satisfies LinkResponse);
});

import { canonicalString } from '../canonical/encode.js';
import { isJsonObject, type JsonObject, type JsonValue } from '../canonical/json.js';
import { PipelineError } from '../errors.js';
import type { PipelineSource } from './source.js';

/**
 * A layout signed elsewhere (by the owner, on the owner's machine) stands for a YAML source
 * when it is exactly what the source compiles to, but for its expiry: `expires_in` gives a new
 * expiry at every compilation, and the signed one is what counts.
 */

/**
 * Throws unless `payload` (a verified layout payload) is what `source` compiles to, `expires` aside.
 * @throws PipelineError E_LAYOUT_SOURCE naming `where`
 */
export function checkLayoutIsSource(payload: JsonValue, source: PipelineSource, where: string): void {
  if (!isJsonObject(payload) || canonicalString(withoutExpiry(payload)) !== canonicalString(withoutExpiry(source.layoutJson))) {
    throw new PipelineError('E_LAYOUT_SOURCE', `${where} is not the layout ${source.file} compiles to (steps, keys, rules or inspections differ)`, { context: { file: where } });
  }
}

function withoutExpiry(layout: JsonObject): JsonObject {
  const copy: Record<string, JsonObject[string]> = { ...layout };
  delete copy['expires'];
  return copy;
}

/**
 * Artifacts as links record them: a normalised, `/`-separated relative name mapped to a
 * digest per hash algorithm ("sha256" -> lowercase hex). Maps, never plain objects, because
 * names come from untrusted metadata (`__proto__` is a legal file name).
 */

/** Hash algorithm name -> lowercase hex digest. */
export type HashDict = ReadonlyMap<string, string>;

/** Artifact name -> its digests. Iteration order is not significant. */
export type ArtifactMap = ReadonlyMap<string, HashDict>;

/** Algorithms strong enough for a MATCH/MODIFY comparison (md5 and sha1 alone never suffice). */
export const STRONG_HASH_ALGORITHMS = ['sha256', 'sha384', 'sha512'] as const;
export type StrongHashAlgorithm = (typeof STRONG_HASH_ALGORITHMS)[number];

/** Algorithms the runner can record (`--hash`). */
export const RECORDABLE_HASH_ALGORITHMS = ['sha256', 'sha512'] as const;
export type RecordableHashAlgorithm = (typeof RECORDABLE_HASH_ALGORITHMS)[number];

/** Hex digest length per known algorithm, for validating link contents. */
export const DIGEST_HEX_LENGTH: ReadonlyMap<string, number> = new Map([
  ['md5', 32],
  ['sha1', 40],
  ['sha224', 56],
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
]);

/** The entries of an artifact map in its order, as two parallel arrays. */
export interface ArtifactList {
  readonly names: readonly string[];
  readonly digests: readonly HashDict[];
}

/** Lists built with their maps by the one-pass link reader (link-reader.ts). */
const lists = new WeakMap<ArtifactMap, ArtifactList>();

/**
 * Keeps `list` as the entries of `map`, which the caller built together with it, entry for
 * entry in the same order, and will not change (maps read from links never are).
 */
export function keepArtifactList(map: ArtifactMap, list: ArtifactList): void {
  lists.set(map, list);
}

/**
 * The entries of `map` in its order: the arrays its reader kept, or new ones. The rule queue
 * of every step walks them; copying 50,000 entries out of a Map for each costs more than
 * keeping the arrays the reader filled anyway.
 */
export function artifactList(map: ArtifactMap): ArtifactList {
  const kept = lists.get(map);
  // A count that no longer agrees would mean the map changed since: rebuild rather than trust.
  if (kept !== undefined && kept.names.length === map.size) return kept;
  const names: string[] = [];
  const digests: HashDict[] = [];
  map.forEach((d, name) => {
    names.push(name);
    digests.push(d);
  });
  return { names, digests };
}

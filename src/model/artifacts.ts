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

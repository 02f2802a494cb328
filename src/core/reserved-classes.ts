/**
 * Query classes the gateway gives its own traces, which are never routing evidence: no policy
 * learns from them (live or rebuilt from the store), and no `router.classes` rule may take their names.
 */

/** The class of the judge's own calls. */
export const JUDGE_CLASS = 'judge';

/** The class of /v1/embeddings requests (always pinned: embedding spaces are not interchangeable). */
export const EMBEDDING_CLASS = 'embedding';

/** Every class that is never routing evidence, with what its traces are (for messages). */
export const RESERVED_CLASSES: ReadonlyMap<string, string> = new Map([
  [JUDGE_CLASS, "the judge's own traces"],
  [EMBEDDING_CLASS, '/v1/embeddings requests'],
]);

/** Whether traces of this class may teach a routing policy (false for the reserved classes). */
export function isRoutingEvidence(queryClass: string): boolean {
  return !RESERVED_CLASSES.has(queryClass);
}

/**
 * The query class of the judge's own traces: never routing evidence for a real class, so no
 * `router.classes` rule may take the name.
 */
export const JUDGE_CLASS = 'judge';

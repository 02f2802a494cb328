import type { Logger } from 'pino';

/** Waits for the traces to commit; a store failure is logged, and the answer still goes out. */
export async function settleDurably(pending: readonly Promise<void>[], logger: Logger): Promise<void> {
  if (pending.length === 1) {
    // The common case (one attempt): no allSettled bookkeeping.
    try {
      await pending[0];
    } catch (err) {
      logger.error({ err }, 'trace could not be recorded');
    }
    return;
  }
  const results = await Promise.allSettled(pending);
  for (const r of results) {
    if (r.status === 'rejected') logger.error({ err: r.reason }, 'trace could not be recorded');
  }
}

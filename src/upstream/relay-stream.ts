import type { ServerResponse } from 'node:http';
import { ClientGone, UpstreamTimeout, type AttemptAbort, type UpstreamBody } from './attempt.js';
import { StreamUsageReader, type Usage } from './usage.js';

export interface StreamOutcome {
  outcome: 'success' | 'error' | 'timeout' | 'cancelled';
  usage: Usage | null;
  /** Milliseconds from `startedAt` to the first chunk. */
  firstChunkMs: number | null;
  error: string | null;
}

const DONE = Buffer.from('data: [DONE]');

/**
 * Relays an SSE body to the client chunk by chunk, reading `usage` on the way without re-encoding
 * (or decoding: only an event that carries a usage object is parsed).
 * The final `data: [DONE]` event (and the end of the response) is held back until `beforeEnd`
 * has run, so the trace is committed before a client can see the stream finish. `tap`, when given,
 * sees every chunk as it is relayed (it must not keep or change it).
 */
export async function relayStream(
  body: UpstreamBody,
  res: ServerResponse,
  signal: AttemptAbort,
  startedAt: number,
  beforeEnd: (result: StreamOutcome) => Promise<void>,
  tap?: (chunk: Buffer) => void,
): Promise<StreamOutcome> {
  const result: StreamOutcome = { outcome: 'success', usage: null, firstChunkMs: null, error: null };
  const usage = new StreamUsageReader();
  const held: Buffer[] = [];
  // Backpressure pauses the upstream until the client's socket drains; an abort (client gone,
  // timeout) or the upstream breaking off ends the body with an error, which ends this.
  await new Promise<void>((resolve) => {
    let draining = false;
    const resume = () => {
      draining = false;
      body.resume();
    };
    const finish = () => {
      res.off('drain', resume);
      resolve();
    };
    body.take({
      data(chunk) {
        if (result.firstChunkMs === null) result.firstChunkMs = performance.now() - startedAt;
        usage.feed(chunk);
        if (tap !== undefined) tap(chunk);
        if (held.length > 0) {
          held.push(chunk);
          return true;
        }
        const done = chunk.indexOf(DONE);
        const now = done === -1 ? chunk : chunk.subarray(0, done);
        if (done !== -1) held.push(chunk.subarray(done));
        if (now.length === 0 || res.write(now)) return true;
        if (!draining) {
          draining = true;
          res.once('drain', resume);
        }
        return false;
      },
      end: finish,
      error(err) {
        const reason = signal.aborted ? signal.reason : undefined;
        if (reason instanceof ClientGone) result.outcome = 'cancelled';
        else if (reason instanceof UpstreamTimeout || (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') {
          result.outcome = 'timeout';
        } else result.outcome = 'error';
        result.error = result.outcome === 'cancelled' ? 'client disconnected' : `stream interrupted: ${err.message}`;
        finish();
      },
    });
  });
  result.usage = usage.usage;
  await beforeEnd(result);
  if (result.outcome === 'success') {
    for (const chunk of held) res.write(chunk);
    res.end();
  } else {
    // A stream cut short must look cut short to the client, not like a complete answer.
    res.destroy();
  }
  return result;
}

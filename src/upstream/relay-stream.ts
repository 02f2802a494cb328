import type { ServerResponse } from 'node:http';
import { ClientGone, UpstreamTimeout, type AttemptAbort, type UpstreamBody } from './attempt.js';
import type { Redactor } from './redact.js';
import { ResponseEndHolder, ResponseStreamReader } from './response-answer.js';
import { SseFramer } from './sse.js';
import { UsageEventDropper } from './usage-event.js';
import { StreamUsageReader, type Usage } from './usage.js';

export interface StreamOutcome {
  outcome: 'success' | 'error' | 'timeout' | 'cancelled';
  usage: Usage | null;
  /** Milliseconds from `startedAt` to the first chunk. */
  firstChunkMs: number | null;
  error: string | null;
  /** A Responses API stream's id and failure (RelayOptions.responses); absent for other streams. */
  response?: { id: string | null; failure: string | null };
}

export interface RelayOptions {
  /** Scrubs the configured secrets from every byte relayed. */
  redactor: Redactor;
  /** A client whose socket has not drained for this long is cut, and the upstream call with it (`limits.writeStallMs`). */
  writeStallMs: number;
  /** Take the usage event out of what the client gets (it did not ask for it; the gateway did): UsageEventDropper. */
  dropUsage?: boolean;
  /**
   * A Responses API stream: its end held back is the event that ends the response
   * (ResponseEndHolder; there is no `[DONE]`), and its id and failure are read (StreamOutcome.response).
   */
  responses?: boolean;
}

/**
 * Relays an SSE body to the client as it comes, reading `usage` on the way without re-encoding (or
 * decoding: only an event that carries a usage object is parsed). The bytes are the upstream's,
 * minus the configured secrets. The stream's end (an event whose data is `[DONE]`, or with
 * `responses` the event that ends the response; and the end of the response) is held back until
 * `beforeEnd` has run, so the trace is committed before a client can see the stream finish
 * (SseFramer, ResponseEndHolder). With `dropUsage`, the usage event is read but not relayed. `tap`, when given, sees every byte as it is relayed (it must not
 * keep or change them).
 *
 * A write the client's socket cannot take pauses the upstream until it drains; a client that has not
 * drained for `writeStallMs` is cut (outcome `cancelled`, with the reason), which frees the upstream.
 */
export async function relayStream(
  body: UpstreamBody,
  res: ServerResponse,
  signal: AttemptAbort,
  startedAt: number,
  beforeEnd: (result: StreamOutcome) => Promise<void>,
  tap: ((chunk: Buffer) => void) | undefined,
  options: RelayOptions,
): Promise<StreamOutcome> {
  const result: StreamOutcome = { outcome: 'success', usage: null, firstChunkMs: null, error: null };
  const usage = new StreamUsageReader();
  const responses = options.responses === true ? new ResponseStreamReader() : null;
  const framer = responses === null ? new SseFramer() : new ResponseEndHolder();
  const dropper = options.dropUsage === true ? new UsageEventDropper() : null;
  const scrubber = options.redactor.stream();
  const relayed = (bytes: Buffer): Buffer => {
    const out = scrubber.feed(bytes);
    if (tap !== undefined && out.length > 0) tap(out);
    return out;
  };
  // Backpressure pauses the upstream until the client's socket drains; an abort (client gone or
  // stalled, timeout) or the upstream breaking off ends the body with an error, which ends this.
  await new Promise<void>((resolve) => {
    let draining = false;
    let stall: NodeJS.Timeout | null = null;
    const resume = () => {
      draining = false;
      if (stall !== null) clearTimeout(stall);
      stall = null;
      body.resume();
    };
    const stalled = () => signal.abort(new ClientGone(`client stopped reading for ${options.writeStallMs} ms`));
    const finish = () => {
      res.off('drain', resume);
      if (stall !== null) clearTimeout(stall);
      resolve();
    };
    body.take({
      data(chunk) {
        if (result.firstChunkMs === null) result.firstChunkMs = performance.now() - startedAt;
        usage.feed(chunk);
        responses?.feed(chunk);
        const now = relayed(framer.feed(dropper === null ? chunk : dropper.feed(chunk)));
        if (now.length === 0 || res.write(now)) return true;
        if (!draining) {
          draining = true;
          res.once('drain', resume);
          stall = setTimeout(stalled, options.writeStallMs);
        }
        return false;
      },
      end: finish,
      error(err) {
        const reason = signal.aborted ? signal.reason : undefined;
        if (reason instanceof ClientGone) {
          result.outcome = 'cancelled';
          result.error = reason.message;
        } else {
          result.outcome = reason instanceof UpstreamTimeout || (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : 'error';
          result.error = `stream interrupted: ${err.message}`;
        }
        finish();
      },
    });
  });
  result.usage = usage.usage;
  if (responses !== null) {
    const failure = responses.failure === null ? null : options.redactor.scrubText(responses.failure);
    result.response = { id: responses.responseId, failure };
  }
  await beforeEnd(result);
  if (result.outcome === 'success') {
    const unfinished = dropper === null ? null : framer.feed(dropper.finish());
    const end = framer.finish();
    const rest = relayed(unfinished === null || unfinished.length === 0 ? end : Buffer.concat([unfinished, end]));
    const last = scrubber.end();
    if (rest.length > 0) res.write(rest);
    if (last.length > 0) {
      if (tap !== undefined) tap(last);
      res.write(last);
    }
    res.end();
  } else {
    // A stream cut short must look cut short to the client, not like a complete answer.
    res.destroy();
  }
  return result;
}

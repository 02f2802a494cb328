import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import type { Dispatcher } from 'undici';
import { ClientGone, UpstreamTimeout } from './attempt.js';
import { readUsage, type Usage } from './usage.js';

export interface StreamOutcome {
  outcome: 'success' | 'error' | 'timeout' | 'cancelled';
  usage: Usage | null;
  /** Milliseconds from `startedAt` to the first chunk. */
  firstChunkMs: number | null;
  error: string | null;
}

const DONE = Buffer.from('data: [DONE]');

/**
 * Relays an SSE body to the client chunk by chunk, reading `usage` on the way without re-encoding.
 * The final `data: [DONE]` event (and the end of the response) is held back until `beforeEnd`
 * has run, so the trace is committed before a client can see the stream finish.
 */
export async function relayStream(
  body: Dispatcher.ResponseData['body'],
  res: ServerResponse,
  signal: AbortSignal,
  startedAt: number,
  beforeEnd: (result: StreamOutcome) => Promise<void>,
): Promise<StreamOutcome> {
  const result: StreamOutcome = { outcome: 'success', usage: null, firstChunkMs: null, error: null };
  const decoder = new StringDecoder('utf8');
  const parser = createParser({
    onEvent(event) {
      if (event.data.includes('"usage"')) {
        const usage = readUsage(event.data);
        if (usage) result.usage = usage;
      }
    },
  });
  const held: Buffer[] = [];
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (result.firstChunkMs === null) result.firstChunkMs = performance.now() - startedAt;
      parser.feed(decoder.write(chunk));
      if (held.length > 0) {
        held.push(chunk);
        continue;
      }
      const done = chunk.indexOf(DONE);
      const now = done === -1 ? chunk : chunk.subarray(0, done);
      if (done !== -1) held.push(chunk.subarray(done));
      if (now.length > 0 && !res.write(now)) await once(res, 'drain', { signal });
    }
  } catch (err) {
    const reason = signal.aborted ? signal.reason : undefined;
    if (reason instanceof ClientGone) result.outcome = 'cancelled';
    else if (reason instanceof UpstreamTimeout || (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') {
      result.outcome = 'timeout';
    } else result.outcome = 'error';
    result.error = result.outcome === 'cancelled' ? 'client disconnected' : `stream interrupted: ${(err as Error).message}`;
  }
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

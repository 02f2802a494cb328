import pg from 'pg';
import { isFeedbackSource } from './feedback-source.js';
import type { FeedbackEvent, FeedbackSource, Outcome } from './types.js';

/** The PostgreSQL channel (per database) that carries feedback as it is committed. */
export const FEEDBACK_CHANNEL = 'tracegate_feedback';

/** Waits before listening again after the connection was lost: longer after each failure, up to the last. */
const RETRY_MS = [250, 500, 1000, 2000, 5000];

interface ChannelLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface FeedbackChannelOptions {
  url: string;
  connectTimeoutMs: number;
  /** This process's mark on what it notifies: its own notifications are not handed to listeners. */
  origin: string;
  logger: ChannelLogger;
}

/**
 * The payload `pg_notify` sends with a feedback (the trace's class and model come along, so a
 * listener needs no read): short keys, as a payload is limited to 8,000 bytes.
 */
export interface FeedbackPayload {
  o: string;
  id: string;
  c: string;
  m: string;
  out: string;
  s: number;
  p: number | null;
  /** The feedback's source (absent from an instance of a version before sources: `human`). */
  src?: FeedbackSource;
}

/** SQL for the payload (`FeedbackPayload`): `trace` names the trace's row; the other arguments are SQL expressions. */
export function feedbackPayloadSql(origin: string, trace: string, previous: string, score: string, source: string): string {
  return `json_build_object('o', ${origin}, 'id', ${trace}.id, 'c', ${trace}.query_class, 'm', ${trace}.model_key,
    'out', ${trace}.outcome, 's', ${score}, 'p', ${previous}, 'src', ${source})::text`;
}

/**
 * Feedback that other gateway processes commit to the shared database, pushed by PostgreSQL
 * (LISTEN/NOTIFY) as it commits: the instance that answered learns from it at once instead of at its
 * next sync. One connection of its own, outside the pools; when it is lost it listens again (with a
 * growing wait), and what was posted meanwhile reaches the policy through the sync, as before.
 */
export class FeedbackChannel {
  private readonly listeners = new Set<(event: FeedbackEvent) => void>();
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private closed = false;

  constructor(private readonly options: FeedbackChannelOptions) {}

  /** Hands each feedback other processes commit to `listener`; returns what stops it. */
  subscribe(listener: (event: FeedbackEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.client === null && this.connecting === null && this.retryTimer === null) this.listen();
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Resolves once the channel listens (for tests; subscribe does not wait for it). */
  async listening(): Promise<void> {
    while (this.client === null && !this.closed) {
      await (this.connecting ?? new Promise((resolve) => setTimeout(resolve, 50)));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private listen(): void {
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      keepAlive: true,
      application_name: 'tracegate-feedback',
    });
    client.on('notification', (message) => this.deliver(message.payload));
    // A lost connection emits 'error' and then 'end': listen again (once).
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (this.client === client) this.client = null;
      client.end().catch(() => undefined);
      this.retry(err);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    this.connecting = (async () => {
      try {
        await client.connect();
        await client.query(`LISTEN ${FEEDBACK_CHANNEL}`);
        if (this.closed) {
          lost = true;
          await client.end().catch(() => undefined);
          return;
        }
        this.client = client;
        if (this.failures > 0) this.options.logger.info({}, 'listening for the fleet\'s feedback again');
        this.failures = 0;
      } catch (err) {
        onLost(err as Error);
      } finally {
        this.connecting = null;
      }
    })();
  }

  private retry(err?: Error): void {
    if (this.closed || this.retryTimer !== null) return;
    if (this.failures === 0) {
      this.options.logger.warn(
        { error: err?.message ?? 'connection closed' },
        "lost the connection that listens for the fleet's feedback: it arrives with the next sync meanwhile",
      );
    }
    const wait = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)] as number;
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed) this.listen();
    }, wait);
    this.retryTimer.unref();
  }

  private deliver(payload: string | undefined): void {
    if (payload === undefined) return;
    let p: FeedbackPayload;
    try {
      p = JSON.parse(payload) as FeedbackPayload;
    } catch {
      return;
    }
    if (p.o === this.options.origin || typeof p.id !== 'string' || typeof p.s !== 'number') return;
    const source = p.src === undefined ? 'human' : p.src;
    if (!isFeedbackSource(source)) return;
    const event: FeedbackEvent = {
      traceId: p.id,
      queryClass: p.c,
      model: p.m,
      outcome: p.out as Outcome,
      score: p.s,
      previous: p.p,
      source,
    };
    for (const listener of this.listeners) listener(event);
  }
}

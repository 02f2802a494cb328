import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { errors } from '../core/errors.js';
import { LruMap } from '../routing/lru-map.js';
import type { TraceStore } from '../traces/types.js';

/**
 * Conversations that stay on one model (`router.sticky`). A request names its conversation (see
 * `sessionKey`); its first routed turn goes where the policy chooses, and later routed turns go to
 * the model that answered the last one, for `ttlSeconds` after it, while that model is among those
 * the request may use. Nothing here knows an endpoint: a handler gives the header, the body's
 * metadata and the conversation's items, the pipeline asks `modelOf` before routing and tells
 * `answered` which model answered.
 *
 * The sessions live in memory (the `maxSessions` least recently used), in front of the trace store:
 * a session not in memory is read from the store, and the store is written when a session is new or
 * moves to another model, and otherwise when a quarter of the TTL has passed since its expiry was
 * last written (so the store's expiry of an active session lags by at most that much). So a restart
 * keeps its conversations, and with a shared store (PostgreSQL) every instance of a fleet finds them:
 * there an instance reads a session's row again once `recheckMs` has passed since it last did, and
 * follows a conversation another instance moved.
 */

/** The request header that names a conversation. */
export const SESSION_HEADER = 'x-session-id';
/** The longest session id taken; a longer one is a 400. */
export const MAX_SESSION_ID = 256;
/** A session's key: this many characters of a base64url SHA-256 (192 bits). */
const KEY_CHARS = 32;
/** The store's expiry is written again once the session's expiry has moved on by this share of the TTL. */
const REFRESH_SHARE = 0.25;
/**
 * A store that has not answered a session's read within this is taken as not knowing it; an answer
 * waits at most this for its session's write.
 */
export const LOOKUP_TIMEOUT_MS = 250;
/** Expired sessions are deleted from the store this often at most (and at least once per TTL, but not more than once a minute). */
const PURGE_EVERY_MS = 10 * 60_000;
const PURGE_MIN_INTERVAL_MS = 60_000;

export interface StickyOptions {
  ttlSeconds: number;
  inferFromMessages: boolean;
  maxSessions: number;
  /**
   * With a shared store: a session in memory is read from the store again once this many ms have
   * passed since it was last read or written (Infinity: memory is the truth once read).
   */
  recheckMs: number;
}

/** What a request says of its conversation; a handler fills it from its endpoint's request. */
export interface SessionClue {
  /** The `x-session-id` header. */
  header: unknown;
  /** The body's `metadata` (its `session_id`, a string). */
  metadata: unknown;
  /** The conversation's items in order, each with a `role` (chat messages): their opening is hashed with `inferFromMessages`. */
  items: readonly unknown[];
}

interface Session {
  model: string;
  /** Epoch ms: the last turn's time plus the TTL. */
  expiresAt: number;
  /** The expiry the store holds as far as this instance knows (0: unknown, to be written). */
  stored: number;
  /** Epoch ms this instance last read or wrote the session in the store. */
  checkedAt: number;
}

/** This instance's sticky turns since it started, as GET /stats shows them. */
export interface StickySnapshot {
  ttl_seconds: number;
  /** Sessions in this instance's memory. */
  sessions: number;
  /** Routed requests answered, and those of them answered with reason `sticky`. */
  routed_answers: number;
  sticky_answers: number;
  /** sticky_answers / routed_answers (0 before any). */
  share: number;
  /** Conversations moved to another model (theirs failed, or was not available). */
  moved: number;
}

/**
 * The opening of a conversation: its items up to and including the first user message (the same on
 * every turn of it); null when there is no user message.
 */
export function conversationOpening(items: readonly unknown[]): readonly unknown[] | null {
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (typeof item === 'object' && item !== null && (item as { role?: unknown }).role === 'user') return items.slice(0, i + 1);
  }
  return null;
}

/** The stored key of a session: a hash of who asks (the client key's name) and what names the conversation. */
function hashKey(kind: 'id' | 'opening', keyName: string | null, text: string): string {
  const hash = createHash('sha256');
  hash.update(kind);
  hash.update('\u0000');
  hash.update(keyName === null ? '' : `k:${keyName}`);
  hash.update('\u0000');
  hash.update(text);
  return hash.digest('base64url').slice(0, KEY_CHARS);
}

/** A given session id, if any: the header's, else the metadata's; a 400 naming where it came from when too long. */
function sessionId(clue: SessionClue): string | null {
  const header = clue.header;
  if (typeof header === 'string' && header !== '') {
    if (header.length > MAX_SESSION_ID) throw errors.sessionIdTooLong(SESSION_HEADER, MAX_SESSION_ID);
    return header;
  }
  const metadata = clue.metadata;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return null;
  const id = (metadata as { session_id?: unknown }).session_id;
  if (typeof id !== 'string' || id === '') return null;
  if (id.length > MAX_SESSION_ID) throw errors.sessionIdTooLong('metadata.session_id', MAX_SESSION_ID);
  return id;
}

export class StickySessions {
  private readonly sessions: LruMap<string, Session>;
  private readonly ttlMs: number;
  private routedAnswers = 0;
  private stickyAnswers = 0;
  private moved = 0;
  private readonly purgeTimer: NodeJS.Timeout;

  constructor(
    private readonly gw: { store: TraceStore; logger: Logger },
    private readonly options: StickyOptions,
    private readonly clock: () => number = Date.now,
  ) {
    this.sessions = new LruMap(options.maxSessions);
    this.ttlMs = options.ttlSeconds * 1000;
    this.purgeTimer = setInterval(() => this.purge(), Math.max(PURGE_MIN_INTERVAL_MS, Math.min(PURGE_EVERY_MS, this.ttlMs)));
    this.purgeTimer.unref();
  }

  /**
   * The session key of a request (a hash of the caller's key name and the session id, or with
   * `inferFromMessages` of the conversation's opening), or null when it names none. Throws the
   * client's 400 for a session id over MAX_SESSION_ID characters.
   */
  sessionKey(keyName: string | null, clue: SessionClue): string | null {
    const id = sessionId(clue);
    if (id !== null) return hashKey('id', keyName, id);
    if (!this.options.inferFromMessages) return null;
    const opening = conversationOpening(clue.items);
    return opening === null ? null : hashKey('opening', keyName, JSON.stringify(opening));
  }

  /**
   * The model the session's turns go to, or null (a new or expired session): from memory, else from
   * the store (a store that fails or is slow counts as not knowing). Synchronous when memory answers.
   */
  modelOf(key: string): string | null | Promise<string | null> {
    const now = this.clock();
    const session = this.sessions.get(key);
    if (session !== undefined && session.expiresAt > now && now - session.checkedAt < this.options.recheckMs) return session.model;
    return this.read(key, session, now);
  }

  private async read(key: string, known: Session | undefined, now: number): Promise<string | null> {
    const live = known !== undefined && known.expiresAt > now ? known : undefined;
    let row: Awaited<ReturnType<TraceStore['stickySession']>>;
    try {
      row = await withTimeout(this.gw.store.stickySession(key, now), LOOKUP_TIMEOUT_MS);
    } catch (err) {
      this.gw.logger.warn({ err }, 'sticky session could not be read from the trace store');
      return live?.model ?? null;
    }
    if (row === undefined) {
      if (live === undefined) {
        if (known !== undefined) this.sessions.delete(key);
        return null;
      }
      // Known here and not to the store (a write it dropped): written again at the next answer.
      live.stored = 0;
      live.checkedAt = now;
      return live.model;
    }
    const expiresAt = live !== undefined && live.model === row.modelKey ? Math.max(live.expiresAt, row.expiresAt) : row.expiresAt;
    this.sessions.set(key, { model: row.modelKey, expiresAt, stored: row.expiresAt, checkedAt: now });
    return row.modelKey;
  }

  /**
   * A routed request was answered by `model` for `reason` (session key null: it named none): the
   * session now goes to that model for the TTL, written to the store when it is new or moved, or
   * when its stored expiry is due for a refresh. Returns the write, to wait for before the answer
   * goes out (it never rejects, and settles within LOOKUP_TIMEOUT_MS), or null when nothing is written.
   */
  answered(key: string | null, model: string, reason: string): Promise<void> | null {
    this.routedAnswers++;
    if (reason === 'sticky') this.stickyAnswers++;
    if (key === null) return null;
    const now = this.clock();
    const expiresAt = now + this.ttlMs;
    const session = this.sessions.peek(key);
    if (session !== undefined && session.model === model) {
      session.expiresAt = expiresAt;
      if (expiresAt - session.stored < this.ttlMs * REFRESH_SHARE) return null;
      session.stored = expiresAt;
      session.checkedAt = now;
      return this.write(key, session, expiresAt);
    }
    if (session !== undefined && session.expiresAt > now) this.moved++;
    const fresh: Session = { model, expiresAt, stored: expiresAt, checkedAt: now };
    this.sessions.set(key, fresh);
    return this.write(key, fresh, expiresAt);
  }

  private write(key: string, session: Session, expiresAt: number): Promise<void> {
    const written = this.gw.store.setStickySession(key, session.model, expiresAt).catch((err: unknown) => {
      // Written again at the session's next answer.
      if (session.stored === expiresAt) session.stored = 0;
      this.gw.logger.warn({ err }, 'sticky session could not be written to the trace store');
    });
    return withTimeout(written, LOOKUP_TIMEOUT_MS).catch(() => {});
  }

  private purge(): void {
    this.gw.store.purgeStickySessions(this.clock()).catch((err: unknown) => {
      this.gw.logger.debug({ err }, 'expired sticky sessions could not be deleted');
    });
  }

  snapshot(): StickySnapshot {
    return {
      ttl_seconds: this.options.ttlSeconds,
      sessions: this.sessions.size,
      routed_answers: this.routedAnswers,
      sticky_answers: this.stickyAnswers,
      share: this.routedAnswers > 0 ? this.stickyAnswers / this.routedAnswers : 0,
      moved: this.moved,
    };
  }

  /** Stops the purge of expired sessions. */
  close(): void {
    clearInterval(this.purgeTimer);
  }
}

/** `promise`, or a rejection after `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

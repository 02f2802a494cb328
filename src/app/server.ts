import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { Config } from '../core/config.js';
import { closeGateway, createGateway, type Gateway, type GatewayOptions } from './gateway.js';
import { createApp } from '../http/app.js';
import { chatCompletionsListener, isChatCompletion } from '../http/chat-completions.js';
import { embeddingsListener, isEmbeddings } from '../http/embeddings.js';
import { isResponses, responsesListener } from '../http/responses.js';
import { answerClientError } from '../http/client-error.js';
import { UsageError } from '../core/errors.js';

/** A listen that failed on the user's choice of address (the port taken, or not theirs to bind): one line naming it and `--port`. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  if (err.code === 'EADDRINUSE') return new UsageError(`port ${port} on ${host} is already in use: stop what listens there, or choose another port with --port`);
  if (err.code === 'EACCES') return new UsageError(`port ${port} on ${host} may not be bound by this user: choose another port with --port`);
  if (err.code === 'EADDRNOTAVAIL') return new UsageError(`address ${host} is not one of this machine's: choose another with --host`);
  return err;
}

export interface RunningGateway {
  gateway: Gateway;
  server: Server;
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish (bounded), then closes pools and the store. */
  close(): Promise<void>;
}

function waitForInflight(gw: Gateway, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const check = () => {
      if (gw.inflight <= 0 || Date.now() >= deadline) resolve();
      else setTimeout(check, 20);
    };
    check();
  });
}

/** `router.updateIntervalSeconds`: recompute the policy from the store now and then. */
function startPeriodicUpdates(gw: Gateway, seconds: number): NodeJS.Timeout | null {
  if (seconds <= 0) return null;
  const timer = setInterval(() => {
    gw.policy.updateFromTraces().then(
      (summary) => {
        gw.metrics.policyUpdated();
        gw.logger.info({ summary }, 'routing policy updated from traces');
      },
      (err: unknown) => gw.logger.error({ err }, 'routing policy update failed'),
    );
  }, seconds * 1000);
  timer.unref();
  return timer;
}

/**
 * `router.syncIntervalMs`, with a store other instances write to as well: every interval, the policy
 * is rebuilt from the store's SQL aggregates, which folds in what the other instances traced (and the
 * feedback they took) since the last sync; the rebuild replays what this instance observed meanwhile,
 * so no trace is counted twice. A sync still running when the next is due makes that one skip.
 */
function startSync(gw: Gateway, intervalMs: number): NodeJS.Timeout | null {
  if (intervalMs <= 0 || !gw.store.shared) return null;
  let running = false;
  let failing = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    const started = performance.now();
    gw.policy.updateFromTraces().then(
      (summary) => {
        gw.metrics.policyUpdated();
        if (failing) gw.logger.info({}, 'routing policy sync from the shared store works again');
        failing = false;
        gw.logger.debug({ summary, ms: Math.round(performance.now() - started) }, 'routing policy synced from the shared store');
      },
      (err: unknown) => {
        // Once per outage: the store says it is unreachable on every try.
        if (!failing) gw.logger.warn({ err }, 'routing policy sync from the shared store failed; learning from this instance alone meanwhile');
        failing = true;
      },
    ).finally(() => {
      running = false;
    });
  }, intervalMs);
  timer.unref();
  return timer;
}

/**
 * With a shared store that pushes feedback (PostgreSQL's LISTEN/NOTIFY), feedback posted to another
 * instance reaches this policy as it commits rather than at the next sync. Only while syncing is on:
 * that is how an instance learns from the fleet at all.
 */
function listenForFeedback(gw: Gateway, syncIntervalMs: number): (() => void) | null {
  if (syncIntervalMs <= 0 || !gw.store.shared || gw.store.onFeedback === undefined) return null;
  return gw.store.onFeedback((event) => {
    gw.metrics.fleetFeedback();
    gw.policy.observeFeedback(event);
  });
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<RunningGateway> {
  const gateway = await createGateway(config, options);
  const app = createApp(gateway);
  const chatCompletion = chatCompletionsListener(gateway);
  const embeddings = embeddingsListener(gateway);
  const responses = responsesListener(gateway);
  const honoListener = getRequestListener(app.fetch, { hostname: config.server.host });
  // Slow clients (slowloris) may not hold a connection: a deadline for the headers and for the
  // whole request, checked often enough to matter.
  const serverOptions = {
    headersTimeout: config.limits.headersTimeoutMs,
    requestTimeout: config.limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs),
  };
  const listening = new Promise<Server>((resolve, reject) => {
    // Chat completions, responses and embeddings go straight to their handlers; Hono answers the rest.
    const s = createServer(serverOptions, (req, res) => {
      if (isChatCompletion(req)) void chatCompletion(req, res);
      else if (isResponses(req)) void responses(req, res);
      else if (isEmbeddings(req)) void embeddings(req, res);
      else void honoListener(req, res);
    });
    // Node's own refusals (bad HTTP, headers too large, too slow) in OpenAI's shape too.
    s.on('clientError', answerClientError);
    s.listen(config.server.port, config.server.host, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, config.server.host, config.server.port)));
  });
  let server: Server;
  try {
    server = await listening;
  } catch (err) {
    await closeGateway(gateway);
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const updater = startPeriodicUpdates(gateway, config.router.updateIntervalSeconds);
  const syncer = startSync(gateway, config.router.syncIntervalMs);
  const stopFeedback = listenForFeedback(gateway, config.router.syncIntervalMs);
  let closing: Promise<void> | null = null;
  return {
    gateway,
    server,
    port,
    url: `http://${host}:${port}`,
    close() {
      closing ??= (async () => {
        if (updater) clearInterval(updater);
        if (syncer) clearInterval(syncer);
        stopFeedback?.();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await waitForInflight(gateway, config.server.shutdownTimeoutMs);
        server.closeAllConnections();
        await closed;
        await closeGateway(gateway);
      })();
      return closing;
    },
  };
}

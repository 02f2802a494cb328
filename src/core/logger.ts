import { pino, type Logger } from 'pino';

/** JSON lines on stdout. Prompts and keys are never logged; `redact` guards against accidents. */
export function createLogger(level: string = process.env.TRACEGATE_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level: process.env.TRACEGATE_LOG_LEVEL ?? level,
    base: { service: 'tracegate' },
    redact: ['apiKey', '*.apiKey', 'authorization', '*.authorization', 'headers.authorization'],
  });
}

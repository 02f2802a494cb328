import type { Socket } from 'node:net';
import { errors, type GatewayError } from '../core/errors.js';

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/** Node's reason for refusing a request it could not read, as the gateway's error. */
function errorFor(code: string | undefined): GatewayError {
  if (code === 'HPE_HEADER_OVERFLOW') return errors.headersTooLarge();
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return errors.requestTimeout();
  return errors.badHttpRequest();
}

/**
 * The `clientError` listener of the HTTP server: a request Node could not read (not HTTP, headers
 * too large, too slow) is answered in OpenAI's error shape, as every other error, and its connection
 * closed. A connection the client already reset, or one whose answer has started, is only closed.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  const started = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (err.code === 'ECONNRESET' || !socket.writable || started) {
    socket.destroy();
    return;
  }
  const error = errorFor(err.code);
  const body = JSON.stringify(error.toBody());
  socket.end(
    `HTTP/1.1 ${error.status} ${REASONS[error.status]}\r\n` +
      'content-type: application/json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
  socket.destroySoon();
}

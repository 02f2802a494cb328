import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors } from '../core/errors.js';

/**
 * Reads a request body into one Buffer, refusing it (413) as soon as it passes `limit` bytes (or
 * at once when its content-length says it will); the rest is not read (see `closeAfterAnswer`). A
 * client that hangs up mid-body gets `request_aborted`.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(errors.bodyTooLarge(limit));
  if (req.destroyed) return Promise.reject(errors.uploadAborted());
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(errors.bodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    // The only errors of a request stream are the client's: it closed the connection mid-body
    // (a request closed before its end is the same).
    const onError = () => {
      cleanup();
      reject(errors.uploadAborted());
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onError);
  });
}

/**
 * For an answer given before the request's body was read to its end (a refused key, a body too
 * large): the rest is not read. The answer says `connection: close`, and the connection is closed
 * once the answer is flushed, so a client cannot keep streaming a body nobody wants.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete || req.socket.destroyed) return;
  req.pause();
  if (!res.headersSent) res.setHeader('connection', 'close');
  const close = () => req.socket.destroySoon();
  if (res.writableFinished) close();
  else res.once('finish', close);
}

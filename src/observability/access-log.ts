import type { IncomingMessage, ServerResponse } from 'node:http';
import { bounded } from './bounded.js';
import { requestLineLogger, type Logger } from './logger.js';
import type { RequestRecord } from './request-record.js';

/**
 * One access line per request, whatever path it took: id, method, path (no query string: it
 * may carry anything), status, duration, and, where known, the route, principal and refusal.
 * `aborted` marks a response the client went away from (or that was cut) before it was complete.
 */
export function logAccess(logger: Logger, req: IncomingMessage, res: ServerResponse, context: RequestRecord): void {
  if (!logger.isLevelEnabled('info')) return;
  const path = (req.url ?? '').split('?', 1)[0];
  const refusal = context.refusal;
  requestLineLogger(logger).info(
    {
      event: 'access',
      requestId: context.id,
      method: req.method,
      path: path === undefined ? path : bounded(path),
      status: res.statusCode,
      ms: Math.round((performance.now() - context.startedAt) * 10) / 10,
      route: context.route,
      remote: context.origin.address,
      sub: context.principal?.subject,
      client: context.principal?.clientId,
      ...(refusal ? { refusal: refusal.code, detail: bounded(refusal.message) } : {}),
      ...(res.writableFinished ? {} : { aborted: true }),
    },
    'request',
  );
}

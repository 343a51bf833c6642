import type { IncomingMessage, ServerResponse } from 'node:http';
import { bounded } from './bounded.js';
import type { Logger } from './logger.js';
import type { RequestRecord } from './request-record.js';
import { booleanField, numberField, stringField, writeInfoLine } from './request-lines.js';

/**
 * One access line per request, whatever path it took: id, method, path (no query string: it
 * may carry anything), status, duration, and, where known, the route, principal and refusal.
 * `aborted` marks a response the client went away from (or that was cut) before it was complete.
 */
export function logAccess(logger: Logger, req: IncomingMessage, res: ServerResponse, context: RequestRecord): void {
  if (!logger.isLevelEnabled('info')) return;
  const path = (req.url ?? '').split('?', 1)[0];
  const refusal = context.refusal;
  const principal = context.principal;
  writeInfoLine(
    logger,
    ',"event":"access"' +
      stringField('requestId', context.id) +
      stringField('method', req.method) +
      stringField('path', path === undefined ? path : bounded(path)) +
      numberField('status', res.statusCode) +
      numberField('ms', Math.round((performance.now() - context.startedAt) * 10) / 10) +
      stringField('route', context.route) +
      stringField('remote', context.origin.address) +
      stringField('sub', principal?.subject) +
      stringField('client', principal?.clientId) +
      (refusal ? stringField('refusal', refusal.code) + stringField('detail', bounded(refusal.message)) : '') +
      (res.writableFinished ? '' : booleanField('aborted', true)),
    'request',
  );
}

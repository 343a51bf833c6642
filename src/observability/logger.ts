import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config/types.js';
import { standardOutput } from './log-output.js';

export type Logger = PinoLogger;

/**
 * Where a token or credential would sit if a header bag, a token request's form or a token
 * answer were logged by mistake: the client's token and the upstream credentials the gateway
 * obtains (routes[].upstreamAuth) alike.
 */
const REDACTED_PATHS = [
  'headers.authorization', 'req.headers.authorization', '*.authorization', 'token',
  'headers.cookie', '*.cookie', 'headers["x-api-key"]', '*["x-api-key"]',
  'access_token', '*.access_token', 'subject_token', '*.subject_token', 'assertion', '*.assertion',
  'client_secret', '*.client_secret', 'client_assertion', '*.client_assertion', 'credential', '*.credential',
  // The users' own tokens (upstreamAuth idpToken, connectedAccount): a provider's answer, a kept set.
  'refresh_token', '*.refresh_token', 'id_token', '*.id_token', 'code_verifier', '*.code_verifier',
  'accessToken', '*.accessToken', 'refreshToken', '*.refreshToken', 'idToken', '*.idToken',
];

/**
 * Structured JSON logs (pino: fast, async-friendly, the de-facto Node choice). Tokens and
 * credentials are redacted wherever one is logged by mistake (REDACTED_PATHS). By default the
 * lines go to stdout in batches, one write per 10 ms at most (log-output.ts).
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mcp-auth-gateway' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination ?? standardOutput(),
  );
}

import { pino, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config/types.js';

export type Logger = PinoLogger;

/**
 * Structured JSON logs (pino: fast, async-friendly, the de-facto Node choice). Tokens and
 * credentials are redacted wherever a header bag is logged by mistake.
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mcp-auth-gateway' },
      redact: { paths: ['headers.authorization', 'req.headers.authorization', '*.authorization', 'token'], censor: '[redacted]' },
    },
    destination as never,
  );
}

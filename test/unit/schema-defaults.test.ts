import { describe, expect, it } from 'vitest';
import gatewaySchema from '../../schemas/gateway.schema.json' with { type: 'json' };
import { parseDuration } from '../../src/config/duration.js';
import { DEFAULTS } from '../../src/config/types.js';

/** The schema's `default`s are what editors show ops; they must be what the gateway does. */
describe('config schema defaults', () => {
  const props = gatewaySchema.properties;

  it('match the defaults the loader applies', () => {
    expect(props.listen.properties.host.default).toBe(DEFAULTS.host);
    expect(props.listen.properties.port.default).toBe(DEFAULTS.port);
    expect(props.limits.properties.maxBodyBytes.default).toBe(DEFAULTS.maxBodyBytes);
    expect(parseDuration(props.timeouts.properties.upstreamResponse.default)).toBe(DEFAULTS.upstreamResponseTimeoutMs);
    expect(parseDuration(props.timeouts.properties.issuerDiscovery.default)).toBe(DEFAULTS.issuerDiscoveryTimeoutMs);
    expect(props.log.properties.level.default).toBe(DEFAULTS.logLevel);
    expect(parseDuration(props.sessions.properties.idleTimeout.default)).toBe(DEFAULTS.sessionIdleTimeoutMs);
    expect(props.sessions.properties.maxPerPrincipal.default).toBe(DEFAULTS.maxSessionsPerPrincipal);
    expect(parseDuration(props.issuers.items.properties.clockTolerance.default) / 1000).toBe(DEFAULTS.clockToleranceSeconds);
  });
});

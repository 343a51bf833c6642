import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { protectedResourceMetadata } from '../../src/http/metadata.js';
import { routeRuntime } from '../../src/http/routes.js';

/** Which issuers a route trusts shows in its metadata (RFC 9728 authorization_servers) and its challenges. */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-gw-trust-'));
  await writeFile(join(dir, 'p.yaml'), 'scopes: [a]\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('route trust', () => {
  it("lists only the issuers a route trusts, and offers DPoP only where one of them requires it", async () => {
    const config = await parseConfig(
      join(dir, 'gateway.yaml'),
      `issuers:
  - { issuer: "https://employees.example.com", dpop: required, routes: [internal] }
  - { issuer: "https://partners.example.com", routes: [partner] }
  - { issuer: "https://everyone.example.com" }
routes:
  - { name: internal, path: /internal, upstream: "http://127.0.0.1:1/mcp", policy: p.yaml }
  - { name: partner, path: /partner, upstream: "http://127.0.0.1:1/mcp", policy: p.yaml }
`,
    );
    const [internal, partner] = config.routes.map((route) => routeRuntime(route, 'https://mcp.example.com', config.issuers));
    expect(protectedResourceMetadata(internal!, config.issuers)).toMatchObject({
      resource: 'https://mcp.example.com/internal',
      authorization_servers: ['https://employees.example.com', 'https://everyone.example.com'],
    });
    expect(protectedResourceMetadata(partner!, config.issuers)).toMatchObject({
      authorization_servers: ['https://partners.example.com', 'https://everyone.example.com'],
    });
    expect(internal!.requiresDpop).toBe(true);
    expect(partner!.requiresDpop).toBe(false);
  });
});

import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DCLinter } from 'dclint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { parseDuration } from '../../src/config/duration.js';
import { runCli } from '../support/gateway-process.js';
import { parseYamlDocuments } from './deploy-files.js';

const COMPOSE_DIR = 'deploy/compose';
const COMPOSE_FILE = `${COMPOSE_DIR}/compose.yaml`;
const REALM_FILE = `${COMPOSE_DIR}/keycloak/realm-mcp.json`;

interface Service {
  image?: string;
  build?: { context: string; target?: string };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  network_mode?: string;
  command?: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
}
interface GatewayConfig {
  listen: { port: number };
  publicUrl: string;
  admin: { listen: { port: number } };
  shutdown?: { drainDelay?: string; gracePeriod?: string };
  issuers: { issuer: string; preset?: string }[];
  routes: { path: string }[];
}
interface Realm {
  realm: string;
  clientScopes: { name: string; protocolMappers?: { protocolMapper: string; config: Record<string, string> }[] }[];
  defaultDefaultClientScopes: string[];
  defaultOptionalClientScopes: string[];
}

/** The part of dclint's API used here (its published type declarations do not resolve under NodeNext). */
interface Linter {
  lintFiles(paths: string[], recursive: boolean): { messages: { rule: string; message: string }[] }[];
}

/** dclint with its default rules: the compose-spec schema, then its best-practice and style rules. */
function lint(file: string): { rule: string; message: string }[] {
  const linter: Linter = new DCLinter({ rules: {}, quiet: true, debug: false, exclude: [] });
  const [result] = linter.lintFiles([file], false);
  return result!.messages.map(({ rule, message }) => ({ rule, message }));
}

/** Copies each `host:container[:ro]` bind mount of `service` under `root`, as the container sees it. */
async function writeBindMounts(root: string, service: Service): Promise<void> {
  for (const volume of service.volumes ?? []) {
    const [host, container] = volume.split(':') as [string, string];
    await mkdir(dirname(join(root, container)), { recursive: true });
    await cp(resolve(COMPOSE_DIR, host), join(root, container), { recursive: true });
  }
}

describe('deploy/compose: the local trial with Keycloak', () => {
  const [compose] = parseYamlDocuments(COMPOSE_FILE, '1.2');
  const services = compose!.object.services as Record<string, Service>;
  const gateway = services.gateway!;
  const keycloak = services.keycloak!;
  const realm = JSON.parse(readFileSync(REALM_FILE, 'utf8')) as Realm;
  let root: string;
  let config: GatewayConfig;
  let configFile: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcp-gw-compose-'));
    await writeBindMounts(root, gateway);
    configFile = join(root, gateway.command![gateway.command!.indexOf('--config') + 1]!);
    config = parseYaml(await readFile(configFile, 'utf8')) as GatewayConfig;
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('passes dclint: the compose-spec schema and its best-practice rules', () => {
    expect(lint(COMPOSE_FILE)).toEqual([]);
  });

  it('dclint reports a broken copy (the check cannot pass by not looking)', async () => {
    const broken = join(root, 'compose.yaml');
    const text = await readFile(COMPOSE_FILE, 'utf8');
    await writeFile(broken, text.replace('condition: service_healthy', 'condition: healthy'));
    expect(lint(broken)).toEqual([expect.objectContaining({ rule: 'invalid-schema' })]);
    await writeFile(broken, text.replace('image: redis:7.4-alpine', 'image: redis'));
    expect(lint(broken)).toEqual([expect.objectContaining({ rule: 'service-image-require-explicit-tag' })]);
  });

  it('has the IdP, Redis, the sample server and the gateway, each built here or pulled by a pinned tag', () => {
    expect(Object.keys(services).sort()).toEqual(['gateway', 'keycloak', 'redis', 'todo-mcp']);
    for (const [name, service] of Object.entries(services)) {
      expect(service.image ?? service.build, name).toBeDefined();
      if (service.build) expect(resolve(COMPOSE_DIR, service.build.context), name).toBe(resolve('.'));
    }
    expect(services['todo-mcp']!.build!.target).toBe('build');
  });

  it('starts the gateway once Keycloak and Redis are healthy, and gives it time to drain', () => {
    expect(gateway.depends_on).toMatchObject({ keycloak: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(keycloak.healthcheck?.test).toBeDefined();
    expect(services.redis!.healthcheck?.test).toBeDefined();
    const drainMs = parseDuration(config.shutdown?.drainDelay ?? '0s') + parseDuration(config.shutdown?.gracePeriod ?? '20s');
    expect(parseDuration(gateway.stop_grace_period!)).toBeGreaterThan(drainMs);
  });

  it('publishes the gateway, its admin listener and Keycloak on loopback, from the namespace they share', () => {
    expect(gateway.network_mode).toBe('service:keycloak');
    expect(services['todo-mcp']!.network_mode).toBe('service:keycloak');
    const published = keycloak.ports!.map((p) => p.split(':'));
    const keycloakPort = Number(keycloak.environment!.KC_HTTP_PORT);
    for (const port of [config.listen.port, config.admin.listen.port, keycloakPort]) {
      expect(published).toContainEqual(['127.0.0.1', String(port), String(port)]);
    }
    expect(new URL(config.publicUrl).port).toBe(String(config.listen.port));
    expect(gateway.environment!.HEALTHCHECK_URL).toBe(`http://127.0.0.1:${config.admin.listen.port}/healthz`);
  });

  it('its gateway config passes `mcp-auth-gateway validate` with the files the container mounts', async () => {
    const result = await runCli(['validate', '--config', configFile]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it("Keycloak's realm issues tokens the gateway accepts: issuer, audience, scopes and subject", async () => {
    expect(config.issuers).toEqual([{ issuer: `${keycloak.environment!.KC_HOSTNAME}/realms/${realm.realm}`, preset: 'keycloak' }]);
    expect(new URL(keycloak.environment!.KC_HOSTNAME!).port).toBe(keycloak.environment!.KC_HTTP_PORT);
    const defaultMappers = realm.clientScopes.filter((s) => realm.defaultDefaultClientScopes.includes(s.name)).flatMap((s) => s.protocolMappers ?? []);
    // Keycloak has no RFC 8707 resource parameter: a default scope puts the resource in aud.
    const audiences = defaultMappers.filter((m) => m.protocolMapper === 'oidc-audience-mapper').map((m) => m.config['included.custom.audience']);
    expect(audiences).toEqual(config.routes.map((route) => `${config.publicUrl}${route.path}`));
    // A realm import that lists clientScopes gets none of Keycloak's built-in ones, sub included.
    expect(defaultMappers.map((m) => m.protocolMapper)).toContain('oidc-sub-mapper');
    const loaded = await loadConfig(configFile);
    const scopes = loaded.routes.flatMap((route) => route.policy.scopesSupported);
    expect(scopes.length).toBeGreaterThan(0);
    for (const scope of scopes) {
      expect(realm.clientScopes.map((s) => s.name), scope).toContain(scope);
      expect(realm.defaultOptionalClientScopes, scope).toContain(scope);
    }
  });
});

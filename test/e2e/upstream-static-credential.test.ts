import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startCredentialUpstream, type CredentialUpstream } from '../support/credential-upstream.js';
import { IDP_SCOPES } from '../support/stack.js';
import { callTool, startUpstreamAuthGateway, type UpstreamAuthGateway } from '../support/upstream-auth-gateway.js';

/**
 * Issue 26, the static mode end to end: a secret from a file (as a Kubernetes Secret is
 * mounted) goes upstream in the configured header, is re-read when the file changes (in place,
 * renamed over, or swapped as Kubernetes swaps `..data`), never logged; a client's copy of the
 * header and the client's token never reach the upstream.
 */

const REREAD = 'upstream credential file re-read: the new value is in force';

describe('routes[].upstreamAuth.static', () => {
  let idp: DevIdp;
  let upstream: CredentialUpstream;
  let gw: UpstreamAuthGateway;
  let expected = 'key-one';

  const tokenFor = async (subject: string) => (await obtainAccessToken(idp, { resource: gw.mcpUrl, scope: 'todo:read', subject })).accessToken;
  /** Waits until the gateway has taken up a change of the file (its own log line says so). */
  const rereadAfter = async (change: () => Promise<void>) => {
    const from = gw.logs.length;
    await change();
    await gw.waitForLog((entry) => entry.msg === REREAD, from);
  };

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: IDP_SCOPES });
    upstream = await startCredentialUpstream({ kind: 'header', name: 'x-api-key', value: () => expected });
  });
  afterAll(async () => {
    await upstream?.close();
    await idp?.close();
  });
  afterEach(async () => {
    upstream.refuseAll = false;
    await gw?.close();
  });

  const start = (files: Record<string, string>, valueFile = 'api-key') =>
    startUpstreamAuthGateway({ issuer: idp.issuer, upstreamUrl: upstream.url, upstreamAuth: `      static: { header: x-api-key, valueFile: ${valueFile} }`, files });

  it("sends the file's secret in its header, drops a client's copy, and never the client's token", async () => {
    expected = 'key-one';
    gw = await start({ 'api-key': 'key-one\n' });
    const token = await tokenFor('alice');
    const response = await callTool(gw.mcpUrl, token, { 'x-api-key': 'client-chosen' });
    expect(response.status).toBe(200);
    const got = upstream.received.at(-1)!;
    expect(got).toMatchObject({ credential: 'key-one', accepted: true });
    expect(got.headers.authorization).toBeUndefined();
    expect(JSON.stringify(got.headers)).not.toContain(token);
    expect(gw.logs.find((entry) => entry.event === 'authz')).toMatchObject({ upstreamAuth: 'static', status: 200 });
    expect(JSON.stringify(gw.logs)).not.toContain('key-one');
  });

  it('re-reads the file when Kubernetes swaps its Secret mount, and when it is written in place', async () => {
    // The layout of a mounted Secret: api-key -> ..data/api-key, ..data -> ..<timestamp>/.
    const mounted = await mkdtemp(join(tmpdir(), 'mcp-gw-secret-'));
    try {
      await mkdir(join(mounted, '..ts1'));
      await writeFile(join(mounted, '..ts1', 'api-key'), 'key-one\n');
      await symlink('..ts1', join(mounted, '..data'));
      await symlink('..data/api-key', join(mounted, 'api-key'));
      expected = 'key-one';
      gw = await start({}, join(mounted, 'api-key'));
      const token = await tokenFor('bob');
      expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
      expect(upstream.received.at(-1)!.credential).toBe('key-one');

      // The kubelet's update: a new timestamped directory, a new ..data link renamed over the old.
      expected = 'key-two';
      await rereadAfter(async () => {
        await mkdir(join(mounted, '..ts2'));
        await writeFile(join(mounted, '..ts2', 'api-key'), 'key-two\n');
        await symlink('..ts2', join(mounted, '..data_tmp'));
        await rename(join(mounted, '..data_tmp'), join(mounted, '..data'));
      });
      expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
      expect(upstream.received.at(-1)!.credential).toBe('key-two');

      // Written in place, where the link now leads.
      expected = 'key-three';
      await rereadAfter(() => writeFile(join(mounted, '..ts2', 'api-key'), 'key-three\n'));
      expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
      expect(upstream.received.at(-1)!.credential).toBe('key-three');
      expect(JSON.stringify(gw.logs)).not.toMatch(/key-(one|two|three)/);
    } finally {
      await rm(mounted, { recursive: true, force: true });
    }
  });

  it('renamed over, the file is taken up; a broken new value leaves the last good one in force', async () => {
    expected = 'key-one';
    gw = await start({ 'api-key': 'key-one' });
    const token = await tokenFor('carol');
    expected = 'key-two';
    await rereadAfter(async () => {
      await writeFile(join(gw.dir, 'api-key.tmp'), 'key-two');
      await rename(join(gw.dir, 'api-key.tmp'), join(gw.dir, 'api-key'));
    });
    expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
    expect(upstream.received.at(-1)!.credential).toBe('key-two');

    const from = gw.logs.length;
    await writeFile(join(gw.dir, 'api-key'), 'key-\r\nthree');
    await gw.waitForLog((entry) => String(entry.msg).startsWith('upstream credential file is not usable'), from);
    expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
    expect(upstream.received.at(-1)!.credential).toBe('key-two');
  });

  it('on an upstream 401 reads the file again and re-sends once; refused again, answers 502', async () => {
    expected = 'key-rotated';
    gw = await start({ 'api-key': 'key-old' });
    const token = await tokenFor('dave');
    const before = upstream.received.length;
    const refused = await callTool(gw.mcpUrl, token);
    expect(refused.status).toBe(502);
    expect(refused.headers.get('www-authenticate')).toBeNull();
    expect(upstream.received.slice(before).map((r) => r.credential)).toEqual(['key-old', 'key-old']);

    // Positive control: the secret rotated in the file, the same request goes through (taken
    // up by the watch, or by the re-read the upstream's 401 causes, whichever comes first).
    await writeFile(join(gw.dir, 'api-key'), 'key-rotated');
    const after = upstream.received.length;
    expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
    expect(upstream.received.at(-1)!.credential).toBe('key-rotated');
    expect(upstream.received.length - after).toBeLessThanOrEqual(2);
  });
});

describe('static credential in Authorization', () => {
  it("sends 'Bearer <secret>' as Authorization instead of the client's token", async () => {
    const idp = await startDevIdp({ scopes: IDP_SCOPES });
    const upstream = await startCredentialUpstream({ kind: 'header', name: 'authorization', value: () => 'Bearer upstream-secret' });
    const gw = await startUpstreamAuthGateway({ issuer: idp.issuer, upstreamUrl: upstream.url, upstreamAuth: '      static: { header: authorization, prefix: "Bearer ", valueFile: secret }', files: { secret: 'upstream-secret\n' } });
    try {
      const { accessToken } = await obtainAccessToken(idp, { resource: gw.mcpUrl, scope: 'todo:read', subject: 'erin' });
      expect((await callTool(gw.mcpUrl, accessToken)).status).toBe(200);
      expect(upstream.received).toHaveLength(1);
      expect(upstream.received[0]!.credential).toBe('Bearer upstream-secret');
      expect(JSON.stringify(upstream.received[0]!.headers)).not.toContain(accessToken);
    } finally {
      await gw.close();
      await upstream.close();
      await idp.close();
    }
  });
});

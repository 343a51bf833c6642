/**
 * The Client ID Metadata Document server (test/support/cimd-server.ts) is what the facade's CIMD
 * and SSRF tests fetch from: these prove it is real HTTPS that a client trusts only when told to
 * (in process, or a child process through NODE_EXTRA_CA_CERTS), that each bad answer it offers
 * is exactly that bad (redirect, oversized, chunked, slow, stalled, wrong type, foreign
 * client_id), and that it records every request.
 */
import { execFile } from 'node:child_process';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startCimdServer, type CimdServer } from '../support/cimd-server.js';

const execFileAsync = promisify(execFile);
const METADATA = { client_name: 'Test MCP Client', redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' };

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('client ID metadata document server', () => {
  let cimd: CimdServer;

  beforeAll(async () => {
    cimd = await startCimdServer();
  });
  afterAll(async () => {
    await cimd?.close();
  });

  /** GET over https trusting the CA through the agent (no process-wide trust), or plain http. */
  function get(url: string, headers: Record<string, string> = {}, agent = cimd.httpsAgent): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const done = (res: IncomingMessage): void => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      };
      const request = url.startsWith('https:') ? httpsGet(url, { agent, headers }, done) : httpGet(url, { headers }, done);
      request.on('error', reject);
    });
  }

  it('serves a client document over HTTPS whose client_id is its own URL, at 127.0.0.1 and localhost', async () => {
    const clientId = cimd.serveClient('/clients/good.json', METADATA);
    expect(clientId).toBe(`${cimd.origin}/clients/good.json`);
    expect(clientId).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/clients\/good\.json$/);
    const answer = await get(clientId);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(JSON.parse(answer.body)).toEqual({ client_id: clientId, ...METADATA });

    const viaName = cimd.serveClient('/clients/by-name.json', METADATA, { host: 'localhost' });
    expect(viaName).toMatch(/^https:\/\/localhost:\d+\//);
    expect(JSON.parse((await get(viaName)).body)).toMatchObject({ client_id: viaName });
  });

  it('is trusted in process only after trustInProcess(), and no longer after the undo', async () => {
    const clientId = cimd.serveClient('/clients/trust.json', METADATA);
    const failure = (url: string) => fetch(url).then(() => 'fetched', (err: unknown) => String((err as { cause?: { code?: string } }).cause?.code));
    expect(await failure(clientId)).toMatch(/CERT|SIGNATURE|ISSUER/);
    const undo = cimd.trustInProcess();
    try {
      expect(await (await fetch(clientId)).json()).toMatchObject({ client_id: clientId });
    } finally {
      undo();
    }
    // Another origin (localhost), so no kept-alive connection from the trusted fetch is reused.
    expect(await failure(cimd.url('/clients/trust.json', 'localhost'))).toMatch(/CERT|SIGNATURE|ISSUER/);
  });

  it('is trusted by a child process given childEnv(), and not without it', async () => {
    const clientId = cimd.serveClient('/clients/child.json', METADATA);
    const script = 'fetch(process.argv[1]).then((r) => r.json()).then((d) => console.log(d.client_id), (e) => { console.log("failed", e.cause?.code); })';
    const run = (env: Record<string, string>) =>
      execFileAsync(process.execPath, ['-e', script, clientId], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 });
    expect((await run(cimd.childEnv())).stdout.trim()).toBe(clientId);
    expect((await run({})).stdout.trim()).toMatch(/^failed .*(CERT|SIGNATURE|ISSUER)/);
  });

  it('serves the same routes over plain HTTP, for the https-only refusal and its control', async () => {
    cimd.serveClient('/clients/plain.json', METADATA);
    const answer = await get(cimd.httpUrl('/clients/plain.json'));
    expect(answer.status).toBe(200);
    expect(cimd.requestsFor('/clients/plain.json').at(-1)).toMatchObject({ tls: false });
  });

  it('answers with redirects, to anywhere the test names', async () => {
    const target = cimd.serveClient('/clients/target.json', METADATA);
    const hop = cimd.serve('/clients/hop.json', { redirectTo: target });
    const toMetadataIp = cimd.serve('/clients/to-imds.json', { redirectTo: 'http://169.254.169.254/latest/meta-data/', status: 307 });
    const first = await get(hop);
    expect(first).toMatchObject({ status: 302, headers: { location: target } });
    expect(await get(toMetadataIp)).toMatchObject({ status: 307, headers: { location: 'http://169.254.169.254/latest/meta-data/' } });
    expect(cimd.requestsFor('/clients/target.json')).toHaveLength(0); // nothing follows on its own
  });

  it('serves oversized documents, with Content-Length or chunked without it', async () => {
    const big = cimd.serveClient('/clients/big.json', METADATA, { padToBytes: 5 * 1024 + 1 });
    const answer = await get(big);
    expect(Buffer.byteLength(answer.body)).toBeGreaterThanOrEqual(5 * 1024 + 1);
    expect(Buffer.byteLength(answer.body)).toBeLessThan(5 * 1024 + 64);
    expect(answer.headers['content-length']).toBe(String(Buffer.byteLength(answer.body)));
    expect(JSON.parse(answer.body)).toMatchObject({ client_id: big, ...METADATA });

    const chunked = cimd.serveClient('/clients/chunked.json', METADATA, { padToBytes: 64 * 1024, chunked: true });
    const streamed = await get(chunked);
    expect(streamed.headers['content-length']).toBeUndefined();
    expect(streamed.headers['transfer-encoding']).toBe('chunked');
    expect(Buffer.byteLength(streamed.body)).toBeGreaterThanOrEqual(64 * 1024);

    const small = await get(cimd.serveClient('/clients/small.json', METADATA, { padToBytes: 10 }));
    expect(JSON.parse(small.body)).not.toHaveProperty('padding');
  });

  it('answers slowly when told to, or stalls after the headers until closed', async () => {
    const slow = cimd.serveClient('/clients/slow.json', METADATA, { delayMs: 300 });
    const started = Date.now();
    expect((await get(slow)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    const stalled = cimd.serveClient('/clients/stalled.json', METADATA);
    cimd.serve('/clients/stalled.json', { body: { client_id: stalled, ...METADATA }, stallAfterHeaders: true });
    const controller = new AbortController();
    // Until the first bytes, only a bound on a server that sends none (body.length fails below).
    let timer = setTimeout(() => controller.abort(), 10_000);
    let sawData = false;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      httpsGet(stalled, { agent: cimd.httpsAgent, signal: controller.signal }, resolve).on('error', reject);
    });
    expect(response.statusCode).toBe(200);
    // The client gives up 300 ms after the first bytes (not after the request, which a slow TLS
    // handshake could outlast): a server that sent the rest meanwhile ends the body first.
    const body = await new Promise<string>((resolve) => {
      let text = '';
      response.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (sawData) return;
        sawData = true;
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), 300);
      });
      response.on('error', () => resolve(text));
      response.on('close', () => resolve(text));
    });
    clearTimeout(timer);
    expect(controller.signal.aborted).toBe(true);
    expect(body.length).toBeGreaterThan(0);
    expect(() => JSON.parse(body)).toThrow(); // half a document
  });

  it('serves wrong content types, or none', async () => {
    const html = cimd.serveClient('/clients/html.json', METADATA, { contentType: 'text/html; charset=utf-8' });
    expect((await get(html)).headers['content-type']).toBe('text/html; charset=utf-8');
    const none = cimd.serveClient('/clients/none.json', METADATA, { contentType: null });
    expect((await get(none)).headers['content-type']).toBeUndefined();
  });

  it('serves a document whose client_id is not its URL', async () => {
    const url = cimd.serveClient('/clients/liar.json', METADATA, { clientId: 'https://trusted.example/client.json' });
    expect(JSON.parse((await get(url)).body).client_id).toBe('https://trusted.example/client.json');
  });

  it('passes caching headers through and answers a matching If-None-Match with 304', async () => {
    const url = cimd.serveClient('/clients/cached.json', METADATA, { headers: { 'cache-control': 'max-age=60' }, etag: '"v1"' });
    const first = await get(url);
    expect(first.headers).toMatchObject({ 'cache-control': 'max-age=60', etag: '"v1"' });
    expect((await get(url, { 'if-none-match': '"v1"' })).status).toBe(304);
    expect((await get(url, { 'if-none-match': '"v0"' })).status).toBe(200);
  });

  it('answers 404 for paths it does not serve, and any status it is told', async () => {
    expect((await get(cimd.url('/clients/missing.json'))).status).toBe(404);
    expect((await get(cimd.serve('/clients/error.json', { status: 500, body: 'oops', contentType: 'text/plain' }))).status).toBe(500);
  });

  it('records every request: method, path with query, headers, and whether it came over TLS', async () => {
    const url = cimd.serveClient('/clients/recorded.json', METADATA);
    await get(`${url}?x=1`, { 'user-agent': 'recorder-test' });
    const recorded = cimd.requestsFor('/clients/recorded.json');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ method: 'GET', path: '/clients/recorded.json?x=1', tls: true, headers: { 'user-agent': 'recorder-test' } });
    expect(recorded[0]?.at).toBeLessThanOrEqual(Date.now());
    expect(cimd.requests.length).toBeGreaterThan(recorded.length);
  });

  it('closes promptly with a delayed answer pending, and refuses paths without a leading slash', async () => {
    expect(() => cimd.serve('clients/x.json', {})).toThrow(/must start with/);
    const other = await startCimdServer();
    const url = other.serveClient('/c.json', METADATA, { delayMs: 60_000 });
    const pending = get(url, {}, other.httpsAgent).then((a) => a.status, () => 'cut');
    // Only close once the request is waiting on the server.
    while (other.requestsFor('/c.json').length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(pending).resolves.toBe('cut');
  });
});

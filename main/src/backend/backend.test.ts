import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerProtocolPrefix, consoleProtocol, ConsoleEventSchema } from '../shared/console-api.ts';
import { startBackend, type RunningBackend } from './backend.ts';

/** Raw GET, so the Host header can be forged. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
      })
      .on('error', reject);
  });
}

describe('console backend API (no agents)', () => {
  let dir: string;
  let backend: RunningBackend;
  const auth = () => ({ authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-backend-'));
    await mkdir(path.join(dir, 'renderer/assets'), { recursive: true });
    await writeFile(path.join(dir, 'renderer/index.html'), '<!doctype html><title>Tandem</title>');
    await writeFile(path.join(dir, 'renderer/assets/app.js'), 'console.log(1)');
    await writeFile(path.join(dir, 'secret.txt'), 'outside');
    backend = await startBackend({ configDir: path.join(dir, 'config'), rendererDir: path.join(dir, 'renderer') });
  });
  afterAll(async () => {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 with a long random token', () => {
    expect(backend.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(backend.token).toMatch(/^[0-9a-f]{64}$/);
  });

  it('serves the renderer with a strict CSP, index.html for app paths', async () => {
    const page = await fetch(`${backend.url}/sites/x`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Tandem</title>');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    const script = await fetch(`${backend.url}/assets/app.js`);
    expect(script.headers.get('content-type')).toContain('javascript');
  });

  it('never serves files outside the renderer folder', async () => {
    const response = await rawGet(`${backend.url}/..%2fsecret.txt`, {});
    expect(response.body).not.toContain('outside');
    const dotted = await rawGet(`${backend.url}/assets/../../secret.txt`, {});
    expect(dotted.body).not.toContain('outside');
  });

  it('refuses API calls without the bearer token, with a problem body', async () => {
    const response = await fetch(`${backend.url}/api/sites`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ problem: 'unauthenticated' });
    const wrong = await fetch(`${backend.url}/api/sites`, { headers: { authorization: `Bearer ${'0'.repeat(64)}` } });
    expect(wrong.status).toBe(401);
  });

  it('refuses a foreign Host header (DNS rebinding) and a foreign Origin', async () => {
    const port = new URL(backend.url).port;
    const rebound = await rawGet(`${backend.url}/api/sites`, { host: `evil.example:${port}`, authorization: `Bearer ${backend.token}` });
    expect(rebound.status).toBe(403);
    const crossOrigin = await fetch(`${backend.url}/api/sites/probe`, {
      method: 'POST',
      headers: { ...auth(), origin: 'http://evil.example' },
      body: JSON.stringify({ address: '127.0.0.1:1' }),
    });
    expect(crossOrigin.status).toBe(403);
  });

  it('answers with an empty site list and clear problems for bad input', async () => {
    expect(await (await fetch(`${backend.url}/api/sites`, { headers: auth() })).json()).toEqual({ sites: [] });
    const bad = await fetch(`${backend.url}/api/sites/probe`, { method: 'POST', headers: auth(), body: JSON.stringify({ address: 'no port' }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ problem: 'bad-request', message: expect.stringContaining('host:port') });
    const notJson = await fetch(`${backend.url}/api/sites/probe`, { method: 'POST', headers: auth(), body: '{' });
    expect(await notJson.json()).toMatchObject({ problem: 'bad-request', message: 'the request body is not valid JSON' });
    const unknownSite = await fetch(`${backend.url}/api/sites/nope/volumes`, { headers: auth() });
    expect(unknownSite.status).toBe(404);
    expect(await unknownSite.json()).toMatchObject({ problem: 'not-found' });
  });

  it('reports an address where nothing listens as agent-unreachable', async () => {
    const response = await fetch(`${backend.url}/api/sites/probe`, { method: 'POST', headers: auth(), body: JSON.stringify({ address: '127.0.0.1:1' }) });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ problem: 'agent-unreachable', message: expect.stringContaining('nothing is listening') });
  });

  it('opens the event WebSocket only with the token, then sends the site list', async () => {
    const url = `${backend.url.replace('http', 'ws')}/api/events`;
    const refused = new WebSocket(url, [consoleProtocol, `${bearerProtocolPrefix}wrong`]);
    const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0)));
    expect(status).toBe(401);
    const socket = new WebSocket(url, [consoleProtocol, `${bearerProtocolPrefix}${backend.token}`]);
    const first = await new Promise<string>((resolve, reject) => {
      socket.once('message', (data) => resolve(data.toString()));
      socket.once('error', reject);
    });
    expect(ConsoleEventSchema.parse(JSON.parse(first))).toEqual({ kind: 'sites', sites: [] });
    socket.close();
  });
});

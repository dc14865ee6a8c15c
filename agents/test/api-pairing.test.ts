/**
 * The control API's public surface and pairing, through fastify's inject()
 * (no socket, so no client certificate: exactly an unauthenticated caller),
 * over a real storage engine in a temp data dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { PairResponseSchema, ProblemSchema, type AgentInfo } from '@tandem/contract';
import { createApiInstance } from '../src/api/app.ts';
import { StorageEngine } from '../src/storage/engine.ts';
import { initDataDir } from '../src/storage/init.ts';
import { createPairingToken, isClientActive } from '../src/tls/pairing.ts';
import { initTls, loadServerTls } from '../src/tls/files.ts';
import { generateKeyPair, publicKeyToPem, x509 } from '../src/tls/x509.ts';

let root: string;
let engine: StorageEngine;
let app: FastifyInstance;
let caPem: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tandem-api-pairing-'));
  const dataDir = path.join(root, 'data');
  const identity = await initDataDir(dataDir, { site: 'east' });
  await initTls(dataDir, identity);
  const tls = await loadServerTls(dataDir);
  caPem = tls.caPem;
  engine = await StorageEngine.open(dataDir);
  const info: AgentInfo = {
    site: identity.site,
    agentId: identity.agentId,
    version: 'test',
    trackSize: identity.trackSize,
    startedAt: new Date().toISOString(),
    apiAddress: 'inject',
    nbdAddress: null,
    nbdSocket: null,
    certificateFingerprint: tls.fingerprint,
  };
  app = await createApiInstance({ engine, authority: tls.authority, agentInfo: () => info });
});

afterAll(async () => {
  await app?.close();
  // The last test closes the catalog on purpose; the engine's close may then complain.
  await engine?.close().catch(() => {});
  await rm(root, { recursive: true, force: true });
});

async function newPublicKeyPem(): Promise<string> {
  return publicKeyToPem((await generateKeyPair()).publicKey);
}

function problemOf(body: string) {
  return ProblemSchema.parse(JSON.parse(body));
}

describe('without a client certificate', () => {
  it('answers the health probe', async () => {
    const response = await app.inject({ method: 'GET', url: '/v1/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ status: 'ok', site: 'east' });
  });

  it.each([
    ['GET', '/v1/agent'],
    ['GET', '/v1/pool'],
    ['GET', '/v1/volumes'],
    ['POST', '/v1/volumes'],
    ['GET', '/v1/volumes/vol1'],
    ['PATCH', '/v1/volumes/vol1'],
    ['DELETE', '/v1/volumes/vol1'],
    ['POST', '/v1/volumes/vol1/snapshots'],
    ['GET', '/v1/volumes/vol1/snapshots'],
    ['GET', '/v1/volumes/vol1/track-map'],
    ['GET', '/v1/volumes/vol1/tracks/0'],
    ['GET', '/v1/events'],
    ['GET', '/v1/events/stream'],
    ['GET', '/v1/no-such-route'],
  ] as const)('refuses %s %s with 401 unauthenticated', async (method, url) => {
    const response = await app.inject({ method, url, payload: method === 'POST' || method === 'PATCH' ? { name: 'x', sizeBytes: 4096 } : undefined });
    expect(response.statusCode).toBe(401);
    expect(problemOf(response.body).problem).toBe('unauthenticated');
  });

  it('creates nothing when an unauthenticated caller posts a volume', async () => {
    await app.inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'sneaky', sizeBytes: 1 << 20 } });
    expect(engine.listVolumes().map((volume) => volume.name)).not.toContain('sneaky');
  });
});

describe('POST /v1/pair', () => {
  it('issues a client certificate signed by the agent CA, records the client and an event, and burns the token', async () => {
    const { token } = createPairingToken(engine.catalog.db);
    const publicKey = await newPublicKeyPem();
    const response = await app.inject({ method: 'POST', url: '/v1/pair', payload: { token, publicKey, clientName: 'console-1' } });
    expect(response.statusCode).toBe(200);
    const paired = PairResponseSchema.parse(response.json());
    expect(paired.caCertificate.trim()).toBe(caPem.trim());
    const certificate = new x509.X509Certificate(paired.clientCertificate);
    const ca = new x509.X509Certificate(caPem);
    expect(await certificate.verify({ publicKey: ca.publicKey })).toBe(true);
    expect(Buffer.from(certificate.publicKey.rawData).equals(Buffer.from(new x509.PublicKey(publicKey).rawData))).toBe(true);
    expect(isClientActive(engine.catalog.db, certificate.serialNumber)).toBe(true);
    const events = engine.catalog.listEvents(0, 1000).filter((event) => event.type === 'client.paired');
    expect(events.at(-1)).toMatchObject({ subject: 'console-1' });

    const again = await app.inject({ method: 'POST', url: '/v1/pair', payload: { token, publicKey, clientName: 'console-2' } });
    expect(again.statusCode).toBe(403);
    expect(problemOf(again.body)).toMatchObject({ problem: 'token-invalid', message: expect.stringContaining('already used') });
  });

  it('refuses an unknown token', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/pair',
      payload: { token: 'tdm_not-a-real-token', publicKey: await newPublicKeyPem(), clientName: 'x' },
    });
    expect(response.statusCode).toBe(403);
    expect(problemOf(response.body)).toMatchObject({ problem: 'token-invalid', message: expect.stringContaining('not known') });
  });

  it('refuses an expired token', async () => {
    const { token } = createPairingToken(engine.catalog.db, 'administrator', new Date(Date.now() - 16 * 60 * 1000));
    const response = await app.inject({
      method: 'POST',
      url: '/v1/pair',
      payload: { token, publicKey: await newPublicKeyPem(), clientName: 'late' },
    });
    expect(response.statusCode).toBe(403);
    expect(problemOf(response.body)).toMatchObject({ problem: 'token-invalid', message: expect.stringContaining('expired') });
  });

  it('refuses a bad public key without burning the token', async () => {
    const { token } = createPairingToken(engine.catalog.db);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/pair',
      payload: { token, publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', clientName: 'x' },
    });
    expect(bad.statusCode).toBe(400);
    expect(problemOf(bad.body)).toMatchObject({ problem: 'bad-request', message: expect.stringContaining('publicKey') });
    const good = await app.inject({
      method: 'POST',
      url: '/v1/pair',
      payload: { token, publicKey: await newPublicKeyPem(), clientName: 'retry' },
    });
    expect(good.statusCode).toBe(200);
  });

  it.each([
    [{ publicKey: 'k', clientName: 'c' }, 'body.token: is required'],
    [{ token: 't', clientName: 'c' }, 'body.publicKey: is required'],
    [{ token: 't', publicKey: 'k', clientName: 'c'.repeat(200) }, 'body.clientName'],
    [{ token: 7, publicKey: 'k', clientName: 'c' }, 'body.token'],
  ])('answers a bad body %j with bad-request naming the field', async (payload, message) => {
    const response = await app.inject({ method: 'POST', url: '/v1/pair', payload });
    expect(response.statusCode).toBe(400);
    expect(problemOf(response.body)).toMatchObject({ problem: 'bad-request', message: expect.stringContaining(message) });
  });

  it('answers malformed JSON and a missing body with bad-request', async () => {
    const garbage = await app.inject({
      method: 'POST',
      url: '/v1/pair',
      headers: { 'content-type': 'application/json' },
      payload: '{"token": ',
    });
    expect(garbage.statusCode).toBe(400);
    expect(problemOf(garbage.body).problem).toBe('bad-request');
    const empty = await app.inject({ method: 'POST', url: '/v1/pair' });
    expect(empty.statusCode).toBe(400);
    expect(problemOf(empty.body)).toMatchObject({ problem: 'bad-request', message: 'body: a JSON object is required' });
  });
});

describe('server errors', () => {
  it('answers 500 internal-error without leaking what failed', async () => {
    // Closing the catalog under the running app makes the pairing route's database call throw.
    engine.catalog.close();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/pair',
      payload: { token: 'tdm_whatever', publicKey: await newPublicKeyPem(), clientName: 'x' },
    });
    expect(response.statusCode).toBe(500);
    const problem = problemOf(response.body);
    expect(problem.problem).toBe('internal-error');
    expect(problem.message).not.toMatch(/database|sqlite|connection|stack|at /i);
  });
});

/**
 * Mutual TLS and pairing against a real spawned agent: who gets in, who is
 * refused with `unauthenticated`, and the event stream over WebSocket.
 */
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EventStreamMessageSchema, PairResponseSchema, ProblemSchema, type EventStreamMessage } from '@tandem/contract';
import { AgentApiClient } from '../src/cli/api-client.ts';
import { Catalog } from '../src/storage/catalog.ts';
import { createAuthority, issueWithNewKey } from '../src/tls/authority.ts';
import { loadAdminCredentials } from '../src/tls/files.ts';
import { generateKeyPair, privateKeyToPem, publicKeyToPem } from '../src/tls/x509.ts';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';

let agent: AgentProcess;
let caPem: string;
const clients: AgentApiClient[] = [];

function client(credentials: ConstructorParameters<typeof AgentApiClient>[1]): AgentApiClient {
  const created = new AgentApiClient(agent.apiAddress, credentials);
  clients.push(created);
  return created;
}

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'tls-site' });
  caPem = (await loadAdminCredentials(agent.dataDir)).caPem;
});

afterAll(async () => {
  for (const each of clients) each.close();
  await agent?.stop();
});

/** Collects frames from a WebSocket until `until` says stop. */
function collect(socket: WebSocket, until: (frames: EventStreamMessage[]) => boolean): Promise<EventStreamMessage[]> {
  const frames: EventStreamMessage[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(frames)}`)), 15_000);
    socket.on('message', (data) => {
      frames.push(EventStreamMessageSchema.parse(JSON.parse(String(data))));
      if (until(frames)) {
        clearTimeout(timer);
        resolve(frames);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

describe('authentication', () => {
  it('answers the health probe without a client certificate', async () => {
    const anonymous = client({ caPem });
    expect(await anonymous.health()).toMatchObject({ status: 'ok', site: 'tls-site' });
  });

  it('refuses every other route without a client certificate', async () => {
    const anonymous = client({ caPem });
    for (const [method, path] of [
      ['GET', '/v1/volumes'],
      ['GET', '/v1/agent'],
      ['POST', '/v1/volumes'],
      ['GET', '/v1/events'],
    ] as const) {
      const response = await anonymous.request(method, path, method === 'POST' ? { name: 'v', sizeBytes: 4096 } : undefined);
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(ProblemSchema.parse(response.body).problem).toBe('unauthenticated');
    }
    expect(await agent.api.listVolumes()).toEqual([]);
  });

  it('refuses a client certificate issued by another CA', async () => {
    const { authority } = await createAuthority('impostor', 'impostor-id');
    const foreign = await issueWithNewKey(authority, { commonName: 'local-admin tls-site', usage: 'client' });
    const impostor = client({ caPem, certificatePem: foreign.certificatePem, keyPem: foreign.keyPem });
    const response = await impostor.request('GET', '/v1/volumes');
    expect(response.status).toBe(401);
    expect(ProblemSchema.parse(response.body)).toMatchObject({
      problem: 'unauthenticated',
      message: expect.stringContaining('not issued by this agent'),
    });
  });

  it('lets the local admin in and reports the certificate the server presents', async () => {
    const info = await agent.api.agentInfo();
    expect(info).toMatchObject({ site: 'tls-site', apiAddress: agent.apiAddress, nbdAddress: agent.runInfo.nbdAddress });
    const [host, port] = [agent.api.host, agent.api.port];
    const presented = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host, port, ca: caPem, servername: 'localhost' }, () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(presented).toBe(info.certificateFingerprint);
  });
});

describe('pairing over HTTPS', () => {
  it('pairs with a token from `tandem-agent token`, then the paired client is let in; the token works once', async () => {
    const tokenResult = await agent.cli(['token', '--json']);
    expect(tokenResult.code, tokenResult.stderr).toBe(0);
    const { token, certificateFingerprint } = JSON.parse(tokenResult.stdout) as { token: string; certificateFingerprint: string };
    const keys = await generateKeyPair();
    const publicKey = await publicKeyToPem(keys.publicKey);
    const anonymous = client({ caPem });
    const response = await anonymous.request('POST', '/v1/pair', { token, publicKey, clientName: 'console-test' });
    expect(response.status).toBe(200);
    const paired = PairResponseSchema.parse(response.body);
    expect(paired.certificateFingerprint).toBe(certificateFingerprint);

    const console1 = client({
      caPem: paired.caCertificate,
      certificatePem: paired.clientCertificate,
      keyPem: await privateKeyToPem(keys.privateKey),
    });
    expect(Array.isArray(await console1.listVolumes())).toBe(true);

    const reused = await anonymous.request('POST', '/v1/pair', { token, publicKey, clientName: 'again' });
    expect(reused.status).toBe(403);
    expect(ProblemSchema.parse(reused.body).problem).toBe('token-invalid');
    const events = await agent.api.events();
    expect(events.filter((event) => event.type === 'client.paired').map((event) => event.subject)).toEqual(['console-test']);

    // Revoking the client in the catalog shuts it out at once, certificate still valid.
    const catalog = new Catalog(path.join(agent.dataDir, 'catalog.db'));
    try {
      catalog.db.prepare("UPDATE clients SET revoked_at = ? WHERE name = 'console-test'").run(new Date().toISOString());
    } finally {
      catalog.close();
    }
    const revoked = await console1.request('GET', '/v1/volumes');
    expect(revoked.status).toBe(401);
    expect(ProblemSchema.parse(revoked.body)).toMatchObject({ problem: 'unauthenticated', message: expect.stringContaining('revoked') });
    expect((await agent.api.listVolumes()).length).toBeGreaterThanOrEqual(0);
  });
});

describe('event stream', () => {
  it('refuses the WebSocket upgrade without a client certificate', async () => {
    const socket = new WebSocket(`wss://${agent.apiAddress}/v1/events/stream`, { ca: caPem });
    const status = await new Promise<number>((resolve, reject) => {
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.on('open', () => reject(new Error('upgrade accepted without a certificate')));
      socket.on('error', () => {});
    });
    expect(status).toBe(401);
  });

  it('sends hello, then volume.created as it happens', async () => {
    const socket = await agent.api.openEventStream();
    const frames = collect(socket, (got) => got.some((frame) => frame.kind === 'event' && frame.event.type === 'volume.created'));
    await new Promise((resolve) => socket.once('open', resolve));
    const hello = await new Promise<EventStreamMessage>((resolve) =>
      socket.once('message', (data) => resolve(JSON.parse(String(data)) as EventStreamMessage)),
    );
    expect(hello).toMatchObject({ kind: 'hello', site: 'tls-site' });
    await agent.api.createVolume('streamed', 1024 * 1024);
    const got = await frames;
    const created = got.find((frame) => frame.kind === 'event' && frame.event.type === 'volume.created');
    expect(created).toMatchObject({ kind: 'event', event: { subject: 'streamed', severity: 'info' } });
    socket.close();
  });

  it('replays events after a given id before live ones', async () => {
    const socket = await agent.api.openEventStream(0);
    const frames = await collect(socket, (got) => got.some((frame) => frame.kind === 'event' && frame.event.subject === 'streamed'));
    socket.close();
    expect(frames[0].kind).toBe('hello');
    const types = frames.flatMap((frame) => (frame.kind === 'event' ? [frame.event.type] : []));
    expect(types[0]).toBe('agent.started');
    expect(types).toContain('volume.created');
  });
});

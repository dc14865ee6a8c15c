import net from 'node:net';
import tls from 'node:tls';
import pino from 'pino';
import { PEER_PROTOCOL_VERSION, ProblemError } from '@tandem/contract';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../../test/helpers/fault-proxy.ts';
import { createAuthority, issueWithNewKey } from '../../tls/authority.ts';
import { certificateFingerprint } from '../../tls/fingerprint.ts';
import { encodeFrame, FrameError, FrameKind, FrameReader } from './frames.ts';
import { PeerLinkClient, PeerLinkServer, type LinkCredentials, type PeerRecord } from './peer-link.ts';
import { RpcConnection } from './rpc-connection.ts';

const logger = pino({ level: 'silent' });

interface Site {
  agentId: string;
  server: LinkCredentials;
  client: LinkCredentials;
  record: (linkAddress: string) => PeerRecord;
}

async function makeSite(name: string): Promise<Site> {
  const { authority } = await createAuthority(name, `${name}-id`);
  const server = await issueWithNewKey(authority, { commonName: `${name} link`, usage: 'server', altNames: ['127.0.0.1'] });
  const client = await issueWithNewKey(authority, { commonName: `${name} peer`, usage: 'client' });
  return {
    agentId: `${name}-id`,
    server: { certificatePem: server.certificatePem, keyPem: server.keyPem, caPem: authority.certificatePem },
    client: { certificatePem: client.certificatePem, keyPem: client.keyPem, caPem: authority.certificatePem },
    record: (linkAddress) => ({
      agentId: `${name}-id`,
      site: name,
      caPem: authority.certificatePem,
      caFingerprint: certificateFingerprint(authority.certificatePem),
      linkAddress,
    }),
  };
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(site: Site, peers: PeerRecord[], refusals: string[] = [], kept: Buffer[] = []) {
  const server = new PeerLinkServer({
    credentials: site.server,
    peers,
    logger,
    onRefused: (reason) => refusals.push(reason),
    handler: async ({ method, params, payload, peerAgentId }) => {
      if (method === 'echo') return { result: { ...params, from: peerAgentId }, payload: payload ? Buffer.from(payload) : null };
      if (method === 'keep') {
        kept.push(payload!); // no copy: a payload may outlive its call (semi-sync applies it after the answer)
        return {};
      }
      if (method === 'slow') {
        await new Promise((resolve) => setTimeout(resolve, Number(params.ms)));
        return { result: { done: params.ms } };
      }
      throw new Error('unknown');
    },
  });
  const address = await server.listen('127.0.0.1', 0);
  cleanups.push(() => server.close());
  return { server, address: `127.0.0.1:${address.port}` };
}

describe('peer link', () => {
  it('carries pipelined requests with payloads over mutual TLS, answered out of order', async () => {
    const [a, b] = await Promise.all([makeSite('alpha'), makeSite('beta')]);
    const { address } = await serve(a, [b.record('unused:1')]);
    const client = new PeerLinkClient(a.record(address), b.client, logger);
    cleanups.push(() => client.close());
    const payload = Buffer.alloc(3 * 1024 * 1024, 7);
    const echoed = await client.callUnchecked('echo', { x: 1 }, payload, { waitForLinkMs: 5000 });
    expect(echoed.result).toEqual({ x: 1, from: 'beta-id' });
    expect(echoed.payload!.equals(payload)).toBe(true);
    const order: number[] = [];
    await Promise.all(
      [300, 10, 150].map((ms) => client.callUnchecked('slow', { ms }).then(() => order.push(ms))),
    );
    expect(order).toEqual([10, 150, 300]);
    await expect(client.callUnchecked('nope', {})).rejects.toMatchObject({ problem: 'internal-error' });
    // A call past its timeout fails with 'timeout' (within the connection's sweep), the link stays up for the next.
    const started = Date.now();
    await expect(client.callUnchecked('slow', { ms: 3000 }, null, { timeoutMs: 200 })).rejects.toMatchObject({ problem: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2500);
    await expect(client.callUnchecked('echo', { after: 'timeout' })).resolves.toMatchObject({ result: { after: 'timeout' } });
  });

  it('hands out payloads a handler may keep: later frames never overwrite them', async () => {
    const [a, b] = await Promise.all([makeSite('alpha'), makeSite('beta')]);
    const kept: Buffer[] = [];
    const { address } = await serve(a, [b.record('unused:1')], [], kept);
    const client = new PeerLinkClient(a.record(address), b.client, logger);
    cleanups.push(() => client.close());
    await client.callUnchecked('echo', {}, null, { waitForLinkMs: 5000 });
    const sizes = [4096, 100_000, 1 << 20, 512, 4096 * 3];
    await Promise.all(Array.from({ length: 60 }, (_, i) => client.callUnchecked('keep', { i }, Buffer.alloc(sizes[i % sizes.length], i + 1))));
    expect(kept).toHaveLength(60);
    const fills = new Set(kept.map((payload) => payload[0]));
    expect(fills.size).toBe(60);
    for (const payload of kept) expect(payload.every((byte) => byte === payload[0])).toBe(true);
  });

  it('refuses a client whose certificate is not from a paired site, and reports it', async () => {
    const [a, b, intruder] = await Promise.all([makeSite('alpha'), makeSite('beta'), makeSite('intruder')]);
    const refusals: string[] = [];
    const { address } = await serve(a, [b.record('unused:1')], refusals);
    const client = new PeerLinkClient(a.record(address), intruder.client, logger);
    cleanups.push(() => client.close());
    await expect(client.callUnchecked('echo', {}, null, { waitForLinkMs: 1500 })).rejects.toMatchObject({ problem: 'link-down' });
    expect(refusals.length).toBeGreaterThan(0);
  });

  it('refuses a server whose certificate is not from the pinned CA', async () => {
    const [a, b, impostor] = await Promise.all([makeSite('alpha'), makeSite('beta'), makeSite('impostor')]);
    const { address } = await serve(impostor, [b.record('unused:1')]);
    const client = new PeerLinkClient(a.record(address), b.client, logger);
    cleanups.push(() => client.close());
    await expect(client.callUnchecked('echo', {}, null, { waitForLinkMs: 1500 })).rejects.toMatchObject({ problem: 'link-down' });
    expect(client.state).not.toBe('connected');
  });

  it('reconnects after the link is cut and notices a blackhole by missing heartbeats', async () => {
    const [a, b] = await Promise.all([makeSite('alpha'), makeSite('beta')]);
    const { address } = await serve(a, [b.record('unused:1')]);
    const [host, port] = address.split(':');
    const proxy = await FaultProxy.start({ host, port: Number(port) });
    cleanups.push(() => proxy.close());
    const client = new PeerLinkClient(a.record(proxy.address), b.client, logger);
    cleanups.push(() => client.close());
    const states: string[] = [];
    client.on('state', (state: string) => states.push(state));
    await client.callUnchecked('echo', {}, null, { waitForLinkMs: 5000 });
    proxy.resetAll();
    while (!states.includes('down')) await new Promise((resolve) => setTimeout(resolve, 10));
    await expect(client.callUnchecked('echo', { after: 'reset' }, null, { waitForLinkMs: 5000 })).resolves.toBeTruthy();
    expect(states).toContain('down');

    proxy.blackhole(true);
    const pending = client.callUnchecked('echo', { lost: true }, null, { timeoutMs: 60_000 });
    await expect(pending).rejects.toMatchObject({ problem: 'link-down' });
    proxy.blackhole(false);
    await expect(client.callUnchecked('echo', { back: true }, null, { waitForLinkMs: 10_000 })).resolves.toBeTruthy();
  }, 30_000);

  it('refuses a listener from before the handshake and one of another major version: the link says why, calls fail with it at once', async () => {
    const [a, b] = await Promise.all([makeSite('alpha'), makeSite('beta')]);
    // A listener of an agent from before the peer protocol handshake: it answers peer.hello `not-supported`.
    const old = tls.createServer({ cert: a.server.certificatePem, key: a.server.keyPem, ca: [b.client.caPem], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
    old.on('secureConnection', (socket) => {
      const connection = new RpcConnection(socket, {
        peerAgentId: b.agentId,
        deadAfterMs: 5000,
        handler: ({ method }) => {
          throw new ProblemError('not-supported', `unknown peer request ${method}`);
        },
        onClose: () => {},
      });
      cleanups.push(() => connection.close());
    });
    await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => old.close(() => resolve())));
    const oldAddress = `127.0.0.1:${(old.address() as { port: number }).port}`;
    const toOld = new PeerLinkClient(a.record(oldAddress), b.client, logger);
    cleanups.push(() => toOld.close());
    const refused: ProblemError[] = [];
    toOld.on('refused', (problem: ProblemError) => refused.push(problem));
    const started = Date.now();
    await expect(toOld.callUnchecked('echo', {}, null, { waitForLinkMs: 5000 })).rejects.toMatchObject({ problem: 'peer-version' });
    expect(Date.now() - started).toBeLessThan(4000);
    expect(toOld.problem?.message).toContain('does not know the peer protocol handshake');
    expect(toOld.state).not.toBe('connected');
    expect(refused).toHaveLength(1);

    // A listener of another major version: it refuses the hello, naming both versions; the dialler says it from its side.
    const refusals: string[] = [];
    const newer = new PeerLinkServer({ credentials: a.server, peers: [b.record('unused:1')], logger, onRefused: (reason) => refusals.push(reason), handler: () => ({}), protocolVersion: '9.1' });
    const bound = await newer.listen('127.0.0.1', 0);
    cleanups.push(() => newer.close());
    const toNewer = new PeerLinkClient(a.record(`127.0.0.1:${bound.port}`), b.client, logger);
    cleanups.push(() => toNewer.close());
    await expect(toNewer.callUnchecked('echo', {}, null, { waitForLinkMs: 5000 })).rejects.toMatchObject({
      problem: 'peer-version',
      message: `alpha refused the link: it speaks peer protocol 9.1, this agent speaks ${PEER_PROTOCOL_VERSION}; major versions differ, upgrade the older agent`,
      detail: { localVersion: PEER_PROTOCOL_VERSION, remoteVersion: '9.1' },
    });
    expect(toNewer.problem?.problem).toBe('peer-version');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toContain('9.1');
    expect(refusals[0]).toContain(PEER_PROTOCOL_VERSION);
  }, 30_000);

  it('closes at once with a connection still in its TLS handshake, and with a connected peer that stays up', async () => {
    const [a, b] = await Promise.all([makeSite('alpha'), makeSite('beta')]);
    const { server, address } = await serve(a, [b.record('unused:1')]);
    const client = new PeerLinkClient(a.record(address), b.client, logger);
    cleanups.push(() => client.close());
    await client.callUnchecked('echo', {}, null, { waitForLinkMs: 5000 });
    // A peer that opened TCP but has not begun its TLS handshake: Node's server waits for it up to the handshake timeout (120 s).
    const [host, port] = address.split(':');
    const raw = net.connect(Number(port), host);
    cleanups.push(() => raw.destroy());
    await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
    const rawClosed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(5000);
    await rawClosed;
    await expect(client.callUnchecked('echo', {}, null, { waitForLinkMs: 200 })).rejects.toMatchObject({ problem: 'link-down' });
  }, 20_000);
});

describe('peer link frames', () => {
  it('rejects a frame whose checksum does not match its bytes', () => {
    const frames: unknown[] = [];
    const reader = new FrameReader((frame) => frames.push(frame));
    const [head, payload] = encodeFrame(FrameKind.Request, 7, { m: 'x', p: {} }, Buffer.alloc(100, 1));
    const corrupt = Buffer.from(payload);
    corrupt[50] ^= 0xff;
    expect(() => reader.push(Buffer.concat([head, corrupt]))).toThrow(FrameError);
    // The metadata has its own checksum: a flipped bit there is refused as well.
    const badMeta = Buffer.from(head);
    badMeta[badMeta.length - 3] ^= 0x01;
    expect(() => new FrameReader((frame) => frames.push(frame)).push(Buffer.concat([badMeta, payload]))).toThrow(/checksum/);
    expect(frames).toHaveLength(0);
    const clean = new FrameReader((frame) => frames.push(frame));
    const whole = Buffer.concat(encodeFrame(FrameKind.Request, 8, { m: 'x', p: {} }, Buffer.alloc(100, 1)));
    for (let i = 0; i < whole.length; i += 7) clean.push(whole.subarray(i, i + 7));
    expect(frames).toHaveLength(1);
  });

  it('sends a payload given as chunks as the same bytes as one buffer (an async group ships its slabs uncopied)', () => {
    const chunks = [Buffer.alloc(5000, 1), Buffer.alloc(0), Buffer.alloc(3, 2), Buffer.from('tail')];
    const whole = Buffer.concat(chunks);
    const asChunks = encodeFrame(FrameKind.Request, 9, { m: 'x', p: {} }, chunks);
    expect(asChunks.slice(1)).toHaveLength(3); // empty chunks are left out, the rest are the caller's buffers
    expect(asChunks[1]).toBe(chunks[0]);
    expect(Buffer.concat(asChunks)).toEqual(Buffer.concat(encodeFrame(FrameKind.Request, 9, { m: 'x', p: {} }, whole)));
    const frames: Array<{ payload: Buffer | null }> = [];
    new FrameReader((frame) => frames.push(frame)).push(Buffer.concat(asChunks));
    expect(frames[0].payload).toEqual(whole);
    // No chunks, or only empty ones: a frame without a payload.
    expect(encodeFrame(FrameKind.Request, 10, { m: 'x', p: {} }, [Buffer.alloc(0)])).toHaveLength(1);
  });

  it('rejects absurd frame lengths before buffering them', () => {
    const reader = new FrameReader(() => {});
    const bogus = Buffer.alloc(24);
    bogus.writeUInt32BE(0xfffffff0, 0);
    expect(() => reader.push(bogus)).toThrow(/out of bounds/);
  });
});

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from './helpers/fault-proxy.ts';

/**
 * The test fault proxy's stalls (used by the fault campaign): a dropping
 * stall swallows, a holding one delivers late, and bytes of a sender that
 * gave up during a holding stall still reach the receiver, after what a new
 * connection sent.
 */

interface Received {
  /** Bytes per accepted connection, in acceptance order. */
  connections: Array<{ data: string; ended: boolean }>;
  /** Every chunk received as [connection index, text], in arrival order. */
  order: Array<[number, string]>;
}

let server: net.Server | null = null;
let proxy: FaultProxy | null = null;
const clients: net.Socket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await proxy?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
  proxy = null;
});

async function setUp(): Promise<{ received: Received; proxy: FaultProxy }> {
  const received: Received = { connections: [], order: [] };
  server = net.createServer((socket) => {
    const index = received.connections.push({ data: '', ended: false }) - 1;
    socket.on('data', (chunk: Buffer) => {
      received.connections[index].data += chunk.toString();
      received.order.push([index, chunk.toString()]);
    });
    socket.on('end', () => (received.connections[index].ended = true));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  proxy = await FaultProxy.start({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  return { received, proxy };
}

async function dial(target: FaultProxy): Promise<net.Socket> {
  const socket = net.connect(target.port, '127.0.0.1');
  socket.on('error', () => {});
  clients.push(socket);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return socket;
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('FaultProxy stalls', () => {
  it('a dropping stall swallows what arrives and keeps the connection open', async () => {
    const { received, proxy } = await setUp();
    const client = await dial(proxy);
    client.write('before|');
    await until('the first bytes', () => received.connections[0]?.data === 'before|');
    proxy.stall('drop');
    client.write('lost|');
    await until('the bytes to be dropped', () => proxy.stats.bytesDropped === 5);
    await proxy.endStall();
    client.write('after');
    await until('the last bytes', () => received.connections[0].data === 'before|after');
    expect(client.destroyed).toBe(false);
    expect(proxy.stats.stalls.drop).toBe(1);
  });

  it('a holding stall delivers what it held, in order, when it ends', async () => {
    const { received, proxy } = await setUp();
    const client = await dial(proxy);
    proxy.stall('hold');
    client.write('one|');
    client.write('two|');
    await until('the bytes to be held', () => proxy.stats.bytesHeld === 8);
    expect(received.connections[0]?.data ?? '').toBe('');
    await proxy.endStall();
    client.write('three');
    await until('everything', () => received.connections[0].data === 'one|two|three');
  });

  it('bytes of a sender that gave up during a holding stall reach the receiver after a new connection, then that connection ends', async () => {
    const { received, proxy } = await setUp();
    const old = await dial(proxy);
    await until('the old connection upstream', () => received.connections.length === 1);
    proxy.stall('hold');
    old.write('stale request');
    await until('the stale bytes to be held', () => proxy.stats.bytesHeld === 13);
    proxy.abandonSenders();
    await until('the sender to see its connection die', () => old.destroyed);
    const fresh = await dial(proxy);
    fresh.write('new request');
    await until('the new connection upstream', () => received.connections.length === 2);
    await proxy.endStall({ staleDelayMs: 100 });
    await until('the stale bytes', () => received.connections[0].data === 'stale request');
    await until('the old connection to end', () => received.connections[0].ended);
    expect(received.order.map(([index]) => index)).toEqual([1, 0]);
    expect(proxy.stats).toMatchObject({ sendersAbandoned: 1, staleConnections: 1, staleBytesDelivered: 13 });
  });

  it('resetAll still resets both sides (and counts it)', async () => {
    const { proxy } = await setUp();
    const client = await dial(proxy);
    await until('the connection', () => proxy.openConnections === 1);
    proxy.resetAll();
    await until('the client to see the reset', () => client.destroyed);
    expect(proxy.stats.resets).toBe(1);
  });
});

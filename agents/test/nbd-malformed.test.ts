import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, startNbdHarness, type NbdHarness } from './helpers/nbd-harness.ts';
import {
  CMD,
  CMD_FLAG,
  ERR,
  OPT,
  RawNbdClient,
  REP,
  TFLAG,
  delay,
  expectReply,
  goData,
  type Target,
} from './helpers/nbd-raw-client.ts';

/**
 * Malformed and hostile input, byte by byte. Every case ends by proving that
 * a fresh connection still negotiates, writes and reads back correctly.
 */

let harness: NbdHarness;
let tcp: Target;
const VOLUME_SIZE = 16 * MiB;

beforeAll(async () => {
  // Refusals must come well inside the handshake deadline, so a test cannot pass by timing out.
  harness = await startNbdHarness({ server: { handshakeTimeoutMs: 1_500, handshakeTotalMs: 2_500 } });
  tcp = { host: harness.host, port: harness.port };
  await harness.engine.createVolume('vol', VOLUME_SIZE);
  await harness.engine.createVolume('healthy', 4 * MiB);
});

afterAll(async () => {
  await harness?.close();
});

/** A new connection on TCP and one on the Unix socket both still work end to end. */
async function expectServerHealthy(): Promise<void> {
  for (const target of [tcp, { path: harness.socketPath }]) {
    const client = await RawNbdClient.connect(target);
    await client.negotiate('healthy');
    const payload = randomBytes(4096);
    client.sendRequest(CMD.WRITE, 0, 1, 8192, payload.length, payload);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    const { data } = await client.structuredRead(2, 8192, payload.length);
    expect(data.equals(payload)).toBe(true);
    client.sendRequest(CMD.DISC, 0, 3, 0, 0);
    expect(await client.closedWithin(2_000)).toBe(true);
  }
}

async function connected(name = 'vol', options?: { structured?: boolean; metaContext?: boolean }): Promise<RawNbdClient> {
  const client = await RawNbdClient.connect(tcp);
  await client.negotiate(name, options);
  return client;
}

async function expectError(client: RawNbdClient, handle: number, error: number): Promise<void> {
  const reply = await client.readReply();
  expect(reply.handle).toBe(handle);
  expect(RawNbdClient.errorOf(reply)).toBe(error);
}

describe('NBD handshake abuse', () => {
  it('hangs up on a bad option magic', async () => {
    const client = await RawNbdClient.connect(tcp);
    await client.readGreeting();
    client.sendClientFlags(1);
    client.write(Buffer.from('NOTMAGIC\0\0\0\x03\0\0\0\0', 'latin1'));
    expect(await client.closedWithin(1_000)).toBe(true);
    expect(client.pending).toBe(0);
    await expectServerHealthy();
  });

  it('refuses clients without fixed newstyle (oldstyle/plain newstyle) and clients with unknown flags', async () => {
    for (const flags of [0, 0x1 | 0x80, 0xffffffff]) {
      const client = await RawNbdClient.connect(tcp);
      expect(await client.readGreeting()).toBe(3); // FIXED_NEWSTYLE | NO_ZEROES
      client.sendClientFlags(flags);
      // A server that accepted the flags would answer this LIST.
      client.sendOption(OPT.LIST);
      expect(await client.closedWithin(1_000)).toBe(true);
      expect(client.pending).toBe(0);
    }
    await expectServerHealthy();
  });

  it('survives clients that vanish mid-greeting and mid-option', async () => {
    const early = await RawNbdClient.connect(tcp);
    early.write(Buffer.from([0, 0]));
    early.destroy();
    const midOption = await RawNbdClient.connect(tcp);
    await midOption.readGreeting();
    midOption.sendClientFlags(1);
    midOption.sendOption(OPT.GO, goData('vol').subarray(0, 3), 12);
    midOption.destroy();
    await expectServerHealthy();
  });

  it('answers a huge option length with ERR_TOO_BIG and hangs up without reading it', async () => {
    const client = await RawNbdClient.connect(tcp);
    await client.readGreeting();
    client.sendClientFlags(1);
    client.sendOption(OPT.GO, Buffer.alloc(0), 0xfffffff0);
    expectReply(await client.readOptionReply(), REP.ERR_TOO_BIG);
    expect(await client.closedWithin(1_000)).toBe(true);
    await expectServerHealthy();
  });

  it('lets option progress extend the handshake deadline, but only up to the total limit', async () => {
    const client = await RawNbdClient.connect(tcp);
    const started = Date.now();
    await client.readGreeting();
    client.sendClientFlags(1);
    let lists = 0;
    while (Date.now() - started < 8_000) {
      client.sendOption(OPT.LIST);
      try {
        for (;;) if ((await client.readOptionReply()).type === REP.ACK) break;
      } catch {
        break;
      }
      lists++;
      if (await client.closedWithin(500)) break;
    }
    const elapsed = Date.now() - started;
    expect(await client.closedWithin(2_000)).toBe(true);
    // Past the 1.5 s idle limit thanks to progress, cut off by the 2.5 s total (+ one idle period).
    expect(elapsed).toBeGreaterThan(2_000);
    expect(elapsed).toBeLessThan(5_000);
    expect(lists).toBeGreaterThan(3);
    await expectServerHealthy();
  });

  it('hangs up on a handshake that goes on for more than 1 MiB of options', async () => {
    const client = await RawNbdClient.connect(tcp);
    await client.readGreeting();
    client.sendClientFlags(1);
    let answered = 0;
    for (let index = 0; index < 40 && !(await client.closedWithin(0)); index++) {
      client.sendOption(0x4242, Buffer.alloc(60 * 1024));
      try {
        expectReply(await client.readOptionReply(), REP.ERR_UNSUP);
        answered++;
      } catch {
        break;
      }
    }
    expect(await client.closedWithin(1_000)).toBe(true);
    expect(answered).toBeGreaterThan(10);
    expect(answered).toBeLessThan(20);
    await expectServerHealthy();
  });

  it('answers an unknown option with ERR_UNSUP and lets negotiation continue', async () => {
    const client = await RawNbdClient.connect(tcp);
    await client.readGreeting();
    client.sendClientFlags(1);
    client.sendOption(0x4242, Buffer.from('whatever'));
    const reply = expectReply(await client.readOptionReply(), REP.ERR_UNSUP);
    expect(reply.option).toBe(0x4242);
    client.sendOption(OPT.STARTTLS);
    expectReply(await client.readOptionReply(), REP.ERR_UNSUP);
    client.sendOption(OPT.GO, goData('vol'));
    expectReply(await client.readOptionReply(), REP.INFO);
    client.destroy();
    await expectServerHealthy();
  });

  it('answers malformed GO data with ERR_INVALID and an unknown export with ERR_UNKNOWN', async () => {
    const client = await RawNbdClient.connect(tcp);
    await client.readGreeting();
    client.sendClientFlags(1);
    const bad = goData('vol', [3]);
    bad.writeUInt32BE(1000, 0); // name length past the data
    client.sendOption(OPT.GO, bad);
    expectReply(await client.readOptionReply(), REP.ERR_INVALID);
    client.sendOption(OPT.INFO, goData('vol', [3]).subarray(0, 8));
    expectReply(await client.readOptionReply(), REP.ERR_INVALID);
    client.sendOption(OPT.GO, goData('no-such-volume'));
    expectReply(await client.readOptionReply(), REP.ERR_UNKNOWN);
    client.sendOption(OPT.LIST, Buffer.from('x'));
    expectReply(await client.readOptionReply(), REP.ERR_INVALID);
    client.sendOption(OPT.ABORT);
    expectReply(await client.readOptionReply(), REP.ACK);
    expect(await client.closedWithin(1_000)).toBe(true);
    await expectServerHealthy();
  });

  it('hangs up on EXPORT_NAME of an unknown export (it cannot carry an error)', async () => {
    const client = await RawNbdClient.connect(tcp);
    await client.readGreeting();
    client.sendClientFlags(1);
    client.sendOption(OPT.EXPORT_NAME, Buffer.from('no-such-volume'));
    expect(await client.closedWithin(1_000)).toBe(true);
    expect(client.pending).toBe(0);
    await expectServerHealthy();
  });

  it('drops a client that does not finish the handshake in time', async () => {
    const idle = await RawNbdClient.connect(tcp);
    await idle.readGreeting();
    idle.sendClientFlags(1);
    // Options trickle in but GO never comes: the deadline covers the whole handshake.
    idle.sendOption(OPT.LIST);
    expect(await idle.closedWithin(1_000)).toBe(false);
    expect(await idle.closedWithin(2_000)).toBe(true);
    await expectServerHealthy();
  });
});

describe('NBD transmission abuse', () => {
  it('hangs up on a bad request magic, leaving other connections alone', async () => {
    const bystander = await connected();
    const client = await connected();
    const garbage = Buffer.alloc(28, 0x41);
    client.write(garbage);
    expect(await client.closedWithin(3_000)).toBe(true);
    bystander.sendRequest(CMD.FLUSH, 0, 7, 0, 0);
    await expectError(bystander, 7, 0);
    bystander.destroy();
    await expectServerHealthy();
  });

  it('answers an unknown command with EINVAL and keeps the connection', async () => {
    const client = await connected();
    client.sendRequest(42, 0, 1, 0, 4096);
    await expectError(client, 1, ERR.EINVAL);
    client.sendRequest(CMD.FLUSH, 0, 2, 0, 0);
    await expectError(client, 2, 0);
    client.destroy();
    await expectServerHealthy();
  });

  it('refuses requests over 32 MiB with EINVAL, skipping an oversized write payload', async () => {
    const client = await connected();
    const oversized = 32 * MiB + 4096;
    client.sendRequest(CMD.READ, 0, 1, 0, oversized);
    await expectError(client, 1, ERR.EINVAL);
    // The payload still follows the header; it must be skipped, not parsed as requests.
    client.sendRequest(CMD.WRITE, 0, 2, 0, oversized, Buffer.alloc(oversized, 0x25));
    await expectError(client, 2, ERR.EINVAL);
    client.sendRequest(CMD.WRITE_ZEROES, 0, 3, 0, 2 * 1024 * MiB);
    await expectError(client, 3, ERR.ENOSPC);
    const { data } = await client.structuredRead(4, 0, 4096);
    expect(data.equals(Buffer.alloc(4096))).toBe(true);
    client.destroy();
    await expectServerHealthy();
  });

  it('refuses requests past the end: EINVAL for reads, trims and status, ENOSPC for writes', async () => {
    const client = await connected();
    const end = VOLUME_SIZE;
    client.sendRequest(CMD.READ, 0, 1, end - 4096, 8192);
    await expectError(client, 1, ERR.EINVAL);
    client.sendRequest(CMD.WRITE, 0, 2, end - 512, 1024, Buffer.alloc(1024, 0x61));
    await expectError(client, 2, ERR.ENOSPC);
    client.sendRequest(CMD.TRIM, 0, 3, end, 4096);
    await expectError(client, 3, ERR.EINVAL);
    client.sendRequest(CMD.WRITE_ZEROES, 0, 4, end + 4096, 4096);
    await expectError(client, 4, ERR.ENOSPC);
    client.sendRequest(CMD.BLOCK_STATUS, 0, 5, end - 4096, 8192);
    await expectError(client, 5, ERR.EINVAL);
    client.sendRequest(CMD.READ, 0, 6, 1n << 63n, 4096);
    await expectError(client, 6, ERR.EINVAL);
    // The refused write's payload was skipped: the stream is still in step.
    const { data } = await client.structuredRead(7, end - 4096, 4096);
    expect(data.equals(Buffer.alloc(4096))).toBe(true);
    client.destroy();
    await expectServerHealthy();
  });

  it('refuses command flags that do not belong to the command', async () => {
    const client = await connected();
    client.sendRequest(CMD.WRITE, CMD_FLAG.DF, 1, 0, 512, Buffer.alloc(512, 1));
    await expectError(client, 1, ERR.EINVAL);
    client.sendRequest(CMD.READ, CMD_FLAG.FAST_ZERO, 2, 0, 512);
    await expectError(client, 2, ERR.EINVAL);
    client.sendRequest(CMD.TRIM, CMD_FLAG.NO_HOLE, 3, 0, 512);
    await expectError(client, 3, ERR.EINVAL);
    client.sendRequest(CMD.FLUSH, 0x8000, 4, 0, 0);
    await expectError(client, 4, ERR.EINVAL);
    client.destroy();

    const simple = await connected('vol', { structured: false });
    simple.sendRequest(CMD.READ, CMD_FLAG.DF, 5, 0, 512);
    await expectError(simple, 5, ERR.EINVAL);
    simple.destroy();
    await expectServerHealthy();
  });

  it('answers BLOCK_STATUS with EINVAL when no metadata context was negotiated', async () => {
    const client = await connected('vol', { structured: true, metaContext: false });
    client.sendRequest(CMD.BLOCK_STATUS, 0, 1, 0, 4096);
    await expectError(client, 1, ERR.EINVAL);
    client.destroy();
    await expectServerHealthy();
  });

  it('refuses writes, trims and zeroes on a read-only export with EPERM', async () => {
    await harness.engine.createSnapshot('vol', 'vol-frozen', { readOnly: true });
    const client = await RawNbdClient.connect(tcp);
    const { flags } = await client.negotiate('vol-frozen');
    expect(flags & TFLAG.READ_ONLY).toBe(TFLAG.READ_ONLY);
    expect(flags & TFLAG.SEND_TRIM).toBe(0);
    client.sendRequest(CMD.WRITE, 0, 1, 0, 4096, Buffer.alloc(4096, 9));
    await expectError(client, 1, ERR.EPERM);
    client.sendRequest(CMD.TRIM, 0, 2, 0, 4096);
    await expectError(client, 2, ERR.EPERM);
    client.sendRequest(CMD.WRITE_ZEROES, 0, 3, 0, 4096);
    await expectError(client, 3, ERR.EPERM);
    const { data } = await client.structuredRead(4, 0, 4096);
    expect(data.equals(Buffer.alloc(4096))).toBe(true);
    client.destroy();
    await expectServerHealthy();
  });

  it('survives random garbage in both phases (seeded fuzz) and releases every export', async () => {
    let seed = 0x5eed1234;
    const random = (limit: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return Math.floor((seed / 0x1_0000_0000) * limit);
    };
    const garbage = (length: number): Buffer => Buffer.from(Array.from({ length }, () => random(256)));
    const requestLike = (): Buffer => {
      const header = garbage(28);
      header.writeUInt32BE(0x25609513, 0);
      header.writeUInt16BE(random(4) === 0 ? random(0x10000) : random(32), 4);
      header.writeUInt16BE(random(10), 6);
      if (random(2) === 0) header.writeUInt32BE(0, 16); // offsets near the start as often as anywhere
      if (random(2) === 0) header.writeUInt32BE(random(1 << 20), 24);
      return Buffer.concat([header, garbage(random(64))]);
    };
    for (let round = 0; round < 12; round++) {
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const client = await RawNbdClient.connect(tcp);
          if (random(3) === 0) {
            await client.readGreeting();
            client.write(garbage(random(200)));
          } else {
            await client.negotiate('vol', { structured: random(2) === 0 });
            const parts = Array.from({ length: 1 + random(6) }, () => (random(3) === 0 ? garbage(random(100)) : requestLike()));
            client.write(Buffer.concat(parts));
          }
          await delay(random(30));
          client.destroy();
        }),
      );
    }
    const device = harness.engine.device('vol') as unknown as { openCount: number };
    for (let tries = 0; (harness.server.connectionCount > 0 || device.openCount > 0) && tries < 250; tries++) await delay(20);
    expect(harness.server.connectionCount).toBe(0);
    expect(device.openCount).toBe(0);
    await expectServerHealthy();
  });

  it('survives a client that vanishes with requests in flight, and releases its export', async () => {
    const client = await connected();
    const device = harness.engine.device('vol') as unknown as { openCount: number };
    expect(device.openCount).toBeGreaterThanOrEqual(1);
    for (let handle = 0; handle < 64; handle++) {
      client.sendRequest(CMD.WRITE, 0, handle, handle * 65536, 65536, Buffer.alloc(65536, handle));
    }
    // Half a request, then gone.
    client.write(Buffer.alloc(10, 0x25));
    client.destroy();
    await delay(50);
    const deadline = Date.now() + 5_000;
    while (device.openCount !== 0) {
      if (Date.now() > deadline) throw new Error('export still retained after the client vanished');
      await delay(20);
    }
    await expectServerHealthy();
  });
});

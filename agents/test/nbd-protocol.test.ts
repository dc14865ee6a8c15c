import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdServer } from '../src/nbd/server.ts';
import { offloadedSendCount, offloadedSendsAvailable } from '../src/nbd/socket-send.ts';
import { MiB, runOk, startNbdHarness, type NbdHarness } from './helpers/nbd-harness.ts';
import {
  CHUNK,
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
  metaContextData,
  type Target,
} from './helpers/nbd-raw-client.ts';

/** Protocol behaviour seen on the wire, against the real storage engine. */

let harness: NbdHarness;
let tcp: Target;

beforeAll(async () => {
  harness = await startNbdHarness();
  tcp = { host: harness.host, port: harness.port };
});

afterAll(async () => {
  await harness?.close();
});

async function optionPhase(flags = 1): Promise<RawNbdClient> {
  const client = await RawNbdClient.connect(tcp);
  await client.readGreeting();
  client.sendClientFlags(flags);
  return client;
}

async function repliesUntilAck(client: RawNbdClient): Promise<Array<{ type: number; data: Buffer }>> {
  const replies = [];
  for (;;) {
    const reply = await client.readOptionReply();
    if (reply.type === REP.ACK) return replies;
    if (reply.type & 0x80000000) throw new Error(`option failed: 0x${reply.type.toString(16)} ${reply.data.toString()}`);
    replies.push(reply);
  }
}

describe('NBD handshake', () => {
  it('LIST names every export; INFO describes one with size, flags, name, description and block sizes', async () => {
    await harness.engine.createVolume('info-vol', 3 * MiB);
    const client = await optionPhase();
    client.sendOption(OPT.LIST);
    const names = (await repliesUntilAck(client)).map((reply) => {
      expect(reply.type).toBe(REP.SERVER);
      return reply.data.toString('utf8', 4, 4 + reply.data.readUInt32BE(0));
    });
    expect(names).toContain('info-vol');

    client.sendOption(OPT.INFO, goData('info-vol', [1, 2, 3]));
    const infos = new Map((await repliesUntilAck(client)).map((reply) => [reply.data.readUInt16BE(0), reply.data.subarray(2)]));
    const exportInfo = infos.get(0)!;
    expect(Number(exportInfo.readBigUInt64BE(0))).toBe(3 * MiB);
    const flags = exportInfo.readUInt16BE(8);
    const expected = TFLAG.HAS_FLAGS | TFLAG.SEND_FLUSH | TFLAG.SEND_FUA | TFLAG.SEND_TRIM | TFLAG.SEND_WRITE_ZEROES | TFLAG.CAN_MULTI_CONN | TFLAG.SEND_FAST_ZERO;
    expect(flags).toBe(expected); // no DF: structured replies were not negotiated
    expect(infos.get(1)!.toString()).toBe('info-vol');
    expect(infos.get(2)!.toString()).toMatch(/volume/);
    const blockSize = infos.get(3)!;
    expect([blockSize.readUInt32BE(0), blockSize.readUInt32BE(4), blockSize.readUInt32BE(8)]).toEqual([1, 64 * 1024, 32 * MiB]);

    // INFO does not end negotiation; GO after it does.
    client.sendOption(OPT.STRUCTURED_REPLY);
    expectReply(await client.readOptionReply(), REP.ACK);
    client.sendOption(OPT.GO, goData('info-vol'));
    const afterGo = await repliesUntilAck(client);
    expect(afterGo[0].data.readUInt16BE(10) & TFLAG.SEND_DF).toBe(TFLAG.SEND_DF);
    client.sendRequest(CMD.FLUSH, 0, 1, 0, 0);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    client.destroy();
  });

  it('EXPORT_NAME answers size and flags, with the 124 zero bytes only when NO_ZEROES was not negotiated', async () => {
    await harness.engine.createVolume('oldway', 2 * MiB);
    for (const noZeroes of [true, false]) {
      const client = await optionPhase(noZeroes ? 3 : 1);
      client.sendOption(OPT.EXPORT_NAME, Buffer.from('oldway'));
      const reply = await client.read(noZeroes ? 10 : 134);
      expect(Number(reply.readBigUInt64BE(0))).toBe(2 * MiB);
      if (!noZeroes) expect(reply.subarray(10).equals(Buffer.alloc(124))).toBe(true);
      client.sendRequest(CMD.FLUSH, 0, 9, 0, 0);
      const flush = await client.readReply();
      expect(flush).toEqual({ kind: 'simple', error: 0, handle: 9 });
      client.destroy();
    }
  });

  it('negotiates base:allocation only after structured replies, and only for known exports', async () => {
    await harness.engine.createVolume('meta-vol', MiB);
    const client = await optionPhase();
    client.sendOption(OPT.SET_META_CONTEXT, metaContextData('meta-vol', ['base:allocation']));
    expectReply(await client.readOptionReply(), REP.ERR_INVALID);
    client.sendOption(OPT.STRUCTURED_REPLY);
    expectReply(await client.readOptionReply(), REP.ACK);

    const contextName = (reply: { data: Buffer }) => reply.data.toString('utf8', 4);
    client.sendOption(OPT.LIST_META_CONTEXT, metaContextData('meta-vol', []));
    expect((await repliesUntilAck(client)).map(contextName)).toEqual(['base:allocation']);
    client.sendOption(OPT.LIST_META_CONTEXT, metaContextData('meta-vol', ['base:']));
    expect((await repliesUntilAck(client)).map(contextName)).toEqual(['base:allocation']);
    client.sendOption(OPT.LIST_META_CONTEXT, metaContextData('meta-vol', ['qemu:dirty-bitmap:x']));
    expect(await repliesUntilAck(client)).toEqual([]);
    client.sendOption(OPT.SET_META_CONTEXT, metaContextData('meta-vol', ['base:']));
    expect(await repliesUntilAck(client)).toEqual([]);
    client.sendOption(OPT.SET_META_CONTEXT, metaContextData('nope', ['base:allocation']));
    expectReply(await client.readOptionReply(), REP.ERR_UNKNOWN);
    const truncated = metaContextData('meta-vol', ['base:allocation']);
    client.sendOption(OPT.SET_META_CONTEXT, truncated.subarray(0, truncated.length - 3));
    expectReply(await client.readOptionReply(), REP.ERR_INVALID);

    client.sendOption(OPT.SET_META_CONTEXT, metaContextData('meta-vol', ['base:allocation']));
    const selected = await repliesUntilAck(client);
    expect(selected.map(contextName)).toEqual(['base:allocation']);
    expect(selected[0].data.readUInt32BE(0)).not.toBe(0);
    client.sendOption(OPT.GO, goData('meta-vol'));
    await repliesUntilAck(client);
    client.sendRequest(CMD.BLOCK_STATUS, 0, 1, 0, MiB);
    const [status] = await client.readStructured();
    expect(status.type).toBe(CHUNK.BLOCK_STATUS);
    expect(status.payload.readUInt32BE(0)).toBe(selected[0].data.readUInt32BE(0));
    client.destroy();
  });

  it('holds the export open while connected and releases it when the client leaves', async () => {
    await harness.engine.createVolume('held', MiB);
    const device = harness.engine.device('held') as unknown as { openCount: number };
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('held');
    expect(device.openCount).toBe(1);
    await expect(harness.engine.deleteVolume('held')).rejects.toMatchObject({ problem: 'volume-busy' });
    client.sendRequest(CMD.DISC, 0, 1, 0, 0);
    await client.closed;
    for (let tries = 0; device.openCount !== 0 && tries < 100; tries++) await delay(10);
    expect(device.openCount).toBe(0);
  });
});

describe('NBD transmission', () => {
  it('answers reads with OFFSET_HOLE for holes and OFFSET_DATA for data, or one data chunk with DF', async () => {
    await harness.engine.createVolume('sparse-read', 4 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('sparse-read');

    const empty = await client.structuredRead(1, 0, MiB);
    expect(empty.chunkTypes).toEqual([CHUNK.OFFSET_HOLE]);
    expect(empty.data.equals(Buffer.alloc(MiB))).toBe(true);

    const payload = randomBytes(64 * 1024);
    client.sendRequest(CMD.WRITE, 0, 2, 128 * 1024, payload.length, payload);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);

    const mixed = await client.structuredRead(3, 0, 256 * 1024);
    expect(mixed.chunkTypes).toEqual([CHUNK.OFFSET_HOLE, CHUNK.OFFSET_DATA, CHUNK.OFFSET_HOLE]);
    expect(mixed.data.subarray(128 * 1024, 192 * 1024).equals(payload)).toBe(true);
    expect(mixed.data.subarray(0, 128 * 1024).equals(Buffer.alloc(128 * 1024))).toBe(true);

    const whole = await client.structuredRead(4, 0, 256 * 1024, CMD_FLAG.DF);
    expect(whole.chunkTypes).toEqual([CHUNK.OFFSET_DATA]);
    expect(whole.data.equals(mixed.data)).toBe(true);

    // Unaligned read straddling data and hole.
    const edge = await client.structuredRead(5, 190 * 1024 + 7, 5000);
    expect(edge.data.equals(Buffer.concat([payload.subarray(190 * 1024 + 7 - 128 * 1024), Buffer.alloc(5000 - (192 * 1024 - 190 * 1024 - 7))]))).toBe(true);

    client.sendRequest(CMD.READ, 0, 6, 0, 0);
    const [none] = await client.readStructured();
    expect(none.type).toBe(CHUNK.NONE);
    client.destroy();
  });

  it('answers reads with simple replies carrying the data when structured replies are off', async () => {
    await harness.engine.createVolume('simple-read', MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('simple-read', { structured: false });
    const payload = randomBytes(10_000);
    client.sendRequest(CMD.WRITE, CMD_FLAG.FUA, 1, 1234, payload.length, payload);
    expect(await client.readReply()).toEqual({ kind: 'simple', error: 0, handle: 1 });
    client.sendRequest(CMD.READ, 0, 2, 1234, payload.length);
    expect(await client.readReply()).toEqual({ kind: 'simple', error: 0, handle: 2 });
    expect((await client.read(payload.length)).equals(payload)).toBe(true);
    client.destroy();
  });

  it('reports base:allocation extents: HOLE|ZERO for unallocated, 0 for data; one extent with REQ_ONE', async () => {
    await harness.engine.createVolume('status-vol', 2 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('status-vol');
    client.sendRequest(CMD.WRITE, 0, 1, 256 * 1024, 128 * 1024, Buffer.alloc(128 * 1024, 7));
    await client.readReply();

    const extents = async (handle: number, offset: number, length: number, flags = 0) => {
      client.sendRequest(CMD.BLOCK_STATUS, flags, handle, offset, length);
      const [chunk] = await client.readStructured();
      expect(chunk.type).toBe(CHUNK.BLOCK_STATUS);
      const out: Array<[number, number]> = [];
      for (let at = 4; at < chunk.payload.length; at += 8) out.push([chunk.payload.readUInt32BE(at), chunk.payload.readUInt32BE(at + 4)]);
      return out;
    };
    expect(await extents(2, 0, 2 * MiB)).toEqual([
      [256 * 1024, 3],
      [128 * 1024, 0],
      [2 * MiB - 384 * 1024, 3],
    ]);
    expect(await extents(3, 0, 2 * MiB, CMD_FLAG.REQ_ONE)).toEqual([[256 * 1024, 3]]);
    expect(await extents(4, 300 * 1024, 10 * 1024)).toEqual([[10 * 1024, 0]]);

    client.sendRequest(CMD.TRIM, 0, 5, 256 * 1024, 128 * 1024);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    expect(await extents(6, 0, 2 * MiB)).toEqual([[2 * MiB, 3]]);
    client.destroy();
  });

  it('replies out of order: a hole read overtakes a 32 MiB write sent before it', async () => {
    await harness.engine.createVolume('ooo', 64 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('ooo');
    const big = Buffer.alloc(32 * MiB, 0x3c);
    client.sendRequest(CMD.WRITE, 0, 1, 0, big.length, big);
    client.sendRequest(CMD.READ, 0, 2, 48 * MiB, 4096);
    const first = await client.readReply();
    const second = await client.readReply();
    expect([first.handle, second.handle]).toEqual([2, 1]);
    expect(RawNbdClient.errorOf(second)).toBe(0);
    client.destroy();
  });

  it('serves 128 pipelined writes sent in one burst, each answered exactly once', async () => {
    await harness.engine.createVolume('pipelined', 16 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('pipelined');
    const blocks = Array.from({ length: 128 }, () => randomBytes(4096 + 512));
    const burst: Buffer[] = [];
    const capture = client.write.bind(client);
    client.write = (bytes: Buffer) => void burst.push(bytes);
    blocks.forEach((block, index) => client.sendRequest(CMD.WRITE, index % 3 === 0 ? CMD_FLAG.FUA : 0, 1000 + index, index * 100_000, block.length, block));
    client.write = capture;
    client.write(Buffer.concat(burst));
    const seen = new Set<number>();
    for (let count = 0; count < blocks.length; count++) {
      const reply = await client.readReply();
      expect(RawNbdClient.errorOf(reply)).toBe(0);
      expect(seen.has(reply.handle)).toBe(false);
      seen.add(reply.handle);
    }
    expect(seen.size).toBe(128);
    for (let index = 0; index < blocks.length; index += 17) {
      const { data } = await client.structuredRead(5000 + index, index * 100_000, blocks[index].length);
      expect(data.equals(blocks[index])).toBe(true);
    }
    client.destroy();
  });

  it('answers pipelined overwrites of allocated data (done at once) and still redirects the tracks a snapshot shares', async () => {
    await harness.engine.createVolume('overwrites', 4 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('overwrites');
    const model = randomBytes(MiB);
    client.sendRequest(CMD.WRITE, 0, 1, 0, model.length, model);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    // 64 aligned 4 KiB overwrites (the in-place path that answers before the next request is parsed)
    // and 8 unaligned ones (the asynchronous path), all in one burst.
    const writes = Array.from({ length: 72 }, (_, index) => ({
      offset: index < 64 ? index * 16_384 : index * 16_384 - 64 * 16_384 + 5000,
      data: randomBytes(index < 64 ? 4096 : 3000),
    }));
    const burst: Buffer[] = [];
    const capture = client.write.bind(client);
    client.write = (bytes: Buffer) => void burst.push(bytes);
    writes.forEach((w, index) => client.sendRequest(CMD.WRITE, 0, 100 + index, w.offset, w.data.length, w.data));
    client.write = capture;
    client.write(Buffer.concat(burst));
    const seen = new Set<number>();
    for (let count = 0; count < writes.length; count++) {
      const reply = await client.readReply();
      expect(RawNbdClient.errorOf(reply)).toBe(0);
      expect(seen.has(reply.handle)).toBe(false);
      seen.add(reply.handle);
    }
    for (const w of writes) w.data.copy(model, w.offset);
    expect((await client.structuredRead(300, 0, MiB)).data.equals(model)).toBe(true);

    // The snapshot shares every track: the next overwrites must go to new extents, leaving its data alone.
    await harness.engine.createSnapshot('overwrites', 'overwrites-snap');
    const snapshotModel = Buffer.from(model);
    for (let index = 0; index < 4; index++) {
      const data = randomBytes(4096);
      client.sendRequest(CMD.WRITE, 0, 400 + index, index * 65_536, data.length, data);
      expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
      data.copy(model, index * 65_536);
    }
    expect((await client.structuredRead(500, 0, MiB)).data.equals(model)).toBe(true);
    const snapshot = await RawNbdClient.connect(tcp);
    await snapshot.negotiate('overwrites-snap');
    expect((await snapshot.structuredRead(1, 0, MiB)).data.equals(snapshotModel)).toBe(true);
    snapshot.destroy();
    client.destroy();
  });

  it('serves 600 pipelined writes of mixed sizes past the in-flight limits (reading pauses and resumes mid-stream); every byte lands', async () => {
    // Small payloads are parsed out of the connection's read buffer (and copied, since that buffer is read into
    // again); large ones are read straight into their payload buffers; 600 requests exceed the 256 in flight,
    // so the server stops reading with unparsed input held back, and resumes.
    await harness.engine.createVolume('pipelined-mixed', 128 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('pipelined-mixed');
    const sizes = [4096, 517, 100_000, 1024 * 1024 + 3, 20_000, 65_536];
    let next = 0;
    const writes = Array.from({ length: 600 }, (_, index) => {
      const length = sizes[index % sizes.length];
      const offset = next + (index % 5) * 333; // unaligned, never overlapping (concurrent writes have no order)
      next = offset + length;
      return { offset, data: randomBytes(length) };
    });
    const burst: Buffer[] = [];
    const capture = client.write.bind(client);
    client.write = (bytes: Buffer) => void burst.push(bytes);
    writes.forEach((w, index) => client.sendRequest(CMD.WRITE, 0, 1 + index, w.offset, w.data.length, w.data));
    client.write = capture;
    const all = Buffer.concat(burst);
    for (let at = 0; at < all.length; at += 3 * MiB) client.write(all.subarray(at, at + 3 * MiB));
    const seen = new Set<number>();
    for (let count = 0; count < writes.length; count++) {
      const reply = await client.readReply(30_000);
      expect(RawNbdClient.errorOf(reply)).toBe(0);
      seen.add(reply.handle);
    }
    expect(seen.size).toBe(writes.length);
    const model = Buffer.alloc(128 * MiB);
    for (const w of writes) w.data.copy(model, w.offset);
    for (let offset = 0; offset < 128 * MiB; offset += 8 * MiB) {
      const { data } = await client.structuredRead(9000 + offset / MiB, offset, 8 * MiB);
      expect(data.equals(model.subarray(offset, offset + 8 * MiB))).toBe(true);
    }
    client.destroy();
  });

  it('keeps replies whole on the wire when large reads and small requests are pipelined together', async () => {
    // Large replies leave one at a time; anything answered meanwhile must queue behind them, never inside them.
    await harness.engine.createVolume('pipelined-reads', 64 * MiB);
    const content = randomBytes(64 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('pipelined-reads');
    for (let offset = 0; offset < content.length; offset += 8 * MiB) {
      client.sendRequest(CMD.WRITE, 0, 1, offset, 8 * MiB, content.subarray(offset, offset + 8 * MiB));
      expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    }
    // Large reads first; the client then reads nothing for a while, so a large reply is still being written
    // when the small requests arrive and are answered.
    const reads = new Map<number, { offset: number; length: number }>();
    for (let index = 0; index < 16; index++) {
      const large = { offset: (index * 1_300_000) % (60 * MiB), length: 2 * MiB + 28 };
      reads.set(100 + 3 * index, large);
      client.sendRequest(CMD.READ, 0, 100 + 3 * index, large.offset, large.length);
    }
    await delay(300);
    for (let index = 0; index < 16; index++) {
      const small = { offset: (index * 77_777) % (60 * MiB), length: 4096 };
      reads.set(101 + 3 * index, small);
      client.sendRequest(CMD.READ, 0, 101 + 3 * index, small.offset, small.length);
      client.sendRequest(CMD.BLOCK_STATUS, 0, 102 + 3 * index, 0, 64 * MiB);
    }
    const data = new Map<number, Buffer[]>();
    let done = 0;
    while (done < 16 * 3) {
      const reply = await client.readReply(30_000);
      expect(reply.kind).toBe('chunk');
      if (reply.kind !== 'chunk') break;
      expect(reply.type === CHUNK.OFFSET_DATA || reply.type === CHUNK.BLOCK_STATUS || reply.type === CHUNK.NONE).toBe(true);
      if (reply.type === CHUNK.OFFSET_DATA) (data.get(reply.handle) ?? data.set(reply.handle, []).get(reply.handle)!).push(reply.payload);
      if (reply.flags & 1) done++;
    }
    for (const [handle, read] of reads) {
      const chunks = data.get(handle) ?? [];
      const assembled = Buffer.alloc(read.length);
      for (const chunk of chunks) chunk.copy(assembled, Number(chunk.readBigUInt64BE(0)) - read.offset, 8);
      expect(assembled.equals(content.subarray(read.offset, read.offset + read.length))).toBe(true);
    }
    client.destroy();
  });

  it('write-zeroes: FAST_ZERO releases tracks, FAST_ZERO with NO_HOLE fails fast with ENOTSUP', async () => {
    await harness.engine.createVolume('zeroes', 2 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('zeroes');
    client.sendRequest(CMD.WRITE, 0, 1, 0, 2 * MiB, Buffer.alloc(2 * MiB, 0xff));
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    client.sendRequest(CMD.WRITE_ZEROES, CMD_FLAG.FAST_ZERO | CMD_FLAG.NO_HOLE, 2, 0, MiB);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(ERR.ENOTSUP);
    const untouched = await client.structuredRead(3, 0, 4096);
    expect(untouched.data.equals(Buffer.alloc(4096, 0xff))).toBe(true);

    client.sendRequest(CMD.WRITE_ZEROES, CMD_FLAG.FAST_ZERO, 4, 0, MiB);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    const zeroed = await client.structuredRead(5, 0, MiB);
    expect(zeroed.chunkTypes).toEqual([CHUNK.OFFSET_HOLE]);
    client.sendRequest(CMD.WRITE_ZEROES, CMD_FLAG.NO_HOLE | CMD_FLAG.FUA, 6, MiB, 100_000);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    const provisioned = await client.structuredRead(7, MiB, 100_000);
    expect(provisioned.chunkTypes).toEqual([CHUNK.OFFSET_DATA]);
    expect(provisioned.data.equals(Buffer.alloc(100_000))).toBe(true);
    client.destroy();
  });

  it('on DISC answers everything in flight, then closes; the writes are there for the next client', async () => {
    await harness.engine.createVolume('disc', 8 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('disc');
    const blocks = Array.from({ length: 16 }, () => randomBytes(128 * 1024));
    blocks.forEach((block, index) => client.sendRequest(CMD.WRITE, 0, index, index * block.length, block.length, block));
    client.sendRequest(CMD.DISC, 0, 99, 0, 0);
    const handles: number[] = [];
    for (let count = 0; count < blocks.length; count++) {
      const reply = await client.readReply();
      expect(RawNbdClient.errorOf(reply)).toBe(0);
      handles.push(reply.handle);
    }
    expect(handles.sort((a, b) => a - b)).toEqual([...blocks.keys()]);
    expect(await client.closedWithin(2_000)).toBe(true);
    expect(client.pending).toBe(0);

    const reader = await RawNbdClient.connect({ path: harness.socketPath });
    await reader.negotiate('disc');
    const { data } = await reader.structuredRead(1, 0, blocks.length * 128 * 1024);
    expect(data.equals(Buffer.concat(blocks))).toBe(true);
    reader.destroy();
  });

  it('on DISC after large reads sends every reply whole (thread-pool sends on a plaintext socket), then closes', async () => {
    await harness.engine.createVolume('disc-reads', 32 * MiB);
    const content = randomBytes(32 * MiB);
    const client = await RawNbdClient.connect(tcp);
    await client.negotiate('disc-reads');
    client.sendRequest(CMD.WRITE, 0, 1, 0, content.length, content);
    expect(RawNbdClient.errorOf(await client.readReply())).toBe(0);
    // Large replies leave through the thread pool only while another connection waits for the event loop.
    const bystander = await RawNbdClient.connect(tcp);
    await bystander.negotiate('disc-reads');
    const sendsBefore = offloadedSendCount();
    const reads = 12;
    const length = 2 * MiB + 4096;
    const offsetOf = (handle: number): number => (handle * 2_500_000) % (content.length - length);
    for (let handle = 0; handle < reads; handle++) client.sendRequest(CMD.READ, CMD_FLAG.DF, handle, offsetOf(handle), length);
    client.sendRequest(CMD.DISC, 0, 99, 0, 0);
    const seen = new Set<number>();
    for (let count = 0; count < reads; count++) {
      const reply = await client.readReply(30_000);
      expect(reply.kind).toBe('chunk');
      if (reply.kind !== 'chunk') break;
      expect(reply.type).toBe(CHUNK.OFFSET_DATA);
      expect(reply.flags & 1).toBe(1);
      expect(Number(reply.payload.readBigUInt64BE(0))).toBe(offsetOf(reply.handle));
      expect(reply.payload.subarray(8).equals(content.subarray(offsetOf(reply.handle), offsetOf(reply.handle) + length))).toBe(true);
      seen.add(reply.handle);
    }
    expect(seen.size).toBe(reads);
    expect(await client.closedWithin(2_000)).toBe(true);
    // Replies queued behind others leave through the thread pool (a lone last one may be written directly).
    if (offloadedSendsAvailable) expect(offloadedSendCount() - sendsBefore).toBeGreaterThan(0);
    client.destroy();
    bystander.destroy();
  });

  it('stops reading a client that does not read its replies, so memory stays bounded', async () => {
    await harness.engine.createVolume('hog', 64 * MiB);
    const hog = await RawNbdClient.connect(tcp);
    await hog.negotiate('hog', { structured: false });
    // From here on count reply bytes by hand, and not at all while paused.
    hog.socket.removeAllListeners('data');
    hog.socket.pause();
    const requests = 24;
    const perRequest = 32 * MiB;
    for (let handle = 0; handle < requests; handle++) hog.sendRequest(CMD.READ, 0, handle, 0, perRequest);

    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }, 5);
    await delay(1_500);
    // Another client is served meanwhile.
    const bystander = await RawNbdClient.connect(tcp);
    await bystander.negotiate('hog');
    bystander.sendRequest(CMD.FLUSH, 0, 1, 0, 0);
    expect(RawNbdClient.errorOf(await bystander.readReply())).toBe(0);
    bystander.destroy();
    clearInterval(sampler);
    // Unbounded, the server would hold all 768 MiB of replies.
    expect(peak - baseline).toBeLessThan(320 * MiB);

    let received = 0;
    const expected = requests * (16 + perRequest);
    await new Promise<void>((resolve) => {
      hog.socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= expected) resolve();
      });
      hog.socket.resume();
    });
    expect(received).toBe(expected);
    hog.destroy();
  });
});

describe('NBD server options', () => {
  it('advertises and enforces a smaller maxRequestBytes', async () => {
    const local = await startNbdHarness({ server: { maxRequestBytes: MiB } });
    try {
      await local.engine.createVolume('small-max', 8 * MiB);
      const client = await RawNbdClient.connect({ host: local.host, port: local.port });
      const { infos } = await client.negotiate('small-max');
      expect(infos.get(3)!.readUInt32BE(8)).toBe(MiB);
      client.sendRequest(CMD.READ, 0, 1, 0, MiB + 1);
      expect(RawNbdClient.errorOf(await client.readReply())).toBe(ERR.EINVAL);
      client.sendRequest(CMD.WRITE, 0, 2, 0, MiB + 1, Buffer.alloc(MiB + 1, 1));
      expect(RawNbdClient.errorOf(await client.readReply())).toBe(ERR.EINVAL);
      const { data } = await client.structuredRead(3, 0, MiB);
      expect(data.equals(Buffer.alloc(MiB))).toBe(true);
      client.destroy();
    } finally {
      await local.close();
    }
  });
});

describe('NBD listeners', () => {
  it('replaces a stale Unix socket file, but not a live one or a regular file', async () => {
    const stale = path.join(harness.dir, 'stale.sock');
    // A socket file left behind by a process that died without unlinking it.
    await runOk('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
    const server = new NbdServer({ exports: harness.engine.exports, logger: harness.logger });
    try {
      await server.listenUnix(stale);
      const client = await RawNbdClient.connect({ path: stale });
      expect(await client.readGreeting()).toBe(3);
      client.destroy();

      const other = new NbdServer({ exports: harness.engine.exports, logger: harness.logger });
      await expect(other.listenUnix(harness.socketPath)).rejects.toMatchObject({ code: 'EADDRINUSE' });
      const plain = path.join(harness.dir, 'plain-file');
      await writeFile(plain, 'not a socket');
      await expect(other.listenUnix(plain)).rejects.toThrow(/not a socket/);
      await expect(other.listenTcp(harness.host, harness.port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await other.close();
    } finally {
      await server.close();
    }
  });
});

describe('NBD server close', () => {
  it('finishes accepted requests, ends every connection, releases exports and stops listening', async () => {
    const local = await startNbdHarness();
    try {
      await local.engine.createVolume('closing', 64 * MiB);
      const device = local.engine.device('closing') as unknown as { openCount: number };
      const idle = await RawNbdClient.connect({ host: local.host, port: local.port });
      await idle.negotiate('closing');
      const midHandshake = await RawNbdClient.connect({ host: local.host, port: local.port });
      await midHandshake.readGreeting();
      const busy = await RawNbdClient.connect({ path: local.socketPath });
      await busy.negotiate('closing');
      const blocks = Array.from({ length: 32 }, (_, index) => Buffer.alloc(MiB, index + 1));
      blocks.forEach((block, index) => busy.sendRequest(CMD.WRITE, 0, index, index * MiB, MiB, block));
      const first = await busy.readReply();
      expect(first.kind).toBe('simple');

      const closing = local.server.close();
      const replies = [first];
      for (;;) {
        try {
          replies.push(await busy.readReply(5_000));
        } catch {
          break;
        }
      }
      await closing;
      expect(await idle.closedWithin(1_000)).toBe(true);
      expect(await midHandshake.closedWithin(1_000)).toBe(true);
      expect(await busy.closedWithin(1_000)).toBe(true);
      expect(local.server.connectionCount).toBe(0);
      expect(device.openCount).toBe(0);

      // Every reply is a success or ESHUTDOWN, and every acknowledged write landed.
      const acknowledged = replies.filter((reply) => RawNbdClient.errorOf(reply) === 0).map((reply) => reply.handle);
      expect(acknowledged.length).toBeGreaterThan(0);
      for (const reply of replies) expect([0, ERR.ESHUTDOWN]).toContain(RawNbdClient.errorOf(reply));
      const readBack = Buffer.alloc(MiB);
      for (const handle of acknowledged) {
        await local.engine.device('closing').readInto(handle * MiB, readBack);
        expect(readBack.equals(blocks[handle])).toBe(true);
      }

      await expect(
        new Promise((resolve, reject) => net.connect({ host: local.host, port: local.port }).once('connect', resolve).once('error', reject)),
      ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await local.close();
    }
  });
});

import { randomBytes, randomInt } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { StagedPart } from '../src/replication/group-applier.ts';
import type { RpcRequest, RpcResult } from '../src/replication/link/rpc-connection.ts';
import pino from 'pino';
import { NbdServer } from '../src/nbd/server.ts';
import type { Splitter } from '../src/write-path/splitter.ts';
import { NbdPipe } from './helpers/nbd-pipe.ts';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

/**
 * No write left behind (PROTOCOL.md): a track leaves the out-of-sync bitmap
 * only once the target holds durably what the source held when it was
 * marked. Two sites in one process, the link through a fault proxy.
 */

const MiB = 1024 * 1024;
const TRACK = 65536;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

async function preparedSession(s: TwoSites, type: 'sync' | 'semi-sync' | 'async', sizeBytes: number): Promise<void> {
  await s.h1.engine.createVolume('prod', sizeBytes);
  await s.h2.engine.createVolume('copy', sizeBytes);
  const service = s.h1.replication.service;
  await service.createSession('s1', type, 'beta');
  await service.addPair('s1', 'prod', 'copy');
  await service.act('s1', 'start');
  await waitFor(() => service.session('s1').state === 'prepared', 30_000, 'prepared');
}

function info(s: TwoSites) {
  const service = s.h1.replication.service;
  return service.info(service.session('s1'));
}

/** Waits until the session is prepared with nothing marked at the source (its raw bitmap empty, nothing on its way). */
async function drained(s: TwoSites, timeoutMs = 60_000): Promise<void> {
  const reports = s.h1.replication.service.reports;
  await waitFor(
    () => info(s).state === 'prepared' && reports.pairBitmap('s1', 'prod', 'out-of-sync').markedTracks === 0,
    timeoutMs,
    'prepared with an empty out-of-sync bitmap',
  );
}

/** Tracks whose bytes differ between the two volumes. */
async function differingTracks(s: TwoSites): Promise<number[]> {
  const [a, b] = await Promise.all([readAll(s.h1, 'prod'), readAll(s.h2, 'copy')]);
  const differing: number[] = [];
  for (let track = 0; track * TRACK < a.length; track++) {
    if (!a.subarray(track * TRACK, (track + 1) * TRACK).equals(b.subarray(track * TRACK, (track + 1) * TRACK))) differing.push(track);
  }
  return differing;
}

describe('no write left behind', () => {
  it('async: link resets under random 4 KiB writes at queue depth 16 leave no difference unmarked, and it converges', async () => {
    sites = await startTwoSites();
    const s = sites;
    await preparedSession(s, 'async', 32 * MiB);
    const device = s.h1.replication.exports.openExport('prod');
    // Every 4 KiB block written once, in random order, half with FUA (the reproduction); then random blocks
    // again until a reset has suspended the session at least once (a reset between two requests only reconnects; on a
    // loaded machine the first pass may see none that hits one in flight).
    const order = Array.from({ length: (32 * MiB) / 4096 }, (_, i) => i).sort(() => Math.random() - 0.5);
    const suspends = () =>
      s.h1.engine.catalog
        .listEvents(0, 10_000, { subject: 's1', type: ['session.state'] })
        .filter((event) => (event.data as { to?: string } | undefined)?.to === 'suspended');
    let suspended = false;
    const deadline = Date.now() + 90_000;
    let next = 0;
    const worker = async () => {
      while (next < order.length || (!suspended && Date.now() < deadline)) {
        const block = next < order.length ? order[next++] : randomInt(order.length);
        await device.write(block * 4096, randomBytes(4096), { fua: Math.random() < 0.5 });
        // A host's next request comes from the network, in a later turn of the event loop.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    };
    const writers = Promise.all(Array.from({ length: 16 }, worker));
    let cuts = 0;
    let writing = true;
    void writers.finally(() => (writing = false));
    while (writing) {
      await new Promise((resolve) => setTimeout(resolve, randomInt(150, 600)));
      s.proxy.resetAll();
      cuts++;
      suspended ||= suspends().length > 0;
    }
    await writers;
    expect(suspends().length, `${cuts} link resets suspended the session`).toBeGreaterThan(0);
    await drained(s);
    expect(await differingTracks(s)).toEqual([]);
  }, 180_000);

  it('async: 4 KiB overwrites through NBD at queue depth 16, several in flight on one block, are queued without yielding (the fast path) and the secondary ends with the primary\'s bytes', async () => {
    sites = await startTwoSites();
    const s = sites;
    await preparedSession(s, 'async', 4 * MiB);
    const device = s.h1.replication.exports.openExport('prod') as Splitter;
    // Allocated first, so that later writes overwrite in place (the fast path's condition).
    await device.write(0, randomBytes(4 * MiB));
    await drained(s);
    const server = new NbdServer({ exports: s.h1.replication.exports, logger: pino({ level: 'silent' }) });
    const { host, port } = await server.listenTcp('127.0.0.1', 0);
    const pipe = await NbdPipe.connect(host, port, 'prod');
    try {
      // 32 hot blocks over two tracks and a few more: writes to the same block overlap in flight, and their order at the
      // primary must be their order in the consistency groups.
      const hot = Array.from({ length: 32 }, (_, i) => (i < 16 ? i : randomInt((4 * MiB) / 4096)));
      let left = 4000;
      const worker = async () => {
        while (left-- > 0) await pipe.write(hot[randomInt(hot.length)]! * 4096, randomBytes(4096));
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    } finally {
      await pipe.close();
      await server.close();
    }
    expect(device.tappedWritesNow, 'writes queued in the fast path').toBeGreaterThan(0);
    await drained(s);
    expect(await differingTracks(s)).toEqual([]);
  }, 120_000);

  for (const type of ['sync', 'async'] as const) {
    it(`${type}: a request of an earlier run that the network delivers late, after the resync, is refused (stale-stream) and overwrites nothing`, async () => {
      sites = await startTwoSites();
      const s = sites;
      await preparedSession(s, type, 4 * MiB);
      const offset = 5 * TRACK + 8192;
      const target = s.h2.replication.service.target;
      const handle = target.handle.bind(target);
      const method = type === 'sync' ? 'pair.write' : 'cg.stage';
      const carries = (request: RpcRequest) =>
        type === 'sync'
          ? request.params.offset === offset
          : Array.isArray(request.params.entries) && (request.params.entries as Array<{ offset: number }>).some((entry) => entry.offset === offset);
      // The first request carrying the old write is held "in the network" (it arrived, nothing of it is served yet).
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let held: Promise<RpcResult> | null = null;
      target.handle = (request) => {
        if (held === null && request.method === method && carries(request)) {
          const late = { ...request, payload: request.payload ? Buffer.from(request.payload) : null };
          held = released.then(() => handle(late));
          return held;
        }
        return handle(request);
      };
      const device = s.h1.replication.exports.openExport('prod');
      const old = Buffer.alloc(4096, 0x0d);
      const write = device.write(offset, old);
      await waitFor(() => held !== null, 10_000, 'the held request');
      // The link breaks: the source gives the request up and suspends; the newer write is made while suspended.
      s.proxy.resetAll();
      await write;
      await waitFor(() => info(s).state !== 'prepared', 10_000, 'the session leaves prepared');
      const newer = Buffer.alloc(4096, 0x4e);
      await device.write(offset, newer);
      // It resumes by itself once the link is back, copies the marked track, and is duplex again.
      await drained(s);
      release();
      const outcome = await held!.then(
        () => 'served',
        (error: { problem?: string }) => error.problem ?? String(error),
      );
      expect(outcome).toBe('stale-stream');
      expect(await differingTracks(s)).toEqual([]);
      const there = Buffer.alloc(4096);
      await s.h2.engine.device('copy').readInto(offset, there);
      expect(there.equals(newer)).toBe(true);
    }, 120_000);
  }

  it('async: a commit of an earlier coordinator run that the network delivers late is refused (stale-stream) and drops none of the new run\'s staged rounds', async () => {
    sites = await startTwoSites();
    const s = sites;
    await preparedSession(s, 'async', 4 * MiB);
    const id = s.h1.replication.service.session('s1').id;
    const applier = s.h2.replication.service.applier;
    const staged = (offset: number) =>
      [...((applier as unknown as { parts: Map<string, Map<string, { part: StagedPart }>> }).parts.get(id)?.values() ?? [])].some(({ part }) =>
        part.entries.some((entry) => entry.offset === offset),
      );
    const target = s.h2.replication.service.target;
    const handle = target.handle.bind(target);
    // Where the new run's write goes.
    const offset = 7 * TRACK + 4096;
    // The first commit from now on is held "in the network" (arrived, not served) and served late, after the resume.
    let releaseOld!: () => void;
    const oldReleased = new Promise<void>((resolve) => (releaseOld = resolve));
    let oldEpoch: string | null = null;
    let held: Promise<RpcResult> | null = null;
    // While set, the new run's commits wait too once the new write is staged (its round stays staged, not committed,
    // when the late commit lands). Commits of empty rounds before it pass: the coordinator runs one round at a time, so
    // a held commit of an earlier round would keep the write's round from ever being cut.
    let holdNew = false;
    let releaseNew!: () => void;
    const newReleased = new Promise<void>((resolve) => (releaseNew = resolve));
    target.handle = (request) => {
      if (request.method === 'mp.commit') {
        if (held === null) {
          oldEpoch = request.params.epoch as string;
          held = oldReleased.then(() => handle(request));
          return held;
        }
        if (holdNew && request.params.epoch !== oldEpoch && staged(offset)) return newReleased.then(() => handle(request));
      }
      return handle(request);
    };
    const device = s.h1.replication.exports.openExport('prod');
    await device.write(2 * TRACK, Buffer.alloc(4096, 0x0d));
    await waitFor(() => held !== null, 10_000, 'the held commit');
    // The link breaks: the coordinator gives the commit up and the session suspends, then resumes with a new coordinator run.
    s.proxy.resetAll();
    await waitFor(() => info(s).state !== 'prepared', 10_000, 'the session leaves prepared');
    await drained(s);
    // A write of the new run: its round is staged at the secondary, its commit waits.
    holdNew = true;
    const newer = Buffer.alloc(4096, 0x4e);
    await device.write(offset, newer);
    await waitFor(() => staged(offset), 10_000, 'the new write staged at the secondary');
    // The old run's commit arrives now, after the new run's first commits: refused, the marker stays the new run's.
    const before = await applier.lastCommit(id);
    expect(before?.epoch).not.toBe(oldEpoch);
    releaseOld();
    await expect(held!).rejects.toMatchObject({ problem: 'stale-stream' });
    expect(await applier.lastCommit(id)).toEqual(before);
    // Then the new run commits.
    holdNew = false;
    releaseNew();
    await drained(s);
    expect(await differingTracks(s)).toEqual([]);
    const there = Buffer.alloc(4096);
    await s.h2.engine.device('copy').readInto(offset, there);
    expect(there.equals(newer)).toBe(true);
  }, 120_000);

  it('a target refuses stream requests of a run it never fenced (an agent that restarted knows none)', async () => {
    sites = await startTwoSites();
    const s = sites;
    await preparedSession(s, 'sync', 4 * MiB);
    const pair = info(s).pairs[0].id;
    const link = s.h1.replication.peers.link(s.h2.engine.identity.agentId);
    const refused = await link.call('pair.write', { pair, run: 'not-a-run', offset: 0, ack: 'durable', fua: false }, Buffer.alloc(4096, 1)).then(
      () => null,
      (error: { problem?: string; message: string }) => error,
    );
    expect(refused?.problem).toBe('stale-stream');
    // A stream request naming no run at all is malformed: refused by the peer protocol before the fence.
    const missing = await link.callUnchecked('pair.flush', { pair }).then(
      () => null,
      (error: { problem?: string }) => error.problem,
    );
    expect(missing).toBe('bad-request');
    // Nothing was written.
    const there = Buffer.alloc(4096);
    await s.h2.engine.device('copy').readInto(0, there);
    expect(there.equals(Buffer.alloc(4096))).toBe(true);
    expect(info(s).state).toBe('prepared');
  }, 60_000);
});
